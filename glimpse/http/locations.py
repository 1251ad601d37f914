"""Handlers for /v2/images/{image_id}/locations, the locations API of Images API 2.17."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http.requests import context, image_id_param, no_body, read_json, runtime
from glimpse.services import location_import


async def add(request: Request) -> Response:
    body = await read_json(request)
    await run_in_threadpool(
        location_import.add_location,
        runtime(request),
        context(request),
        image_id_param(request),
        body,
    )
    # Glance's code answers 202 (its API reference says 200): the task runs later.
    return Response(status_code=202)


async def index(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        location_import.list_locations, runtime(request), context(request), image_id_param(request)
    )
    return JSONResponse(found)
