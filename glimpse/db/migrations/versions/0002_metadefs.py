"""Metadata definitions catalog: namespaces, objects, properties, tags, resource types.

Revision ID: 0002_metadefs
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002_metadefs"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def _name() -> sa.types.TypeEngine[str]:
    # As glimpse.db.models.ExactString: byte-for-byte names on MariaDB/MySQL too, whose
    # collations otherwise ignore case (and, for MariaDB's utf8mb4_bin, trailing spaces).
    # 80 utf8mb4 characters (320 bytes) stay well inside every index length limit.
    dialect = op.get_bind().dialect
    if dialect.name != "mysql":
        return sa.String(80)
    collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return mysql.VARCHAR(80, charset="utf8mb4", collation=collation)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
    ]


def _namespace_fk() -> sa.Column:
    return sa.Column(
        "namespace_id", sa.Integer(), sa.ForeignKey("metadef_namespaces.id"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace", _name(), nullable=False),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text()),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(255)),
        *_timestamps(),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_metadef_namespaces_owner", "metadef_namespaces", ["owner"])

    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", _name(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
        mysql_charset="utf8mb4",
    )

    op.create_table(
        "metadef_objects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _namespace_fk(),
        sa.Column("name", _name(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("required", sa.Text()),
        sa.Column("json_schema", sa.Text(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_metadef_objects_name", "metadef_objects", ["name"])

    op.create_table(
        "metadef_properties",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _namespace_fk(),
        sa.Column("name", _name(), nullable=False),
        sa.Column("json_schema", sa.Text(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_metadef_properties_name", "metadef_properties", ["name"])

    op.create_table(
        "metadef_tags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _namespace_fk(),
        sa.Column("name", _name(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_metadef_tags_name", "metadef_tags", ["name"])

    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column(
            "resource_type_id",
            sa.Integer(),
            sa.ForeignKey("metadef_resource_types.id"),
            primary_key=True,
        ),
        sa.Column(
            "namespace_id",
            sa.Integer(),
            sa.ForeignKey("metadef_namespaces.id"),
            primary_key=True,
        ),
        sa.Column("properties_target", sa.String(80)),
        sa.Column("prefix", sa.String(80)),
        *_timestamps(),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_metadef_ns_res_types_namespace_id",
        "metadef_namespace_resource_types",
        ["namespace_id"],
    )


def downgrade() -> None:
    for table in (
        "metadef_namespace_resource_types",
        "metadef_tags",
        "metadef_properties",
        "metadef_objects",
        "metadef_resource_types",
        "metadef_namespaces",
    ):
        op.drop_table(table)
