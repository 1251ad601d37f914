"""Handlers for the stores: ``/v2/info/stores``, its ``/detail`` and
``/v2/stores/{store_id}/{image_id}``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http.requests import context, image_id_param, no_body, runtime
from glimpse.services import stores


async def info(request: Request) -> Response:
    await no_body(request)
    return JSONResponse({"stores": stores.info(runtime(request))})


async def info_detail(request: Request) -> Response:
    await no_body(request)
    return JSONResponse({"stores": stores.info_detail(runtime(request), context(request))})


async def delete_image_data(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    store_id: str = request.path_params["store_id"]
    await run_in_threadpool(stores.delete_from_store, rt, ctx, store_id, image_id_param(request))
    return Response(status_code=204)
