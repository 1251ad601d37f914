"""Handlers for /v2/tasks and /v2/images/{image_id}/tasks."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse import errors
from glimpse.http import forwarded, views
from glimpse.http.requests import context, image_id_param, no_body, read_json, runtime
from glimpse.services import imports, tasks


async def index(request: Request) -> Response:
    await no_body(request)
    params = list(request.query_params.multi_items())
    page = await run_in_threadpool(tasks.list_tasks, runtime(request), context(request), params)
    body: dict[str, object] = {
        "tasks": [views.task(t, full=False) for t in page.tasks],
        "first": page.first,
        "schema": "/v2/schemas/tasks",
    }
    if page.next:
        body["next"] = page.next
    return JSONResponse(body)


async def create(request: Request) -> Response:
    body = await read_json(request)
    task = await run_in_threadpool(
        imports.create_legacy_task, runtime(request), context(request), body
    )
    location = forwarded.url(request, f"/v2/tasks/{task.id}")
    return JSONResponse(views.task(task), status_code=201, headers={"Location": location})


async def show(request: Request) -> Response:
    await no_body(request)
    task = await run_in_threadpool(
        tasks.show, runtime(request), context(request), request.path_params["task_id"]
    )
    return JSONResponse(views.task(task))


async def delete(request: Request) -> Response:
    raise errors.MethodNotAllowed(["GET"])


async def image_tasks(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        tasks.image_tasks, runtime(request), context(request), image_id_param(request)
    )
    return JSONResponse({"tasks": [views.task(t, with_image=True) for t in found]})
