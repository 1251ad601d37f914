"""Tasks: the record of an import (and of the legacy tasks API), and what users see of them."""

from __future__ import annotations

import dataclasses
import datetime
import json
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Task, utcnow
from glimpse.runtime import Runtime
from glimpse.schemas.task import TASK_STATUSES
from glimpse.services import access
from glimpse.services.validation import MAX_TEXT_BYTES, is_uuid, storable_text

_SORT_KEYS = ("created_at", "updated_at", "id", "status", "type", "expires_at")
#: The task input member holding a ``location_import`` task's URL as given, which may
#: carry credentials (its public form is ``loc_url``).
LOCATION_URL_INPUT = "location"
#: Task input members users never see: that URL, and the caller's roles (what the
#: import plugins are given).
PRIVATE_INPUT = frozenset({"roles", LOCATION_URL_INPUT})


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    id: str
    type: str
    status: str
    owner: str | None
    input: Any
    result: Any
    message: str
    image_id: str | None
    request_id: str | None
    user_id: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime | None
    expires_at: datetime.datetime | None
    bytes_done: int | None
    bytes_total: int | None

    @classmethod
    def of(cls, task: Task) -> TaskRecord:
        return cls(
            id=task.id,
            type=task.type,
            status=task.status,
            owner=task.owner,
            input=json.loads(task.input) if task.input else None,
            result=json.loads(task.result) if task.result else None,
            message=task.message or "",
            image_id=task.image_id,
            request_id=task.request_id,
            user_id=task.user_id,
            created_at=task.created_at,
            updated_at=task.updated_at,
            expires_at=task.expires_at,
            bytes_done=task.bytes_done,
            bytes_total=task.bytes_total,
        )


@dataclasses.dataclass
class TaskPage:
    tasks: list[TaskRecord]
    first: str
    next: str | None


def new_task(
    session: Session,
    context: RequestContext,
    task_type: str,
    task_input: dict[str, Any],
    image_id: str | None,
) -> Task:
    """Insert a pending task (a job for the workers) in the caller's transaction."""
    now = utcnow()
    task = Task(
        id=str(uuid.uuid4()),
        type=task_type,
        status="pending",
        owner=context.owner,
        # Room is left for what a worker adds to the input (the image id).
        input=storable_text(json.dumps(task_input), "The task input", MAX_TEXT_BYTES - 1024),
        image_id=image_id,
        request_id=context.request_id,
        user_id=context.user_id,
        created_at=now,
        updated_at=now,
        deleted=False,
        attempts=0,
    )
    session.add(task)
    return task


def _live(now: datetime.datetime) -> list[Any]:
    return [Task.deleted.is_(False), or_(Task.expires_at.is_(None), Task.expires_at > now)]


def _visible_to(context: RequestContext) -> list[Any]:
    if context.is_admin:
        return []
    return [Task.owner == context.owner] if context.owner is not None else [Task.owner.is_(None)]


def show(rt: Runtime, context: RequestContext, task_id: str) -> TaskRecord:
    """A task of the caller's (any task for an admin)."""
    rt.policy.enforce(context, "tasks_api_access", {})
    rt.policy.enforce(context, "get_task", {})
    with rt.db.transaction() as session:
        task = session.scalars(
            select(Task).where(Task.id == task_id, *_live(utcnow()), *_visible_to(context))
        ).first()
        if task is None:
            raise errors.NotFound(f"Task with the given ID {task_id} was not found")
        return TaskRecord.of(task)


def list_tasks(rt: Runtime, context: RequestContext, params: Sequence[tuple[str, str]]) -> TaskPage:
    """One page of tasks, filtered by type and status, newest first by default."""
    rt.policy.enforce(context, "tasks_api_access", {})
    rt.policy.enforce(context, "get_tasks", {})
    values: dict[str, str] = {}
    for key, value in params:
        if key not in ("type", "status", "sort_key", "sort_dir", "limit", "marker"):
            raise errors.BadRequest(f"Invalid filter: {key}")
        values[key] = value
    conditions = [*_live(utcnow()), *_visible_to(context)]
    if "type" in values:
        if values["type"] != "import":
            raise errors.BadRequest(f"Invalid type value: {values['type']}")
        conditions.append(Task.type == "import")
    if "status" in values:
        if values["status"] not in TASK_STATUSES:
            raise errors.BadRequest(f"Invalid status value: {values['status']}")
        conditions.append(Task.status == values["status"])
    sort_key = values.get("sort_key", "created_at")
    if sort_key not in _SORT_KEYS:
        raise errors.BadRequest(f"Invalid sort_key: {sort_key}")
    sort_dir = values.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid sort_dir: {sort_dir}")
    limit = _limit(rt, values.get("limit"))
    column = getattr(Task, sort_key)
    order = [column.asc(), Task.id.asc()] if sort_dir == "asc" else [column.desc(), Task.id.desc()]
    with rt.db.transaction() as session:
        query = select(Task).where(*conditions)
        marker = values.get("marker")
        if marker is not None:
            if not is_uuid(marker):
                raise errors.BadRequest("Invalid marker format")
            row = session.get(Task, marker)
            if row is None:
                raise errors.BadRequest(f"Invalid marker. Task {marker} could not be found.")
            mark = getattr(row, sort_key)
            if sort_dir == "asc":
                query = query.where(or_(column > mark, (column == mark) & (Task.id > row.id)))
            else:
                query = query.where(or_(column < mark, (column == mark) & (Task.id < row.id)))
        tasks = [TaskRecord.of(t) for t in session.scalars(query.order_by(*order).limit(limit))]
    kept = [(k, v) for k, v in params if k != "marker"]
    first = "/v2/tasks" + ("?" + urllib.parse.urlencode(kept) if kept else "")
    next_link = None
    if tasks and len(tasks) == limit:
        next_link = "/v2/tasks?" + urllib.parse.urlencode([*kept, ("marker", tasks[-1].id)])
    return TaskPage(tasks, first, next_link)


def _limit(rt: Runtime, raw: str | None) -> int:
    if raw is None:
        return min(int(rt.conf.limit_param_default), int(rt.conf.api_limit_max))
    try:
        limit = int(raw)
    except ValueError as exc:
        raise errors.BadRequest("limit param must be an integer") from exc
    if limit < 0:
        raise errors.BadRequest("limit param must be positive")
    return min(limit, int(rt.conf.api_limit_max))


def image_tasks(rt: Runtime, context: RequestContext, image_id: str) -> list[TaskRecord]:
    """Tasks run for an image the caller may see (``GET /v2/images/{id}/tasks``)."""
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id)
        access.enforce(rt.policy, context, "get_image", image)
        rows = session.scalars(
            select(Task)
            .where(Task.image_id == image_id, *_live(utcnow()))
            .order_by(Task.created_at.desc(), Task.id.desc())
        )
        return [TaskRecord.of(t) for t in rows]


def expiry(rt: Runtime, now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(hours=int(rt.conf.task.task_time_to_live))
