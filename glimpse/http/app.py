"""The ASGI application: routes, and the few cross-cutting steps every request takes."""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from glimpse import errors, log
from glimpse.http import errors as error_render
from glimpse.http import (
    forwarded,
    identity,
    image_data,
    images,
    imports,
    lifecycle,
    locations,
    members,
    metadefs,
    schemas,
    stores,
    tags,
    tasks,
    usage,
    versions,
)
from glimpse.runtime import Runtime

LOG = logging.getLogger(__name__)
_STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
_REQUEST_ID = re.compile(r"^[\x21-\x7e]+$")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _route(path: str, endpoint: Callable[[Request], Awaitable[Response]], *methods: str) -> Route:
    route = Route(path, endpoint, methods=list(methods))
    # Starlette answers HEAD wherever GET is allowed; Glance answers 405.
    if "HEAD" not in methods and route.methods is not None:
        route.methods.discard("HEAD")
    return route


def v2_routes() -> list[BaseRoute]:
    """Every route of the v2 API this build serves."""
    return [
        _route("/v2/images", images.index, "GET"),
        _route("/v2/images", images.create, "POST"),
        _route("/v2/images/{image_id}", images.show, "GET"),
        _route("/v2/images/{image_id}", images.update, "PATCH"),
        _route("/v2/images/{image_id}", images.delete, "DELETE"),
        _route("/v2/images/{image_id}/file", image_data.upload, "PUT"),
        _route("/v2/images/{image_id}/file", image_data.download, "GET"),
        _route("/v2/images/{image_id}/stage", imports.stage, "PUT"),
        _route("/v2/images/{image_id}/import", imports.start, "POST"),
        _route("/v2/images/{image_id}/tasks", tasks.image_tasks, "GET"),
        _route("/v2/images/{image_id}/locations", locations.add, "POST"),
        _route("/v2/images/{image_id}/locations", locations.index, "GET"),
        _route("/v2/info/import", imports.info, "GET"),
        _route("/v2/info/usage", usage.show, "GET"),
        _route("/v2/info/stores", stores.info, "GET"),
        _route("/v2/info/stores/detail", stores.info_detail, "GET"),
        _route("/v2/stores/{store_id}/{image_id}", stores.delete_image_data, "DELETE"),
        _route("/v2/tasks", tasks.index, "GET"),
        _route("/v2/tasks", tasks.create, "POST"),
        _route("/v2/tasks/{task_id}", tasks.show, "GET"),
        _route("/v2/tasks/{task_id}", tasks.delete, "DELETE"),
        _route("/v2/images/{image_id}/actions/deactivate", images.deactivate, "POST"),
        _route("/v2/images/{image_id}/actions/reactivate", images.reactivate, "POST"),
        _route("/v2/images/{image_id}/tags/{tag}", tags.add, "PUT"),
        _route("/v2/images/{image_id}/tags/{tag}", tags.remove, "DELETE"),
        _route("/v2/images/{image_id}/members", members.index, "GET"),
        _route("/v2/images/{image_id}/members", members.create, "POST"),
        _route("/v2/images/{image_id}/members/{member_id}", members.show, "GET"),
        _route("/v2/images/{image_id}/members/{member_id}", members.update, "PUT"),
        _route("/v2/images/{image_id}/members/{member_id}", members.delete, "DELETE"),
        _route("/v2/schemas/image", schemas.image, "GET"),
        _route("/v2/schemas/images", schemas.images, "GET"),
        _route("/v2/schemas/member", schemas.member_schema, "GET"),
        _route("/v2/schemas/members", schemas.members_schema, "GET"),
        _route("/v2/schemas/task", schemas.task_schema, "GET"),
        _route("/v2/schemas/tasks", schemas.tasks_schema, "GET"),
        *(_route(path, endpoint, method) for path, endpoint, method in metadefs.routes()),
    ]


def _merge_methods(routes: list[BaseRoute]) -> list[BaseRoute]:
    """One Route per path, so a wrong method gets 405 with the full Allow list."""
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        assert isinstance(route, Route)
        by_path.setdefault(route.path, []).append(route)
    merged: list[BaseRoute] = []
    for path, group in by_path.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        handlers = {m: r.endpoint for r in group for m in (r.methods or ()) if m != "HEAD"}

        async def dispatch(request: Request, _handlers: dict[str, Any] = handlers) -> Response:
            response: Response = await _handlers[request.method](request)
            return response

        merged.append(_route(path, dispatch, *sorted(handlers)))
    return merged


async def _render_glimpse_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GlimpseError)
    return error_render.render(request, exc)


async def _render_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: errors.GlimpseError
    if exc.status_code == 404:
        if request.method not in _STANDARD_METHODS:
            error = errors.NotImplementedMethod()
        else:
            error = errors.NotFound()
    elif exc.status_code == 405:
        # Glance's per-path "reject" route has no method condition, so on a known path
        # every other method, standard or not, is 405; only unknown paths give 501.
        allow = (exc.headers or {}).get("Allow", "")
        error = errors.MethodNotAllowed(sorted(m.strip() for m in allow.split(",") if m.strip()))
    else:
        error = errors.GlimpseError(exc.detail)
        error.status = exc.status_code
    return error_render.render(request, error)


async def _render_unexpected(request: Request, exc: Exception) -> Response:
    LOG.exception("Unhandled error serving %s %s", request.method, request.url.path)
    return error_render.render(request, errors.GlimpseError())


