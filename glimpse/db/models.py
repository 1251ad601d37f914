"""SQLAlchemy models. The migrations in ``glimpse/db/migrations`` create exactly these tables."""

from __future__ import annotations

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine


def utcnow() -> datetime.datetime:
    """Naive UTC now, truncated to whole seconds as Glance's API shows them."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


class Base(DeclarativeBase):
    pass


class Timestamps:
    """When a row was created and last changed."""

    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow)


class SoftDelete(Timestamps):
    """Timestamps, and a deletion that marks the row instead of removing it."""

    # sort_order: after the timestamps, as the migrations lay the columns out.
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, sort_order=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False, sort_order=1)


class ExactString(TypeDecorator[str]):
    """A string compared byte for byte on every database.

    MariaDB/MySQL's default collations ignore case (and pad trailing spaces), so
    tags ``gold`` and ``Gold`` would collide in a unique key there only.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[str]:
        if dialect.name != "mysql":
            return dialect.type_descriptor(String(self.length))
        return dialect.type_descriptor(
            mysql.VARCHAR(self.length, charset="utf8mb4", collation=exact_collation(dialect))
        )


def exact_collation(dialect: Dialect) -> str:
    """The binary collation of this MariaDB/MySQL server (MariaDB's without padding)."""
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"


