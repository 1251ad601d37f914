"""Metadata definition files: the catalog as JSON files on disk, one namespace per file.

What ``glimpse-manage db load_metadefs``, ``unload_metadefs`` and ``export_metadefs`` do.
A file holds what ``POST /v2/metadefs/namespaces`` accepts (plus an optional ``owner``) and
is checked exactly as that request is. Glimpse ships its own set in ``glimpse/etc/metadefs``.

Loading a namespace that already exists depends on the :class:`LoadMode`, as in Glance:
skipped (the default), merged (missing items added, existing ones kept), merged preferring
the file (existing items and the namespace's attributes updated too) or overwritten (the
namespace's items dropped and reloaded). Items only the database has are never removed by a
merge. Each file is stored in its own transaction, so a bad file leaves the others loaded.

An export writes what a load reads back to the same catalog: objects, properties and tags
keep their order, and associations are sorted by resource type so that exports of equal
catalogs are equal files.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from glimpse import errors
from glimpse.db.engine import Database
from glimpse.db.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefTag,
    utcnow,
)
from glimpse.services.metadefs import namespaces, objects, properties, resource_types, tags
from glimpse.services.metadefs.records import NamespaceDetail

#: The definitions shipped with Glimpse, loaded when no path is given.
SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "metadefs"

#: Owner of namespaces whose file names none; Glance's loader uses the same.
DEFAULT_OWNER = "admin"

#: ``progress(done, total, namespace_or_file)``, called after each file.
Progress = Callable[[int, int, str], None]


class LoadMode(enum.Enum):
    """What loading a file does to a namespace that already exists."""

    SKIP_EXISTING = "skip existing"
    MERGE = "merge"
    PREFER_NEW = "merge, prefer new"
    OVERWRITE = "merge, overwrite"

    @classmethod
    def of(cls, merge: bool, prefer_new: bool, overwrite: bool) -> LoadMode:
        """The mode the command-line flags ask for; 400 for a combination Glance refuses."""
        if (prefer_new or overwrite) and not merge:
            raise errors.InvalidParameter(
                "--prefer_new and --overwrite only apply to a merge: add --merge."
            )
        if prefer_new and overwrite:
            raise errors.InvalidParameter("Give at most one of --prefer_new and --overwrite.")
        if overwrite:
            return cls.OVERWRITE
        if prefer_new:
            return cls.PREFER_NEW
        return cls.MERGE if merge else cls.SKIP_EXISTING


class Outcome(enum.Enum):
    """What loading one file did."""

    CREATED = "created"
    MERGED = "merged"
    UPDATED = "updated"
    REPLACED = "replaced"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class FileResult:
    path: Path
    outcome: Outcome
    namespace: str | None = None
    #: Why the file was not loaded (only for :attr:`Outcome.FAILED`).
    error: str | None = None


def locate(path: Path | None) -> list[Path]:
    """The files to load: ``path`` itself, or the ``*.json`` files in the folder ``path``
    (by name); the shipped set without a path. 404 if there are none."""
    source = SHIPPED if path is None else path
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise errors.NotFound(f"No such file or folder: {source}")
    found = sorted(p for p in source.iterdir() if p.suffix == ".json" and p.is_file())
    if not found:
        raise errors.NotFound(f"No metadata definition files (*.json) in {source}")
    return found


def read_definition(path: Path) -> dict[str, Any]:
    """One namespace definition, checked as the API checks a namespace create (400)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise errors.BadRequest(f"Not a JSON document: {exc}") from exc
    namespaces.check_definition(body)
    _refuse_repeats(body)
    return cast(dict[str, Any], body)


def _refuse_repeats(body: dict[str, Any]) -> None:
    """A name listed twice in one file is a mistake the database would only half catch
    (a merge would silently keep one of them)."""
    lists = {
        "object": body.get("objects") or [],
        "tag": body.get("tags") or [],
        "resource type association": body.get("resource_type_associations") or [],
    }
    for what, items in lists.items():
        seen: set[str] = set()
        for item in items:
            if item["name"] in seen:
                raise errors.BadRequest(f"The {what} '{item['name']}' is listed twice.")
            seen.add(item["name"])


def load(
    db: Database, paths: Sequence[Path], mode: LoadMode, progress: Progress | None = None
) -> list[FileResult]:
    """Load each file in its own transaction; a file that fails is reported, not raised."""
    results: list[FileResult] = []
    for done, path in enumerate(paths, start=1):
        namespace: str | None = None
        try:
            body = read_definition(path)
            namespace = body["namespace"]
            with db.transaction() as session:
                outcome = _store(session, body, mode)
            results.append(FileResult(path, outcome, namespace))
        except (OSError, errors.GlimpseError, IntegrityError) as exc:
            message = exc.message if isinstance(exc, errors.GlimpseError) else str(exc)
            results.append(FileResult(path, Outcome.FAILED, namespace, message))
        if progress is not None:
            progress(done, len(paths), namespace or path.name)
    return results


def _store(session: Session, body: dict[str, Any], mode: LoadMode) -> Outcome:
    query = select(MetadefNamespace).where(MetadefNamespace.namespace == body["namespace"])
    namespace = session.scalars(query).first()
    if namespace is None:
        namespaces.insert(session, body, body.get("owner", DEFAULT_OWNER))
        return Outcome.CREATED
    if mode is LoadMode.SKIP_EXISTING:
        return Outcome.SKIPPED
    if mode is LoadMode.OVERWRITE:
        namespace.associations.clear()
        namespace.objects.clear()
        namespace.properties.clear()
        namespace.tags.clear()
        session.flush()
    if mode in (LoadMode.PREFER_NEW, LoadMode.OVERWRITE):
        _assign_namespace(namespace, body)
    _merge_items(session, namespace, body, update=mode is LoadMode.PREFER_NEW)
    return {
        LoadMode.MERGE: Outcome.MERGED,
        LoadMode.PREFER_NEW: Outcome.UPDATED,
        LoadMode.OVERWRITE: Outcome.REPLACED,
    }[mode]


