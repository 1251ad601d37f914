"""Handlers for staging, importing and import discovery."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse import errors
from glimpse.http.image_data import require_octet_stream, upload_request
from glimpse.http.requests import context, image_id_param, no_body, read_json, runtime
from glimpse.services import image_data, imports


async def stage(request: Request) -> Response:
    rt, ctx = runtime(request), context(request)
    if "glance-direct" not in imports.import_methods(rt):
        raise errors.NotFound("The glance-direct import method is not enabled.")
    require_octet_stream(request)
    # X-Image-Meta-Store is ignored when staging: the staging area is one place.
    await image_data.stage(rt, ctx, image_id_param(request), upload_request(request, None))
    return Response(status_code=204)


async def start(request: Request) -> Response:
    rt, ctx = runtime(request), context(request)
    body = await read_json(request)
    store_id = request.headers.get("x-image-meta-store") if rt.stores.multi else None
    await run_in_threadpool(imports.start_import, rt, ctx, image_id_param(request), body, store_id)
    return Response(status_code=202)


async def info(request: Request) -> Response:
    await no_body(request)
    return JSONResponse(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": imports.import_methods(runtime(request)),
            }
        }
    )
