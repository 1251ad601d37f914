"""The versions document and version negotiation."""

from __future__ import annotations

import re
from typing import Any

from oslo_config import cfg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: Minor versions whose features Glimpse really serves, newest first.
CURRENT = "2.7"
SUPPORTED = ("2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")
_PREFIX = re.compile(r"^/v(2)(?:\.(\d+))?(?=/|$)")


def accepted_minor_versions(conf: cfg.ConfigOpts) -> set[str]:
    return {CURRENT, *SUPPORTED}


def document(conf: cfg.ConfigOpts, base_url: str) -> dict[str, Any]:
    base = (conf.public_endpoint or base_url).rstrip("/")
    entries = [(CURRENT, "CURRENT")] + [(v, "SUPPORTED") for v in SUPPORTED]
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
    return JSONResponse(document(conf, str(request.base_url)), status_code=status)
