"""Who the caller is, as each of Glance's ``[paste_deploy] flavor`` pipelines decides it.

* no flavor (the embedded default): :func:`from_headers` takes identity headers, or
  a ``user:project:roles`` token, as keystonemiddleware would set them; with none
  the caller is an administrator without a project, as under Glance's
  unauthenticated context.
* ``trusted-auth``: :func:`trusted` takes the identity headers a front proxy set;
  with none the request is refused (401), or anonymous and read-only when
  ``allow_anonymous_access`` is set.
* ``keystone``: :mod:`glimpse.http.keystone` validates the X-Auth-Token.

:func:`for_flavor` picks one; the gateway awaits it for every API request.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping

from oslo_config import cfg

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.policy import Policy

#: Builds the context of one request from its (lower-cased) headers and request id;
#: raises a :class:`~glimpse.errors.GlimpseError` (401, 503) to refuse it.
Identify = Callable[[Mapping[str, str], str], Awaitable[RequestContext]]

# Glance's pipelines are named "<auth>[+caching|+cachemanagement]"; the cache filters
# change nothing about identity.
_NO_AUTH_FLAVORS = ("", "caching", "cachemanagement")


def for_flavor(conf: cfg.ConfigOpts, policy: Policy) -> Identify:
    """How requests are identified under ``[paste_deploy] flavor``."""
    flavor = (conf.paste_deploy.flavor or "").strip().lower()
    auth = flavor.split("+", 1)[0]
    if auth == "keystone":
        from glimpse.http import keystone  # it builds on this module's helpers

        return keystone.KeystoneIdentity(conf, policy).identify
    if auth == "trusted-auth":

        async def identify_trusted(headers: Mapping[str, str], request_id: str) -> RequestContext:
            return trusted(conf, policy, headers, request_id)

        return identify_trusted
    if auth in _NO_AUTH_FLAVORS:

        async def identify_unauthenticated(
            headers: Mapping[str, str], request_id: str
        ) -> RequestContext:
            return from_headers(conf, policy, headers, request_id)

        return identify_unauthenticated
    raise ValueError(
        f"[paste_deploy] flavor {conf.paste_deploy.flavor!r} is not one of: keystone, "
        "trusted-auth (optionally followed by +caching or +cachemanagement), or unset"
    )


#: The longest user or project id Glimpse can record (as an image's or task's owner,
#: a member, a namespace's owner): the database columns' size, as in Glance.
MAX_ID_LENGTH = 255


def check_ids(context: RequestContext) -> None:
    """Refuse (400) a user or project id that no owner column could hold.

    Keystone's ids are short; only identity headers (or a test token) can carry
    others, and those would otherwise fail in the database, or be silently kept
    whole by SQLite.
    """
    for what, value in (("project", context.project_id), ("user", context.user_id)):
        if value is None:
            continue
        if len(value) > MAX_ID_LENGTH:
            raise errors.BadRequest(f"The {what} id is longer than {MAX_ID_LENGTH} characters.")
        if "\x00" in value:
            raise errors.BadRequest(f"The {what} id must not contain NUL characters.")


def authenticated(
    conf: cfg.ConfigOpts, policy: Policy, request_id: str, **identity: object
) -> RequestContext:
    """The context of an authenticated caller; administrator by admin_role or context_is_admin."""
    context = RequestContext(owner_is_tenant=conf.owner_is_tenant, request_id=request_id)
    for name, value in identity.items():
        if not hasattr(context, name):
            raise TypeError(f"RequestContext has no field {name!r}")
        setattr(context, name, value)
    admin_role = (conf.admin_role or "admin").lower()
    context.is_admin = admin_role in context.roles or policy.is_admin(context)
    return context


def anonymous(conf: cfg.ConfigOpts, request_id: str) -> RequestContext:
    """Glance's anonymous context: no identity, no roles, read-only."""
    return RequestContext(
        read_only=True, owner_is_tenant=conf.owner_is_tenant, request_id=request_id
    )


def unauthenticated(
    conf: cfg.ConfigOpts, request_id: str, challenge: Mapping[str, str] | None = None
) -> RequestContext:
    """A caller without valid credentials: anonymous if allowed, else 401 with ``challenge``."""
    if conf.allow_anonymous_access:
        return anonymous(conf, request_id)
    raise errors.Unauthorized(headers=dict(challenge or {}))


def trusted(
    conf: cfg.ConfigOpts, policy: Policy, headers: Mapping[str, str], request_id: str
) -> RequestContext:
    """The ``trusted-auth`` flavor: the X-* headers as an authenticating proxy set them.

    ``X-Identity-Status`` decides when present (``Confirmed`` or not), as in Glance;
    otherwise any identity header counts as confirmation.
    """
    status = headers.get("x-identity-status")
    identity = _identity_headers(headers)
    if status is not None:
        confirmed = status.strip().lower() == "confirmed"
    else:
        confirmed = any(identity.get(k) for k in ("user_id", "project_id", "roles"))
    if not confirmed:
        return unauthenticated(conf, request_id)
    return authenticated(conf, policy, request_id, **identity)


def _identity_headers(headers: Mapping[str, str]) -> dict[str, object]:
    """The context fields keystonemiddleware's headers carry."""
    admin_project = (_first(headers, "x-is-admin-project") or "true").lower()
    return {
        "user_id": _first(headers, "x-user-id", "x-user"),
        "project_id": _first(headers, "x-project-id", "x-tenant-id", "x-tenant"),
        "roles": _split_roles(_first(headers, "x-roles", "x-role")),
        "auth_token": headers.get("x-auth-token"),
        "user_domain_id": _first(headers, "x-user-domain-id"),
        "project_domain_id": _first(headers, "x-project-domain-id"),
        "domain_id": _first(headers, "x-domain-id"),
        "system_scope": _first(headers, "openstack-system-scope"),
        "is_admin_project": admin_project == "true",
        "service_roles": _split_roles(_first(headers, "x-service-roles")),
    }


def _first(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value.strip()
    return None


def _split_roles(text: str | None) -> list[str]:
    if not text:
        return []
    return [r.strip().lower() for r in text.split(",") if r.strip()]


def from_headers(
    conf: cfg.ConfigOpts, policy: Policy, headers: Mapping[str, str], request_id: str
) -> RequestContext:
    """Build the request context from trusted identity headers or a test token."""
    user = _first(headers, "x-user-id", "x-user")
    project = _first(headers, "x-project-id", "x-tenant-id", "x-tenant")
    roles_header = _first(headers, "x-roles", "x-role")
    token = headers.get("x-auth-token")
    roles = _split_roles(roles_header)
    if user is None and project is None and roles_header is None and token:
        parts = urllib.parse.unquote(token.strip()).split(":")
        if len(parts) == 3:
            user, project = parts[0] or None, parts[1] or None
            roles = _split_roles(parts[2])
    if user is None and project is None and not roles:
        return RequestContext(
            is_admin=True,
            owner_is_tenant=conf.owner_is_tenant,
            request_id=request_id,
            auth_token=token,
        )
    context = RequestContext(
        user_id=user,
        project_id=project,
        roles=roles,
        owner_is_tenant=conf.owner_is_tenant,
        auth_token=token,
        user_domain_id=_first(headers, "x-user-domain-id"),
        project_domain_id=_first(headers, "x-project-domain-id"),
        service_roles=_split_roles(_first(headers, "x-service-roles")),
        request_id=request_id,
    )
    admin_role = (conf.admin_role or "admin").lower()
    context.is_admin = admin_role in roles or policy.is_admin(context)
    return context
