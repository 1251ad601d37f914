"""Handlers for /v2/images/{image_id}/file: upload and download."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from glimpse import errors
from glimpse.data.pipeline import iter_store
from glimpse.http.requests import context, image_id_param, no_body, runtime
from glimpse.notifications.downloads import CountedStream, announce_send
from glimpse.services import image_data
from glimpse.store.errors import StoreNotFound

_HASH_HEADER = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*[:=]\s*([0-9A-Fa-f]+)\s*$")
#: Request header carrying the digest the client expects: ``<algorithm>:<hexdigest>``.
EXPECTED_HASH_HEADER = "x-image-meta-expected-hash"
#: The ASGI extension of servers that can send a file by path.
_PATHSEND = "http.response.pathsend"


def _int_header(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"Invalid {name} header: {raw!r}") from None
    if value < 0:
        raise errors.BadRequest(f"Invalid {name} header: {raw!r}")
    return value


def require_octet_stream(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/octet-stream":
        raise errors.UnsupportedMediaType(
            f"Content-Type must be application/octet-stream, not {media_type or 'none'}."
        )


def expected_hash(request: Request, configured_algo: str) -> tuple[str, str] | None:
    raw = request.headers.get(EXPECTED_HASH_HEADER)
    if raw is None:
        return None
    match = _HASH_HEADER.match(raw)
    if not match:
        raise errors.BadRequest(
            f"Invalid {EXPECTED_HASH_HEADER} header: expected '<algorithm>:<hexdigest>'."
        )
    algo = match.group(1).lower()
    if algo not in ("md5", configured_algo):
        raise errors.BadRequest(
            f"Cannot verify a {algo} digest: this deployment computes md5 and {configured_algo}."
        )
    return algo, match.group(2)


def upload_request(request: Request, store_id: str | None) -> image_data.UploadRequest:
    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    rt = runtime(request)
    content_length = None
    if "transfer-encoding" not in request.headers:
        content_length = _int_header(request, "content-length")
    return image_data.UploadRequest(
        chunks=chunks(),
        content_length=content_length,
        declared_size=_int_header(request, "x-openstack-image-size"),
        expected_hash=expected_hash(request, str(rt.conf.hashing_algorithm)),
        store_id=store_id,
    )


async def upload(request: Request) -> Response:
    require_octet_stream(request)
    rt, ctx = runtime(request), context(request)
    # The header names the store (2.8); without multi-store it is ignored, as in Glance.
    store_id = request.headers.get("x-image-meta-store") if rt.stores.multi else None
    req = upload_request(request, store_id)
    await image_data.upload(rt, ctx, image_id_param(request), req)
    return Response(status_code=204)


async def download(request: Request) -> Response:
    await no_body(request)
    rt, ctx = runtime(request), context(request)
    source = await run_in_threadpool(
        image_data.open_download,
        rt,
        ctx,
        image_id_param(request),
        request.headers.get("range"),
        request.headers.get("content-range"),
    )
    if source is None:
        return Response(status_code=204)
    sent = functools.partial(announce_send, rt.notifier, ctx, source.image, source.length)
    headers = {"Content-Length": str(source.length)}
    if source.image.checksum:
        headers["Content-MD5"] = source.image.checksum
    if source.partial:
        end = source.offset + source.length - 1
        headers["Content-Range"] = f"bytes {source.offset}-{end}/{source.total}"
        status = 206
    else:
        status = 200
        path = source.local_path
        if path is not None and _PATHSEND in request.scope.get("extensions", {}):
            # The server (granian) sends the file itself, without copying it through
            # Python. Elsewhere FileResponse reads 64 KiB per thread hop, several times
            # slower than our streamed read below.
            return FileResponse(
                path,
                status_code=200,
                headers=headers,
                media_type="application/octet-stream",
                stat_result=None,
                content_disposition_type="inline",
                filename=None,
                background=BackgroundTask(sent, source.length),
            )
    try:
        body = await iter_store(source.driver, source.uri, source.offset, source.length)
    except StoreNotFound:
        # Gone from the store since open_download looked: "no data", as Glance answers.
        return Response(status_code=204)
    except Exception as exc:
        raise errors.ServiceUnavailable(f"Image data could not be read: {exc}") from exc
    return StreamingResponse(
        CountedStream(body, sent),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
