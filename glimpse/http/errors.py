"""The one place that renders errors, in Glance's formats, chosen by the Accept header.

* ``*/*`` or ``text/html`` (what python-glanceclient and curl send) gets HTML;
* ``application/json`` gets ``{"message", "code", "title"}``;
* anything else gets plain text.
"""

from __future__ import annotations

import html
import json

from starlette.requests import Request
from starlette.responses import Response

from glimpse import errors


def _preferred(accept: str | None) -> str:
    if not accept:
        return "text/plain"
    best = None
    best_q = -1.0
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        for offer in ("text/html", "application/json"):
            if _matches(media, offer) and q > best_q and q > 0:
                best, best_q = offer, q
        del position
    return best or "text/plain"


def _matches(pattern: str, offer: str) -> bool:
    if pattern in ("*/*", offer):
        return True
    major, _, minor = pattern.partition("/")
    return minor == "*" and offer.startswith(major + "/")


def render(request: Request | None, error: errors.GlimpseError) -> Response:
    """Turn ``error`` into the response Glance would send for it."""
    status_line = f"{error.status} {error.title}"
    accept = request.headers.get("accept") if request is not None else None
    kind = _preferred(accept)
    if kind == "text/html":
        body = (
            f"<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n"
            f"  <h1>{status_line}</h1>\n  {html.escape(error.message)}<br /><br />\n\n\n\n </body>\n"
            "</html>"
        )
        media = "text/html; charset=UTF-8"
    elif kind == "application/json":
        body = json.dumps(
            {
                "message": f"{error.message}<br /><br />\n\n\n",
                "code": status_line,
                "title": error.title,
            }
        )
        media = "application/json"
    else:
        body = f"{status_line}\n\n{error.message}\n\n   "
        media = "text/plain; charset=UTF-8"
    headers = dict(error.headers)
    if request is not None and request.method == "HEAD":
        return Response(b"", status_code=error.status, headers=headers, media_type=media)
    return Response(body, status_code=error.status, headers=headers, media_type=media)
