"""Who may see and who may change a metadef namespace, and the transaction writes run in.

Everything in a namespace (objects, properties, tags, resource type associations) follows
the namespace: visible when the namespace is, changeable only by its owner or an admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import MetadefNamespace
from glimpse.runtime import Runtime


def can_see(context: RequestContext, namespace: MetadefNamespace) -> bool:
    """Admins see every namespace; others the public ones and their own private ones."""
    if context.is_admin or namespace.visibility == "public":
        return True
    return context.owner is not None and namespace.owner == context.owner


def visible_clause(context: RequestContext) -> ColumnElement[bool]:
    """:func:`can_see` as a query condition, for listings."""
    if context.is_admin:
        return true()
    mine = MetadefNamespace.owner == context.owner if context.owner is not None else false()
    return or_(MetadefNamespace.visibility == "public", mine)


def can_modify(context: RequestContext, namespace: MetadefNamespace) -> bool:
    """Only an administrator or the owner changes a namespace or anything in it."""
    if context.is_admin:
        return True
    return context.owner is not None and namespace.owner == context.owner


def namespace_not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"Metadata definition namespace={name} was not found.")


def load_namespace(
    session: Session, context: RequestContext, name: str, for_update: bool = False
) -> MetadefNamespace:
    """The namespace called ``name`` if the caller may see it; 404 otherwise (never 403)."""
    query = select(MetadefNamespace).where(MetadefNamespace.namespace == name)
    if for_update and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    namespace = session.scalars(query).first()
    if namespace is None or not can_see(context, namespace):
        raise namespace_not_found(name)
    return namespace


def require_modify(context: RequestContext, namespace: MetadefNamespace, action: str) -> None:
    """403 unless the caller owns the namespace (or is an admin); ``action`` completes
    "You are not permitted to ..."."""
    if not can_modify(context, namespace):
        raise errors.Forbidden(f"You are not permitted to {action}.")


def require_unprotected(namespace: MetadefNamespace, what: str) -> None:
    """Nothing is deleted from a protected namespace; ``what`` names the thing refused."""
    if namespace.protected:
        raise errors.Forbidden(f"{what} is protected and cannot be deleted.")


def policy_target(namespace: MetadefNamespace) -> dict[str, Any]:
    """What oslo.policy rules see for anything in ``namespace``."""
    return {
        "namespace": namespace.namespace,
        "owner": namespace.owner,
        "project_id": namespace.owner,
        "visibility": namespace.visibility,
        "protected": namespace.protected,
    }


@contextmanager
def writing(rt: Runtime, conflict: str) -> Iterator[Session]:
    """A write transaction; a unique constraint violation becomes 409 ``conflict``.

    Services look for duplicates first to give the precise message; this catches the
    concurrent writer that got there in between.
    """
    try:
        with rt.db.transaction() as session:
            yield session
    except IntegrityError as exc:
        raise errors.Duplicate(conflict) from exc
