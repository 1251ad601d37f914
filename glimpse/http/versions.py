"""The versions document and version negotiation."""

from __future__ import annotations

import re
from typing import Any

from oslo_config import cfg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http import forwarded

#: The version Glimpse lists as CURRENT (Glance 2024.2 and later, without an image cache).
CURRENT = "2.17"
#: Listed SUPPORTED and accepted in every deployment, newest first.
SUPPORTED = ("2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")
#: Listed SUPPORTED and accepted only with ``enabled_backends``, newest first.
MULTI_STORE = ("2.13", "2.12", "2.11", "2.10", "2.8")
#
# Glimpse lists what Glance 2026.2 lists without an image cache, and serves each listed
# version's additions:
#
# * always: 2.0-2.7 (Rocky's API); 2.9 (Train: multi-store declared stable, nothing new
#   for a single store); 2.15 (Yoga: GET /v2/info/stores/detail, 404 without
#   enabled_backends as in Glance); 2.17, CURRENT (2024.2: POST and GET
#   /v2/images/{id}/locations, see glimpse/services/location_import.py).
# * with enabled_backends only, as Glance: 2.8 (Rocky's multi-store); 2.10 (Ussuri:
#   copy-image, import to several stores, DELETE /v2/stores/{store_id}/{image_id});
#   2.11 (Victoria: the import lock, the copy_image policy, failed imports back to
#   queued); 2.12 (Wallaby: GET /v2/images/{id}/tasks, which Glimpse serves in every
#   deployment); 2.13 (Yoga: GET /v2/info/usage, also served everywhere; it reports the
#   Keystone unified limits Glance enforces with use_keystone_limits, which Glimpse does
#   not have, so it answers {"usage": {}} as Glance does without them).
# * never: 2.14, 2.16 and 2.18, the image cache API (/v2/cache), which Glance lists only
#   when image_cache_dir is set and Glimpse does not implement. Tempest and the clients
#   probe features by the versions listed, so claiming 2.17 does not claim the cache:
#   Glance itself lists 2.17 without 2.14 and 2.16.
#
# Glance lists them in a scrambled order (2.15, 2.9 or 2.13-2.8, 2.17, 2.7...); Glimpse
# lists the same entries newest first. What clients see as CURRENT does not depend on
# the deployment's stores.
_PREFIX = re.compile(r"^/v(2)(?:\.(\d+))?(?=/|$)")


def _multi_store(conf: cfg.ConfigOpts) -> bool:
    return bool(conf.enabled_backends)


def _listed(conf: cfg.ConfigOpts) -> list[str]:
    """Every version served here, newest first."""
    versions = [CURRENT, *SUPPORTED]
    if _multi_store(conf):
        versions += MULTI_STORE
    return sorted(versions, key=lambda v: tuple(int(part) for part in v.split(".")), reverse=True)


def accepted_minor_versions(conf: cfg.ConfigOpts) -> set[str]:
    return set(_listed(conf))


def document(conf: cfg.ConfigOpts, base_url: str) -> dict[str, Any]:
    base = (conf.public_endpoint or base_url).rstrip("/")
    return {
        "versions": [
            {
                "id": f"v{version}",
                "status": "CURRENT" if version == CURRENT else "SUPPORTED",
                "links": [{"rel": "self", "href": f"{base}/v2/"}],
            }
            for version in _listed(conf)
        ]
    }


def negotiate(conf: cfg.ConfigOpts, path: str, accept: str | None) -> str | None:
    """The path the v2 router should see, or None when the versions list is the answer."""
    match = _PREFIX.match(path)
    if match:
        minor = match.group(2)
        if minor is not None and f"2.{minor}" not in accepted_minor_versions(conf):
            return None
        return "/v2" + path[match.end() :]
    if accept:
        found = re.search(r"application/vnd\.openstack\.images-v2(?:\.(\d+))?", accept)
        if found and (
            found.group(1) is None or f"2.{found.group(1)}" in accepted_minor_versions(conf)
        ):
            return "/v2" + path
    return None


def response(conf: cfg.ConfigOpts, request: Request, status: int) -> Response:
    """The versions list: 300 at ``/`` and for unknown versions, 200 at ``/versions``."""
    return JSONResponse(document(conf, forwarded.url(request, "/")), status_code=status)