class Image(SoftDelete, Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_visibility", "visibility"),
        Index("ix_images_owner", "owner"),
        Index("ix_images_checksum", "checksum"),
        Index("ix_images_os_hash_value", "os_hash_value"),
        Index("ix_images_status_deleted", "status", "deleted"),
        Index("ix_images_created_at", "created_at"),
        Index("ix_images_updated_at", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    visibility: Mapped[str] = mapped_column(String(20), nullable=False, default="shared")
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    min_disk: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    owner: Mapped[str | None] = mapped_column(String(255))
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    properties: Mapped[list[ImageProperty]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin"
    )
    tags: Mapped[list[ImageTag]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin"
    )
    locations: Mapped[list[ImageLocation]] = relationship(
        back_populates="image",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ImageLocation.position",
    )
    members: Mapped[list[ImageMember]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin"
    )


class ImageProperty(SoftDelete, Base):
    __tablename__ = "image_properties"
    __table_args__ = (
        UniqueConstraint("image_id", "name", name="uq_image_properties_image_id_name"),
        Index("ix_image_properties_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False)
    name: Mapped[str] = mapped_column(ExactString(255), nullable=False)
    value: Mapped[str | None] = mapped_column(Text)
    image: Mapped[Image] = relationship(back_populates="properties")


class ImageTag(SoftDelete, Base):
    __tablename__ = "image_tags"
    __table_args__ = (
        UniqueConstraint("image_id", "value", name="uq_image_tags_image_id_value"),
        Index("ix_image_tags_value", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False)
    value: Mapped[str] = mapped_column(ExactString(255), nullable=False)
    image: Mapped[Image] = relationship(back_populates="tags")


class ImageLocation(SoftDelete, Base):
    __tablename__ = "image_locations"
    __table_args__ = (Index("ix_image_locations_image_id", "image_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    meta_data: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    status: Mapped[str] = mapped_column(String(30), nullable=False, default="active")
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    image: Mapped[Image] = relationship(back_populates="locations")


class ImageMember(SoftDelete, Base):
    __tablename__ = "image_members"
    __table_args__ = (
        UniqueConstraint("image_id", "member", name="uq_image_members_image_id_member"),
        Index("ix_image_members_member", "member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False)
    member: Mapped[str] = mapped_column(ExactString(255), nullable=False)
    can_share: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    image: Mapped[Image] = relationship(back_populates="members")


class Task(SoftDelete, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner", "owner"),
        Index("ix_tasks_image_id", "image_id"),
        Index("ix_tasks_status", "status"),
        Index("ix_tasks_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    input: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    image_id: Mapped[str | None] = mapped_column(String(36))
    request_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    # A task is also a job for glimpse-worker: claimed under a lease, with progress.
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)


class ImageUpload(Base):
    """A data write in progress (upload or stage), so a crashed node's writes can be undone.

    The row lives exactly as long as the write: it is inserted when the image
    leaves ``queued`` and removed when the write ends either way. A row whose
    process is gone (same node) or whose heartbeat is stale (any node) marks an
    interrupted write.
    """

    __tablename__ = "image_uploads"

    image_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    node: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    store_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime.datetime] = mapped_column(DateTime, nullable=False)
    heartbeat_at: Mapped[datetime.datetime] = mapped_column(DateTime, nullable=False)


# Metadata definitions (the metadef catalog). Unlike images these rows are hard-deleted, as in
# Glance. Names are exact strings of at most 80 characters (320 bytes in utf8mb4, well inside
# every index length limit).


class MetadefNamespace(Timestamps, Base):
    __tablename__ = "metadef_namespaces"
    __table_args__ = (
        UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
        Index("ix_metadef_namespaces_owner", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ExactString(80), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(32), nullable=False, default="private")
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Null only for namespaces made without a project (no-auth mode): those are admin-only.
    owner: Mapped[str | None] = mapped_column(String(255))

    objects: Mapped[list[MetadefObject]] = relationship(
        back_populates="namespace", cascade="all, delete-orphan", order_by="MetadefObject.id"
    )
    properties: Mapped[list[MetadefProperty]] = relationship(
        back_populates="namespace", cascade="all, delete-orphan", order_by="MetadefProperty.id"
    )
    tags: Mapped[list[MetadefTag]] = relationship(
        back_populates="namespace", cascade="all, delete-orphan", order_by="MetadefTag.id"
    )
    associations: Mapped[list[MetadefNamespaceResourceType]] = relationship(
        back_populates="namespace",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by=lambda: (
            MetadefNamespaceResourceType.created_at,
            MetadefNamespaceResourceType.resource_type_id,
        ),
    )


class MetadefObject(Timestamps, Base):
    __tablename__ = "metadef_objects"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
        Index("ix_metadef_objects_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id"), nullable=False)
    name: Mapped[str] = mapped_column(ExactString(80), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    #: JSON list of required property names.
    required: Mapped[str | None] = mapped_column(Text)
    #: JSON object: property name -> property definition.
    json_schema: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    namespace: Mapped[MetadefNamespace] = relationship(back_populates="objects")


class MetadefProperty(Timestamps, Base):
    __tablename__ = "metadef_properties"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
        Index("ix_metadef_properties_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id"), nullable=False)
    name: Mapped[str] = mapped_column(ExactString(80), nullable=False)
    #: JSON object: the property definition (type, title, enum, ...), without its name.
    json_schema: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    namespace: Mapped[MetadefNamespace] = relationship(back_populates="properties")


class MetadefTag(Timestamps, Base):
    __tablename__ = "metadef_tags"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
        Index("ix_metadef_tags_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id"), nullable=False)
    name: Mapped[str] = mapped_column(ExactString(80), nullable=False)
    namespace: Mapped[MetadefNamespace] = relationship(back_populates="tags")


class MetadefResourceType(Timestamps, Base):
    __tablename__ = "metadef_resource_types"
    __table_args__ = (UniqueConstraint("name", name="uq_metadef_resource_types_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ExactString(80), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class MetadefNamespaceResourceType(Timestamps, Base):
    """A namespace applies to a resource type, its properties named with ``prefix``."""

    __tablename__ = "metadef_namespace_resource_types"
    __table_args__ = (Index("ix_metadef_ns_res_types_namespace_id", "namespace_id"),)

    resource_type_id: Mapped[int] = mapped_column(
        ForeignKey("metadef_resource_types.id"), primary_key=True
    )
    namespace_id: Mapped[int] = mapped_column(ForeignKey("metadef_namespaces.id"), primary_key=True)
    properties_target: Mapped[str | None] = mapped_column(String(80))
    prefix: Mapped[str | None] = mapped_column(String(80))
    namespace: Mapped[MetadefNamespace] = relationship(back_populates="associations")
    resource_type: Mapped[MetadefResourceType] = relationship(lazy="joined")
