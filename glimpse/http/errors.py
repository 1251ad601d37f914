"""The one place that renders errors, in Glance's formats, chosen by the Accept header.

* ``*/*`` or ``text/html`` (what python-glanceclient and curl send) gets HTML;
* ``application/json`` gets ``{"message", "code", "title"}``;
* anything else gets plain text.
"""

from __future__ import annotations

import html
import json
import re

from starlette.requests import Request
from starlette.responses import Response

from glimpse import errors

_OFFERS = ("text/html", "application/json")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def _preferred(accept: str | None) -> str:
    """The body format webob's ``acceptable_offers`` picks among Glance's two offers.

    Each offer takes the quality of the most specific range matching it; the best
    quality wins and a tie goes to HTML. No header, or one matching neither offer,
    gives plain text; a malformed header accepts anything, hence HTML.
    """
    if accept is None:
        return "text/plain"
    ranges: list[tuple[str, str, bool, float]] = []
    for part in accept.split(","):
        if not part.strip():
            continue
        media, *params = (field.strip() for field in part.split(";"))
        kind, _, sub = media.lower().partition("/")
        if not (_TOKEN.match(kind) and _TOKEN.match(sub)) or (kind == "*" and sub != "*"):
            return "text/html"
        q, media_params = 1.0, False
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                if not _QVALUE.match(value.strip()):
                    return "text/html"
                q = float(value)
                break  # what follows q are accept-extensions
            media_params = True
        ranges.append((kind, sub, media_params, q))
    best, best_q = "text/plain", 0.0
    for offer in _OFFERS:
        kind, sub = offer.split("/")
        quality, specificity = 0.0, 0
        for r_kind, r_sub, r_params, q in ranges:
            if (r_kind, r_sub) == (kind, sub) and not r_params:
                level = 3
            elif r_kind == kind and r_sub == "*":
                level = 2
            elif (r_kind, r_sub) == ("*", "*"):
                level = 1
            else:
                continue
            if level > specificity:
                quality, specificity = q, level
        if quality > best_q:
            best, best_q = offer, quality
    return best


def render(request: Request | None, error: errors.GlimpseError) -> Response:
    """Turn ``error`` into the response Glance would send for it."""
    status_line = f"{error.status} {error.title}"
    accept = request.headers.get("accept") if request is not None else None
    kind = _preferred(accept)
    if kind == "text/html":
        body = (
            f"<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n"
            f"  <h1>{status_line}</h1>\n  {html.escape(error.message)}<br /><br />\n\n\n\n"
            " </body>\n"
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
