"""Handlers for /v2/images/{image_id}/members."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http import views
from glimpse.http.requests import context, image_id_param, no_body, read_json, runtime
from glimpse.services import members


async def index(request: Request) -> Response:
    await no_body(request)
    image_id = image_id_param(request)
    found = await run_in_threadpool(
        members.list_members, runtime(request), context(request), image_id
    )
    return JSONResponse(
        {"members": [views.member(m) for m in found], "schema": "/v2/schemas/members"}
    )


async def create(request: Request) -> Response:
    image_id = image_id_param(request)
    body = await read_json(request)
    member = await run_in_threadpool(
        members.create, runtime(request), context(request), image_id, body
    )
    return JSONResponse(views.member(member))


async def show(request: Request) -> Response:
    await no_body(request)
    image_id = image_id_param(request)
    member = await run_in_threadpool(
        members.show,
        runtime(request),
        context(request),
        image_id,
        request.path_params["member_id"],
    )
    return JSONResponse(views.member(member))


async def update(request: Request) -> Response:
    image_id = image_id_param(request)
    body = await read_json(request)
    member = await run_in_threadpool(
        members.update,
        runtime(request),
        context(request),
        image_id,
        request.path_params["member_id"],
        body,
    )
    return JSONResponse(views.member(member))


async def delete(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        members.delete,
        runtime(request),
        context(request),
        image_id_param(request),
        request.path_params["member_id"],
    )
    return Response(status_code=204)
