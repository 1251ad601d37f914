"""Request parsing shared by the handlers: JSON bodies, body-less routes, the context."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.runtime import Runtime

#: Largest JSON request body accepted; image metadata is small, this only stops abuse.
MAX_JSON_BODY = 4 * 1024 * 1024


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def context(request: Request) -> RequestContext:
    ctx: RequestContext = request.scope["glimpse.context"]
    return ctx


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            return int(length) > 0
        except ValueError:
            raise errors.BadRequest("Invalid Content-Length header.") from None
    return "transfer-encoding" in request.headers


async def no_body(request: Request) -> None:
    """Routes that take no body refuse one."""
    if has_body(request):
        raise errors.BodyNotExpected()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request) -> Any:
    """The decoded JSON body: an object or array, or 400."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise errors.RequestEntityTooLarge("The request body is too large.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise errors.BadRequest("Body expected in request.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise errors.BadRequest("Malformed JSON in request body.") from exc
    if not isinstance(body, dict | list):
        raise errors.BadRequest("Unexpected body type. Expected list/dict.")
    if _has_nul(body):
        # PostgreSQL cannot store NUL in text; refuse it alike on every database.
        raise errors.BadRequest("Strings in the request body must not contain NUL characters.")
    return body


def _has_nul(body: Any) -> bool:
    # Iterative: a body may be nested nearly as deep as the recursion limit.
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def image_id_param(request: Request) -> str:
    value: str = request.path_params["image_id"]
    return value
