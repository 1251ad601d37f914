"""Handlers for /v2/schemas/*: the documents requests are validated against."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http.requests import no_body, runtime
from glimpse.schemas import member, task


async def image(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(runtime(request).image_schema.document)


async def images(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(runtime(request).image_schema.collection_document())


async def member_schema(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(member.member_document())


async def members_schema(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(member.members_document())


async def task_schema(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(task.task_document())


async def tasks_schema(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(task.tasks_document())
