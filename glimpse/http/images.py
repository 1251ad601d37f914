"""Handlers for /v2/images and its actions."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse import errors
from glimpse.http import forwarded, views
from glimpse.http.requests import context, image_id_param, no_body, read_json, runtime
from glimpse.services import image_listing, image_patch, images, imports


async def create(request: Request) -> Response:
    rt, ctx = runtime(request), context(request)
    body = await read_json(request)
    image = await run_in_threadpool(images.create, rt, ctx, body)
    headers = {"Location": forwarded.url(request, f"/v2/images/{image.id}")}
    methods = imports.import_methods(rt)
    if methods:
        headers["OpenStack-image-import-methods"] = ",".join(methods)
    if rt.stores.multi:
        headers["OpenStack-image-store-ids"] = ",".join(rt.stores.drivers)
    return JSONResponse(views.image(rt, ctx, image), status_code=201, headers=headers)


async def index(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    # Glance lower-cases os_hidden (only that filter): openstacksdk and glanceclient send
    # Python's "True"/"False".
    params = [
        (key, value.lower() if key == "os_hidden" else value)
        for key, value in request.query_params.multi_items()
    ]
    page = await run_in_threadpool(image_listing.list_images, rt, ctx, params)
    body: dict[str, object] = {
        "images": [views.image(rt, ctx, img) for img in page.images],
        "first": page.first,
        "schema": "/v2/schemas/images",
    }
    if page.next:
        body["next"] = page.next
    return JSONResponse(body)


async def show(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    image = await run_in_threadpool(images.show, rt, ctx, image_id_param(request))
    return JSONResponse(views.image(rt, ctx, image))


async def update(request: Request) -> Response:
    rt, ctx = runtime(request), context(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in image_patch.PATCH_MEDIA_TYPES:
        raise errors.UnsupportedMediaType(
            f"Unsupported Content-Type: {media_type or 'none'}",
            headers={"Accept-Patch": ", ".join(image_patch.PATCH_MEDIA_TYPES)},
        )
    operations = image_patch.parse(media_type, await read_json(request))
    image = await run_in_threadpool(images.update, rt, ctx, image_id_param(request), operations)
    return JSONResponse(views.image(rt, ctx, image))


async def delete(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    await run_in_threadpool(images.delete, rt, ctx, image_id_param(request))
    return Response(status_code=204)


async def deactivate(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    await run_in_threadpool(images.set_active_state, rt, ctx, image_id_param(request), False)
    return Response(status_code=204)


async def reactivate(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    await run_in_threadpool(images.set_active_state, rt, ctx, image_id_param(request), True)
    return Response(status_code=204)
