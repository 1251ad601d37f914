"""Handlers for /v2/metadefs/* and /v2/schemas/metadefs/*, and their JSON representations.

As in Glance, attributes without a value are left out of metadef bodies rather than shown
as null.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

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


# --- request helpers ---------------------------------------------------------------------


def _param(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    return value


def _location(request: Request, namespace: str) -> str:
    quoted = urllib.parse.quote(namespace, safe=":@!$&'()*+,;=")
    return forwarded.url(request, f"{_NAMESPACES}/{quoted}")


# --- namespaces --------------------------------------------------------------------------


async def list_namespaces(request: Request) -> Response:
    await no_body(request)
    page = await run_in_threadpool(
        namespaces.list_namespaces,
        runtime(request),
        context(request),
        request.query_params.multi_items(),
    )
    body: dict[str, Any] = {
        "namespaces": [namespace_view(ns) for ns in page.namespaces],
        "first": page.first,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if page.next:
        body["next"] = page.next
    return JSONResponse(body)


async def create_namespace(request: Request) -> Response:
    body = await read_json(request)
    detail = await run_in_threadpool(namespaces.create, runtime(request), context(request), body)
    headers = {"Location": _location(request, detail.namespace.namespace)}
    return JSONResponse(detail_view(detail), status_code=201, headers=headers)


async def show_namespace(request: Request) -> Response:
    await no_body(request)
    detail = await run_in_threadpool(
        namespaces.show,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        request.query_params.get("resource_type"),
    )
    return JSONResponse(detail_view(detail))


async def update_namespace(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        namespaces.update, runtime(request), context(request), _param(request, "namespace"), body
    )
    return JSONResponse(namespace_view(record))


async def delete_namespace(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        namespaces.delete, runtime(request), context(request), _param(request, "namespace")
    )
    return Response(status_code=204)


# --- objects -----------------------------------------------------------------------------


async def list_objects(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        objects.list_objects, runtime(request), context(request), _param(request, "namespace")
    )
    return JSONResponse(
        {"objects": [object_view(o) for o in found], "schema": "/v2/schemas/metadefs/objects"}
    )


async def create_object(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        objects.create, runtime(request), context(request), _param(request, "namespace"), body
    )
    return JSONResponse(object_view(record), status_code=201)


async def delete_objects(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        objects.delete_all, runtime(request), context(request), _param(request, "namespace")
    )
    return Response(status_code=204)


async def show_object(request: Request) -> Response:
    await no_body(request)
    record = await run_in_threadpool(
        objects.show,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "object_name"),
    )
    return JSONResponse(object_view(record))


async def update_object(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        objects.update,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "object_name"),
        body,
    )
    return JSONResponse(object_view(record))


async def delete_object(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        objects.delete,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "object_name"),
    )
    return Response(status_code=204)


# --- properties --------------------------------------------------------------------------


async def list_properties(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        properties.list_properties,
        runtime(request),
        context(request),
        _param(request, "namespace"),
    )
    return JSONResponse({"properties": {p.name: p.definition for p in found}})


async def create_property(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        properties.create, runtime(request), context(request), _param(request, "namespace"), body
    )
    return JSONResponse(property_view(record), status_code=201)


async def delete_properties(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        properties.delete_all, runtime(request), context(request), _param(request, "namespace")
    )
    return Response(status_code=204)


async def show_property(request: Request) -> Response:
    await no_body(request)
    record = await run_in_threadpool(
        properties.show,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "property_name"),
        request.query_params.get("resource_type"),
    )
    return JSONResponse(property_view(record))


async def update_property(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        properties.update,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "property_name"),
        body,
    )
    return JSONResponse(property_view(record))


async def delete_property(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        properties.delete,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "property_name"),
    )
    return Response(status_code=204)


# --- tags --------------------------------------------------------------------------------


async def list_tags(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        tags.list_tags,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        request.query_params.multi_items(),
    )
    return JSONResponse({"tags": [{"name": t.name} for t in found]})


async def create_tags(request: Request) -> Response:
    body = await read_json(request)
    created = await run_in_threadpool(
        tags.create_many, runtime(request), context(request), _param(request, "namespace"), body
    )
    return JSONResponse({"tags": [{"name": t.name} for t in created]}, status_code=201)


async def delete_tags(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        tags.delete_all, runtime(request), context(request), _param(request, "namespace")
    )
    return Response(status_code=204)


async def show_tag(request: Request) -> Response:
    await no_body(request)
    record = await run_in_threadpool(
        tags.show,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "tag_name"),
    )
    return JSONResponse(tag_view(record))


async def create_tag(request: Request) -> Response:
    await no_body(request)
    record = await run_in_threadpool(
        tags.create,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "tag_name"),
    )
    return JSONResponse(tag_view(record), status_code=201)


async def update_tag(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        tags.update,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "tag_name"),
        body,
    )
    return JSONResponse(tag_view(record))


async def delete_tag(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        tags.delete,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "tag_name"),
    )
    return Response(status_code=204)


# --- resource types ----------------------------------------------------------------------


async def list_resource_types(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        resource_types.list_resource_types, runtime(request), context(request)
    )
    return JSONResponse({"resource_types": [resource_type_view(r) for r in found]})


async def list_associations(request: Request) -> Response:
    await no_body(request)
    found = await run_in_threadpool(
        resource_types.list_associations,
        runtime(request),
        context(request),
        _param(request, "namespace"),
    )
    return JSONResponse({"resource_type_associations": [association_view(a) for a in found]})


async def create_association(request: Request) -> Response:
    body = await read_json(request)
    record = await run_in_threadpool(
        resource_types.create_association,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        body,
    )
    return JSONResponse(association_view(record), status_code=201)


async def delete_association(request: Request) -> Response:
    await no_body(request)
    await run_in_threadpool(
        resource_types.delete_association,
        runtime(request),
        context(request),
        _param(request, "namespace"),
        _param(request, "resource_type"),
    )
    return Response(status_code=204)


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
    table: list[tuple[str, Endpoint, str]] = [
        ("/v2/metadefs/resource_types", list_resource_types, "GET"),
        (_NAMESPACES, list_namespaces, "GET"),
        (_NAMESPACES, create_namespace, "POST"),
        (ns, show_namespace, "GET"),
        (ns, update_namespace, "PUT"),
        (ns, delete_namespace, "DELETE"),
        (f"{ns}/resource_types", list_associations, "GET"),
        (f"{ns}/resource_types", create_association, "POST"),
        (f"{ns}/resource_types/{{resource_type}}", delete_association, "DELETE"),
        (f"{ns}/objects", list_objects, "GET"),
        (f"{ns}/objects", create_object, "POST"),
        (f"{ns}/objects", delete_objects, "DELETE"),
        (f"{ns}/objects/{{object_name}}", show_object, "GET"),
        (f"{ns}/objects/{{object_name}}", update_object, "PUT"),
        (f"{ns}/objects/{{object_name}}", delete_object, "DELETE"),
        (f"{ns}/properties", list_properties, "GET"),
        (f"{ns}/properties", create_property, "POST"),
        (f"{ns}/properties", delete_properties, "DELETE"),
        (f"{ns}/properties/{{property_name}}", show_property, "GET"),
        (f"{ns}/properties/{{property_name}}", update_property, "PUT"),
        (f"{ns}/properties/{{property_name}}", delete_property, "DELETE"),
        (f"{ns}/tags", list_tags, "GET"),
        (f"{ns}/tags", create_tags, "POST"),
        (f"{ns}/tags", delete_tags, "DELETE"),
        (f"{ns}/tags/{{tag_name}}", show_tag, "GET"),
        (f"{ns}/tags/{{tag_name}}", create_tag, "POST"),
        (f"{ns}/tags/{{tag_name}}", update_tag, "PUT"),
        (f"{ns}/tags/{{tag_name}}", delete_tag, "DELETE"),
    ]
    for kind, document in schemas.DOCUMENTS.items():
        table.append((f"/v2/schemas/metadefs/{kind}", _schema_endpoint(document), "GET"))
    return table
