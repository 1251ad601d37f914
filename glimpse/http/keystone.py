"""Keystone token validation: the ``keystone`` flavor.

What keystonemiddleware's ``auth_token`` (with ``delay_auth_decision``, as Glance
runs it) and Glance's context middleware do together, in one place:

1. No ``X-Auth-Token``: anonymous and read-only if ``allow_anonymous_access``,
   else 401.
2. The token is looked up in a bounded LRU cache; on a miss Keystone is asked,
   ``GET <auth_url>/v3/auth/tokens`` with the token as ``X-Subject-Token``,
   authenticated by this service's own token (a keystoneauth1 session configured
   by ``[keystone_authtoken]``), in a worker thread so the event loop never waits.
3. Keystone confirms (200): the request context is built from the token, roles
   lower-cased, administrator by ``admin_role`` or ``context_is_admin``. Keystone
   refuses (404: unknown, expired or revoked): 401 with
   ``WWW-Authenticate: Keystone uri="<www_authenticate_uri>"``, or the anonymous
   context when that is allowed. Keystone cannot be asked (unreachable, failing,
   or refusing this service's own credentials): 503.
4. An ``X-Service-Token`` is validated the same way; an invalid one is refused
   (401) and a valid one's roles become the context's ``service_roles``.

Caching and revocation. A confirmed token is trusted until its expiry but at most
``token_cache_time`` seconds (300 by default, keystonemiddleware's default) after
Keystone confirmed it; Keystone is not asked again in between. A revoked token is
therefore refused at the latest ``token_cache_time`` seconds after its revocation:
keystonemiddleware's trade-off since it stopped fetching revocation lists.
Deployments that need revocation to bite at once lower ``token_cache_time`` (0
asks Keystone on every request). Refused tokens are remembered just as long, so
that a burst of bad tokens does not become a burst of Keystone requests. The cache
keys are SHA-256 digests, never the tokens themselves.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import plugin as ks_plugin
from keystoneauth1 import session as ks_session
from oslo_config import cfg
from starlette.concurrency import run_in_threadpool

from glimpse import errors
from glimpse.config.keystone import GROUP
from glimpse.context import RequestContext
from glimpse.http import identity
from glimpse.policy import Policy

LOG = logging.getLogger(__name__)


class KeystoneUnavailable(Exception):
    """Keystone could not say whether a token is valid (the request gets 503)."""


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What a confirmed token says about its holder."""

    user_id: str
    expires_at: float  # seconds since the epoch
    roles: tuple[str, ...] = ()
    user_domain_id: str | None = None
    project_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    is_admin_project: bool = True

    @classmethod
    def from_keystone(cls, body: Mapping[str, Any]) -> TokenInfo:
        """Read the body of Keystone's ``GET /v3/auth/tokens`` answer."""
        token = body["token"]
        user = token["user"]
        project = token.get("project") or {}
        domain = token.get("domain") or {}
        system = token.get("system") or {}
        expires = datetime.datetime.fromisoformat(token["expires_at"])
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.UTC)
        return cls(
            user_id=user["id"],
            expires_at=expires.timestamp(),
            roles=tuple(r["name"].strip().lower() for r in token.get("roles") or ()),
            user_domain_id=(user.get("domain") or {}).get("id"),
            project_id=project.get("id"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=domain.get("id"),
            system_scope="all" if system.get("all") else None,
            is_admin_project=bool(token.get("is_admin_project", True)),
        )


@dataclasses.dataclass(frozen=True)
class _Entry:
    until: float
    info: TokenInfo | None  # None: Keystone refused the token


class TokenCache:
    """A bounded, thread-safe LRU of Keystone's answers, each with its own end."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: collections.OrderedDict[bytes, _Entry] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()

    def get(self, token: str, now: float) -> _Entry | None:
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.until <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, token: str, entry: _Entry) -> None:
        if self._size <= 0:
            return
        key = self._key(token)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def identity_base_url(auth_url: str) -> str:
    """``auth_url`` without a trailing API version: http://keystone:5000/v3 → http://keystone:5000."""
    url = auth_url.rstrip("/")
    for suffix in ("/v3", "/v2.0"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def load_service_auth(conf: cfg.ConfigOpts) -> ks_plugin.BaseAuthPlugin:
    """This service's own keystoneauth1 plugin, from ``[keystone_authtoken]`` (or auth_section).

    The ``password`` plugin's options are declared in :mod:`glimpse.config.keystone`;
    any other plugin's options are registered here, as keystoneauth1 would.
    """
    group = GROUP
    section = conf[GROUP].auth_section
    if section:
        for opt in ks_loading.get_auth_common_conf_options():
            if section not in conf or opt.dest not in conf[section]:
                conf.register_opt(opt, group=section)
        group = section
    name = conf[group].auth_type
    if not name:
        raise ValueError(
            f"[paste_deploy] flavor = keystone needs [{group}] auth_type (e.g. password) and "
            "the service's credentials to validate tokens with"
        )
    loader: ks_loading.BaseLoader[Any] = ks_loading.get_plugin_loader(name)
    for opt in ks_loading.get_auth_plugin_conf_options(loader):
        if opt.dest not in conf[group]:
            conf.register_opt(opt, group=group)
    values = conf[group]
    plugin: ks_plugin.BaseAuthPlugin = loader.load_from_options_getter(lambda opt: values[opt.dest])
    return plugin


class TokenValidator:
    """Asks Keystone about tokens. Blocking: call :meth:`validate` in a worker thread."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        opts = conf[GROUP]
        auth = load_service_auth(conf)
        auth_url = getattr(auth, "auth_url", None)
        if not auth_url:
            raise ValueError(f"[{GROUP}] auth_url is required with the keystone flavor")
        self.base_url = identity_base_url(str(auth_url))
        self._url = self.base_url + "/v3/auth/tokens?nocatalog"
        verify: bool | str = False if opts.insecure else (opts.cafile or True)
        cert: Any = opts.certfile
        if opts.certfile and opts.keyfile:
            cert = (opts.certfile, opts.keyfile)
        self._session = ks_session.Session(
            auth=auth,
            verify=verify,
            cert=cert,
            timeout=opts.http_connect_timeout,
            app_name="glimpse",
        )

    def validate(self, token: str) -> TokenInfo | None:
        """What Keystone says about ``token``: its holder, or None if it is not valid."""
        try:
            response = self._session.get(
                self._url,
                headers={"X-Subject-Token": token},
                authenticated=True,
                raise_exc=False,
            )
        except ks_exceptions.ClientException as exc:
            # Unreachable, timed out, or our own credentials refused while getting a token.
            raise KeystoneUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise KeystoneUnavailable(
                f"Keystone answered {response.status_code} to a token validation: "
                f"{response.text[:200]}"
            )
        try:
            info = TokenInfo.from_keystone(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoneUnavailable(f"unreadable token validation answer: {exc}") from exc
        return info if info.expires_at > time.time() else None


class KeystoneIdentity:
    """Builds each request's context from its Keystone token (see the module docstring)."""

    def __init__(
        self, conf: cfg.ConfigOpts, policy: Policy, validator: TokenValidator | None = None
    ) -> None:
        self._conf = conf
        self._policy = policy
        self._validator = validator or TokenValidator(conf)
        opts = conf[GROUP]
        self._cache_time = opts.token_cache_time
        self.cache = TokenCache(opts.token_cache_size if opts.token_cache_time > 0 else 0)
        self._service_roles = {r.strip().lower() for r in opts.service_token_roles or ()}
        self._service_roles_required = opts.service_token_roles_required
        uri = opts.www_authenticate_uri or self._validator.base_url
        self._challenge = {"WWW-Authenticate": f'Keystone uri="{uri}"'}

    async def identify(self, headers: Mapping[str, str], request_id: str) -> RequestContext:
        """The context of the request with these (lower-cased) headers; may raise 401 or 503."""
        token = (headers.get("x-auth-token") or "").strip()
        user = await self._lookup(token) if token else None
        if user is None:
            return identity.unauthenticated(self._conf, request_id, challenge=self._challenge)
        service_roles: list[str] = []
        service_token = (headers.get("x-service-token") or "").strip()
        if service_token:
            service = await self._lookup(service_token)
            if service is None:
                raise errors.Unauthorized(headers=self._challenge)
            if not self._service_roles.intersection(service.roles):
                if self._service_roles_required:
                    raise errors.Unauthorized(headers=self._challenge)
                LOG.warning(
                    "A service token without any of the roles %s was accepted; set "
                    "service_token_roles_required = true to refuse such tokens.",
                    sorted(self._service_roles),
                )
            service_roles = list(service.roles)
        return identity.authenticated(
            self._conf,
            self._policy,
            request_id,
            user_id=user.user_id,
            project_id=user.project_id,
            roles=list(user.roles),
            auth_token=token,
            user_domain_id=user.user_domain_id,
            project_domain_id=user.project_domain_id,
            domain_id=user.domain_id,
            system_scope=user.system_scope,
            is_admin_project=user.is_admin_project,
            service_roles=service_roles,
        )

    async def _lookup(self, token: str) -> TokenInfo | None:
        now = time.time()
        entry = self.cache.get(token, now)
        if entry is not None:
            return entry.info
        try:
            info = await run_in_threadpool(self._validator.validate, token)
        except KeystoneUnavailable as exc:
            LOG.error("Cannot validate a token with Keystone: %s", exc)
            raise errors.ServiceUnavailable(
                "The Keystone service is temporarily unavailable."
            ) from exc
        until = now + self._cache_time
        if info is not None:
            until = min(until, info.expires_at)
        self.cache.put(token, _Entry(until, info))
        return info
