"""Handlers for /v2/images/{image_id}/tags/{tag}."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from glimpse.http.requests import context, image_id_param, no_body, runtime
from glimpse.services import tags


async def add(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        tags.add,
        runtime(request),
        context(request),
        image_id_param(request),
        request.path_params["tag"],
    )
    return Response(status_code=204)


async def remove(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        tags.remove,
        runtime(request),
        context(request),
        image_id_param(request),
        request.path_params["tag"],
    )
    return Response(status_code=204)
