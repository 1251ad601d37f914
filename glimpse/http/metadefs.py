"""Handlers for /v2/metadefs/* and /v2/schemas/metadefs/*, and their JSON representations.

As in Glance, attributes without a value are left out of metadef bodies rather than shown
as null.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.http import forwarded
from glimpse.http.requests import context, no_body, read_json, runtime
from glimpse.http.views import timestamp
from glimpse.schemas import metadefs as schemas
from glimpse.services.metadefs import namespaces, objects, properties, resource_types, tags
from glimpse.services.metadefs.records import (
    AssociationRecord,
    NamespaceDetail,
    NamespaceRecord,
    ObjectRecord,
    PropertyRecord,
    ResourceTypeRecord,
    TagRecord,
)

Endpoint = Callable[[Request], Awaitable[Response]]
_NAMESPACES = "/v2/metadefs/namespaces"


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


# --- representations ---------------------------------------------------------------------


def association_view(a: AssociationRecord) -> dict[str, Any]:
    return _present(
        {
            "name": a.name,
            "prefix": a.prefix,
            "properties_target": a.properties_target,
            "created_at": timestamp(a.created_at),
            "updated_at": timestamp(a.updated_at),
        }
    )


def namespace_view(ns: NamespaceRecord) -> dict[str, Any]:
    body = _present(
        {
            "namespace": ns.namespace,
            "display_name": ns.display_name,
            "description": ns.description,
            "visibility": ns.visibility,
            "protected": ns.protected,
            "owner": ns.owner,
            "created_at": timestamp(ns.created_at),
            "updated_at": timestamp(ns.updated_at),
            "self": f"{_NAMESPACES}/{ns.namespace}",
            "schema": "/v2/schemas/metadefs/namespace",
        }
    )
    if ns.associations:
        body["resource_type_associations"] = [association_view(a) for a in ns.associations]
    return body


def detail_view(detail: NamespaceDetail) -> dict[str, Any]:
    body = namespace_view(detail.namespace)
    if detail.properties:
        body["properties"] = {p.name: p.definition for p in detail.properties}
    if detail.objects:
        body["objects"] = [object_view(o) for o in detail.objects]
    if detail.tags:
        body["tags"] = [{"name": t.name} for t in detail.tags]
    return body


def object_view(o: ObjectRecord) -> dict[str, Any]:
    return _present(
        {
            "name": o.name,
            "description": o.description,
            "required": o.required,
            "properties": o.properties,
            "created_at": timestamp(o.created_at),
            "updated_at": timestamp(o.updated_at),
            "self": f"{_NAMESPACES}/{o.namespace}/objects/{o.name}",
            "schema": "/v2/schemas/metadefs/object",
        }
    )


def property_view(p: PropertyRecord) -> dict[str, Any]:
    return {"name": p.name, **p.definition}


def tag_view(t: TagRecord) -> dict[str, Any]:
    return _present(
        {
            "name": t.name,
            "created_at": timestamp(t.created_at),
            "updated_at": timestamp(t.updated_at),
        }
    )


def resource_type_view(r: ResourceTypeRecord) -> dict[str, Any]:
    return _present(
        {
            "name": r.name,
            "created_at": timestamp(r.created_at),
            "updated_at": timestamp(r.updated_at),
        }
    )


# --- handlers ----------------------------------------------------------------------------

T = TypeVar("T")


def _endpoint(
    call: Callable[..., T],
    path: tuple[str, ...] = (),
    *,
    query: Callable[[Request], object] | None = None,
    body: bool = False,
    view: Callable[[T], Any] | None = None,
    status: int = 200,
) -> Endpoint:
    """A handler that calls the service function ``call`` in a worker thread as
    ``call(runtime, context, *path parameters, query(request), json body)`` (the last two
    when asked for) and answers ``view(result)`` with ``status``, or 204 without a view.
    A handler that takes no JSON body refuses one."""

    async def endpoint(request: Request) -> Response:
        args: list[object] = [request.path_params[name] for name in path]
        if query is not None:
            args.append(query(request))
        if body:
            args.append(await read_json(request))
        else:
            await no_body(request)
        result = await run_in_threadpool(call, runtime(request), context(request), *args)
        if view is None:
            return Response(status_code=204)
        return JSONResponse(view(result), status_code=status)

    endpoint.__name__ = call.__name__
    return endpoint


def _all_query(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


def _resource_type(request: Request) -> str | None:
    return request.query_params.get("resource_type")


async def create_namespace(request: Request) -> Response:
    body = await read_json(request)
    detail = await run_in_threadpool(namespaces.create, runtime(request), context(request), body)
    quoted = urllib.parse.quote(detail.namespace.namespace, safe=":@!$&'()*+,;=")
    headers = {"Location": forwarded.url(request, f"{_NAMESPACES}/{quoted}")}
    return JSONResponse(detail_view(detail), status_code=201, headers=headers)


def _namespace_page(page: namespaces.NamespacePage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "namespaces": [namespace_view(ns) for ns in page.namespaces],
        "first": page.first,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if page.next:
        body["next"] = page.next
    return body


def _objects_body(found: list[ObjectRecord]) -> dict[str, Any]:
    return {"objects": [object_view(o) for o in found], "schema": "/v2/schemas/metadefs/objects"}


def _properties_body(found: list[PropertyRecord]) -> dict[str, Any]:
    return {"properties": {p.name: p.definition for p in found}}


def _tags_body(found: list[TagRecord]) -> dict[str, Any]:
    return {"tags": [{"name": t.name} for t in found]}


def _resource_types_body(found: list[ResourceTypeRecord]) -> dict[str, Any]:
    return {"resource_types": [resource_type_view(r) for r in found]}


def _associations_body(found: list[AssociationRecord]) -> dict[str, Any]:
    return {"resource_type_associations": [association_view(a) for a in found]}


# --- schemas -----------------------------------------------------------------------------


def _schema_endpoint(document: dict[str, Any]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        await no_body(request)
        return JSONResponse(document)

    return endpoint


# --- routes ------------------------------------------------------------------------------


def routes() -> list[tuple[str, Endpoint, str]]:
    """(path, handler, method) for every metadef route; the application builds the routes."""
    ns = f"{_NAMESPACES}/{{namespace}}"
    n = ("namespace",)
    obj, prop, tag = (*n, "object_name"), (*n, "property_name"), (*n, "tag_name")
    table: list[tuple[str, Endpoint, str]] = [
        (
            "/v2/metadefs/resource_types",
            _endpoint(resource_types.list_resource_types, view=_resource_types_body),
            "GET",
        ),
        (
            _NAMESPACES,
            _endpoint(namespaces.list_namespaces, query=_all_query, view=_namespace_page),
            "GET",
        ),
        (_NAMESPACES, create_namespace, "POST"),
        (ns, _endpoint(namespaces.show, n, query=_resource_type, view=detail_view), "GET"),
        (ns, _endpoint(namespaces.update, n, body=True, view=namespace_view), "PUT"),
        (ns, _endpoint(namespaces.delete, n), "DELETE"),
        (
            f"{ns}/resource_types",
            _endpoint(resource_types.list_associations, n, view=_associations_body),
            "GET",
        ),
        (
            f"{ns}/resource_types",
            _endpoint(
                resource_types.create_association, n, body=True, view=association_view, status=201
            ),
            "POST",
        ),
        (
            f"{ns}/resource_types/{{resource_type}}",
            _endpoint(resource_types.delete_association, (*n, "resource_type")),
            "DELETE",
        ),
        (f"{ns}/objects", _endpoint(objects.list_objects, n, view=_objects_body), "GET"),
        (
            f"{ns}/objects",
            _endpoint(objects.create, n, body=True, view=object_view, status=201),
            "POST",
        ),
        (f"{ns}/objects", _endpoint(objects.delete_all, n), "DELETE"),
        (f"{ns}/objects/{{object_name}}", _endpoint(objects.show, obj, view=object_view), "GET"),
        (
            f"{ns}/objects/{{object_name}}",
            _endpoint(objects.update, obj, body=True, view=object_view),
            "PUT",
        ),
        (f"{ns}/objects/{{object_name}}", _endpoint(objects.delete, obj), "DELETE"),
        (
            f"{ns}/properties",
            _endpoint(properties.list_properties, n, view=_properties_body),
            "GET",
        ),
        (
            f"{ns}/properties",
            _endpoint(properties.create, n, body=True, view=property_view, status=201),
            "POST",
        ),
        (f"{ns}/properties", _endpoint(properties.delete_all, n), "DELETE"),
        (
            f"{ns}/properties/{{property_name}}",
            _endpoint(properties.show, prop, query=_resource_type, view=property_view),
            "GET",
        ),
        (
            f"{ns}/properties/{{property_name}}",
            _endpoint(properties.update, prop, body=True, view=property_view),
            "PUT",
        ),
        (f"{ns}/properties/{{property_name}}", _endpoint(properties.delete, prop), "DELETE"),
        (f"{ns}/tags", _endpoint(tags.list_tags, n, query=_all_query, view=_tags_body), "GET"),
        (
            f"{ns}/tags",
            _endpoint(tags.create_many, n, body=True, view=_tags_body, status=201),
            "POST",
        ),
        (f"{ns}/tags", _endpoint(tags.delete_all, n), "DELETE"),
        (f"{ns}/tags/{{tag_name}}", _endpoint(tags.show, tag, view=tag_view), "GET"),
        (f"{ns}/tags/{{tag_name}}", _endpoint(tags.create, tag, view=tag_view, status=201), "POST"),
        (f"{ns}/tags/{{tag_name}}", _endpoint(tags.update, tag, body=True, view=tag_view), "PUT"),
        (f"{ns}/tags/{{tag_name}}", _endpoint(tags.delete, tag), "DELETE"),
    ]
    for kind, document in schemas.DOCUMENTS.items():
        table.append((f"/v2/schemas/metadefs/{kind}", _schema_endpoint(document), "GET"))
    return table