def _assign_namespace(namespace: MetadefNamespace, body: dict[str, Any]) -> None:
    """The namespace's own attributes as the file gives them (defaults as on create)."""
    namespace.display_name = body.get("display_name")
    namespace.description = body.get("description")
    namespace.visibility = body.get("visibility", "private")
    namespace.protected = bool(body.get("protected", False))
    namespace.owner = body.get("owner", DEFAULT_OWNER)
    namespace.updated_at = utcnow()


def _merge_items(
    session: Session, namespace: MetadefNamespace, body: dict[str, Any], update: bool
) -> None:
    """Add what the file defines and the namespace lacks; with ``update``, also make
    existing items what the file says."""
    now = utcnow()
    for association in body.get("resource_type_associations") or []:
        found = resource_types.find_association(namespace, association["name"])
        if found is None:
            resource_types.associate(session, namespace, association)
        elif update:
            found.prefix = association.get("prefix")
            found.properties_target = association.get("properties_target")
            found.updated_at = now
    for definition in body.get("objects") or []:
        obj = objects.find(session, namespace, definition["name"])
        if obj is None:
            objects.add(session, namespace, definition)
        elif update:
            objects.assign(obj, definition)
            obj.updated_at = now
    for name, definition in (body.get("properties") or {}).items():
        prop = properties.find(session, namespace, name)
        if prop is None:
            properties.add(session, namespace, name, definition)
        elif update:
            properties.assign(prop, name, definition)
            prop.updated_at = now
    for tag in body.get("tags") or []:
        if tags.find(session, namespace, tag["name"]) is None:
            tags.add(session, namespace, tag["name"])
    session.flush()


def unload(db: Database) -> dict[str, int]:
    """Delete every namespace, everything in them and every resource type; returns the
    rows deleted per table."""
    # Children first: the foreign keys have no ON DELETE CASCADE.
    models = (
        MetadefProperty,
        MetadefObject,
        MetadefTag,
        MetadefNamespaceResourceType,
        MetadefNamespace,
        MetadefResourceType,
    )
    deleted: dict[str, int] = {}
    with db.transaction() as session:
        for model in models:
            result = cast(CursorResult[Any], session.execute(delete(model)))
            deleted[model.__tablename__] = result.rowcount
    return deleted


def namespace_document(detail: NamespaceDetail) -> dict[str, Any]:
    """A namespace as a definition file holds it; unset attributes are left out."""
    record = detail.namespace
    document: dict[str, Any] = {"namespace": record.namespace}
    _put(document, "display_name", record.display_name)
    _put(document, "description", record.description)
    document["visibility"] = record.visibility
    document["protected"] = record.protected
    _put(document, "owner", record.owner)
    associations = []
    for association in sorted(record.associations, key=lambda a: a.name):
        item: dict[str, Any] = {"name": association.name}
        _put(item, "prefix", association.prefix)
        _put(item, "properties_target", association.properties_target)
        associations.append(item)
    document["resource_type_associations"] = associations
    document["properties"] = {p.name: p.definition for p in detail.properties}
    exported_objects = []
    for obj in detail.objects:
        item = {"name": obj.name}
        _put(item, "description", obj.description)
        _put(item, "required", obj.required)
        item["properties"] = obj.properties
        exported_objects.append(item)
    document["objects"] = exported_objects
    document["tags"] = [{"name": tag.name} for tag in detail.tags]
    return document


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def export(db: Database, directory: Path, progress: Progress | None = None) -> list[Path]:
    """Write one ``<Namespace>.json`` per namespace into ``directory`` (created if need be;
    files of the same name are replaced). Returns the files written, by namespace."""
    with db.transaction() as session:
        query = select(MetadefNamespace).options(
            selectinload(MetadefNamespace.objects),
            selectinload(MetadefNamespace.properties),
            selectinload(MetadefNamespace.tags),
        )
        documents = [namespace_document(NamespaceDetail.of(row)) for row in session.scalars(query)]
    documents.sort(key=lambda d: str(d["namespace"]))
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written: list[Path] = []
    for done, document in enumerate(documents, start=1):
        path = directory / _file_name(document["namespace"], taken)
        _write_atomically(path, json.dumps(document, indent=4, ensure_ascii=False) + "\n")
        written.append(path)
        if progress is not None:
            progress(done, len(documents), document["namespace"])
    return written


def _file_name(namespace: str, taken: set[str]) -> str:
    """Glance's naming (``OS::Compute::Libvirt`` -> ``OSComputeLibvirt.json``), made unique
    even on case-insensitive file systems."""
    stem = re.sub(r"[\W_]+", "", namespace) or "namespace"
    name, counter = stem, 1
    while name.casefold() in taken:
        counter += 1
        name = f"{stem}-{counter}"
    taken.add(name.casefold())
    return name + ".json"


def _write_atomically(path: Path, text: str) -> None:
    """A reader (or a load running beside) never sees half a file."""
    # open() rather than mkstemp: the file gets the umask's permissions, not 0600.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
