"""The versions document and version negotiation."""

from __future__ import annotations

import re
from typing import Any

from oslo_config import cfg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http import forwarded

#: Minor versions whose features Glimpse really serves, newest first.
CURRENT = "2.7"
SUPPORTED = ("2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")
#: The multi-store version, listed and accepted only with ``enabled_backends``.
#:
#: Glance lists it only then too: EXPERIMENTAL in Rocky, SUPPORTED from Train on, below a
#: CURRENT 2.9. Multi-store is stable in Glimpse, so 2.8 is SUPPORTED. 2.7 stays CURRENT:
#: Glimpse serves a few later additions (copy-image, DELETE /v2/stores/..., an image's
#: tasks) but not all of 2.9 and later, so it claims no version past 2.8; and a CURRENT
#: 2.8 would make the version clients settle on depend on the deployment's stores.
MULTI_STORE = "2.8"
_PREFIX = re.compile(r"^/v(2)(?:\.(\d+))?(?=/|$)")


def _multi_store(conf: cfg.ConfigOpts) -> bool:
    return bool(conf.enabled_backends)


def accepted_minor_versions(conf: cfg.ConfigOpts) -> set[str]:
    accepted = {CURRENT, *SUPPORTED}
    if _multi_store(conf):
        accepted.add(MULTI_STORE)
    return accepted


def document(conf: cfg.ConfigOpts, base_url: str) -> dict[str, Any]:
    base = (conf.public_endpoint or base_url).rstrip("/")
    entries = [(CURRENT, "CURRENT")] + [(v, "SUPPORTED") for v in SUPPORTED]
    if _multi_store(conf):
        entries.insert(0, (MULTI_STORE, "SUPPORTED"))
    return {
        "versions": [
            {
                "id": f"v{version}",
                "status": status,
                "links": [{"rel": "self", "href": f"{base}/v2/"}],
            }
            for version, status in entries
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