def _malformed_target(scope: Scope) -> str | None:
    """Why the path or query string cannot be taken as sent, if so.

    Servers decode invalid UTF-8 with U+FFFD replacements, which would silently change
    a tag or an id; PostgreSQL cannot store or compare NUL characters at all.
    """
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        try:
            path = urllib.parse.unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("utf-8")
        except UnicodeDecodeError:
            return "The request path is not valid UTF-8."
    else:
        path = scope["path"]
    if "\x00" in path:
        return "The request path must not contain NUL characters."
    if b"\x00" in urllib.parse.unquote_to_bytes(scope.get("query_string") or b""):
        return "The query string must not contain NUL characters."
    return None


class _Exchange:
    """What the access log tells about one request: set as its response goes out."""

    def __init__(self, client: str | None) -> None:
        self.client = client
        self.status: int | None = None
        self.length = 0
        self.declared_length = 0
        self.user_id: str | None = None
        self.project_id: str | None = None


class Gateway:
    """Request id, logging, proxy headers, health check, version negotiation and identity,
    before the router."""

    def __init__(self, app: ASGIApp, rt: Runtime) -> None:
        self.app = app
        self.rt = rt
        self.identify = identity.for_flavor(rt.conf, rt.policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = self._request_id(headers.get("x-openstack-request-id"))
        acceptable_id = request_id is not None
        if request_id is None:
            request_id = "req-" + str(uuid.uuid4())
        peer = scope.get("client")
        exchange = _Exchange(str(peer[0]) if peer else None)
        response_id = request_id.encode("latin-1")

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                raw = list(message.get("headers", []))
                raw.append((b"x-openstack-request-id", response_id))
                message["headers"] = raw
                exchange.status = message["status"]
                for name, value in raw:
                    if name.lower() == b"content-length" and value.isdigit():
                        exchange.declared_length = int(value)
            elif kind == "http.response.body":
                exchange.length += len(message.get("body", b""))
            elif kind == "http.response.pathsend":
                exchange.length += exchange.declared_length
            await send(message)

        with log.fields(request_id=request_id):
            try:
                if acceptable_id:
                    await self._dispatch(
                        scope, receive, send_with_id, headers, request_id, exchange
                    )
                else:
                    length = self.rt.conf.max_request_id_length
                    error = errors.RequestHeaderTooLarge(
                        f"Request ID must be at most {length} characters long."
                    )
                    await error_render.render(Request(scope, receive), error)(
                        scope, receive, send_with_id
                    )
            finally:
                query = scope.get("query_string") or b""
                log.access(
                    client=exchange.client,
                    method=scope["method"],
                    path=scope["path"] + ("?" + query.decode("latin-1") if query else ""),
                    http_version=scope.get("http_version", "1.1"),
                    status=exchange.status,
                    length=exchange.length,
                    duration=time.perf_counter() - started,
                    user_id=exchange.user_id,
                    project_id=exchange.project_id,
                    # Load balancers poll it every few seconds.
                    level=logging.DEBUG if scope["path"] == "/healthcheck" else logging.INFO,
                )

    async def _dispatch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        request_id: str,
        exchange: _Exchange,
    ) -> None:
        path = scope["path"]
        if path == "/healthcheck":
            await self._healthcheck(scope, receive, send)
            return
        scope = dict(scope)
        try:
            origin = forwarded.resolve(
                scope, self.rt.conf.oslo_middleware.enable_proxy_headers_parsing
            )
        except errors.GlimpseError as error:
            await error_render.render(Request(scope, receive), error)(scope, receive, send)
            return
        scope[forwarded.SCOPE_KEY] = origin
        exchange.client = origin.client
        request = Request(scope, receive)
        if path in ("/", "/versions", "/versions/"):
            status = 300 if path == "/" else 200
            await versions.response(self.rt.conf, request, status)(scope, receive, send)
            return
        routed = versions.negotiate(self.rt.conf, path, headers.get("accept"))
        if routed is None:
            await versions.response(self.rt.conf, request, 300)(scope, receive, send)
            return
        problem = _malformed_target(scope)
        if problem is not None:
            await error_render.render(request, errors.BadRequest(problem))(scope, receive, send)
            return
        scope["path"] = routed
        scope["raw_path"] = routed.encode("utf-8", "surrogateescape")
        try:
            context = await self.identify(headers, request_id)
            identity.check_ids(context)
        except errors.GlimpseError as error:  # 400 bad ids, 401 no valid credentials, 503 Keystone
            await error_render.render(request, error)(scope, receive, send)
            return
        scope["glimpse.context"] = context
        exchange.user_id, exchange.project_id = context.user_id, context.project_id
        with log.fields(user_id=context.user_id, project_id=context.project_id):
            await self.app(scope, receive, send)

    def _request_id(self, sent: str | None) -> str | None:
        if not sent:
            return "req-" + str(uuid.uuid4())
        if len(sent) > self.rt.conf.max_request_id_length or not _REQUEST_ID.match(sent):
            return None
        return sent if sent.startswith("req-") else "req-" + sent

    async def _healthcheck(self, scope: Scope, receive: Receive, send: Send) -> None:
        disabled = os.path.exists(
            os.path.join(os.path.sep, "etc", "glimpse", "healthcheck_disable")
        )
        response = PlainTextResponse(
            "DISABLED BY FILE" if disabled else "OK", status_code=503 if disabled else 200
        )
        await response(scope, receive, send)


def create_app(rt: Runtime) -> ASGIApp:
    """The Glimpse ASGI application for one runtime."""
    app = Starlette(
        routes=_merge_methods(v2_routes()),
        exception_handlers={
            errors.GlimpseError: _render_glimpse_error,
            HTTPException: _render_http_exception,
            Exception: _render_unexpected,
        },
        lifespan=lifecycle.lifespan,
    )
    # Glance's routes match exactly: GET or DELETE /v2/images/ (an empty image id) is 404,
    # not a redirect to the image list.
    app.router.redirect_slashes = False
    app.state.runtime = rt
    gateway = Gateway(app, rt)
    return gateway
