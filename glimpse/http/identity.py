"""Who the caller is, without Keystone: identity headers or a ``user:project:roles`` token.

This is the embedded default's auth mode (and Glance's ``trusted-auth`` flavor):
headers are taken as a front proxy or keystonemiddleware would set them. With
none given the caller is an administrator without a project, as under Glance's
unauthenticated context.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from oslo_config import cfg

from glimpse.context import RequestContext
from glimpse.policy import Policy


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
