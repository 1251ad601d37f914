"""The job queue: tasks claimed by workers under a lease, renewed by heartbeats.

Claiming is an optimistic conditional UPDATE, portable to SQLite, PostgreSQL and
MariaDB: of several workers racing for one task exactly one sees its UPDATE
match. A worker owns its task only while its lease is unexpired; every write a
worker makes about a task is conditional on still holding it, so a worker that
lost its lease (paused, partitioned) cannot overwrite its successor's work.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import uuid
from typing import Any

from sqlalchemy import and_, or_, select, update

from glimpse.db.models import Task, utcnow
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services.tasks import TaskRecord

RUNNABLE_TYPES = ("api_image_import", "import", "location_import")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass(frozen=True)
class Claim:
    task_id: str
    task_type: str
    worker: str
    attempts: int
    input: dict[str, Any]
    owner: str | None
    user_id: str | None
    request_id: str | None


class LeaseLost(Exception):
    """Another worker took the task over; stop without touching it."""


def _claimable(now: datetime.datetime) -> Any:
    return and_(
        Task.type.in_(RUNNABLE_TYPES),
        Task.deleted.is_(False),
        or_(
            Task.status == "pending",
            and_(Task.status == "processing", Task.lease_expires_at < now),
        ),
    )


def claim(rt: Runtime, worker: str) -> Claim | None:
    """Take the oldest runnable task, or an abandoned one whose lease ran out."""
    lease = datetime.timedelta(seconds=int(rt.conf.worker.lease_seconds))
    now = utcnow()
    with rt.db.transaction() as session:
        candidates = session.scalars(
            select(Task.id).where(_claimable(now)).order_by(Task.created_at, Task.id).limit(5)
        ).all()
    for task_id in candidates:
        now = utcnow()
        with rt.db.transaction() as session:
            result = session.execute(
                update(Task)
                .where(Task.id == task_id, _claimable(now))
                .values(
                    status="processing",
                    worker=worker,
                    lease_expires_at=now + lease,
                    attempts=Task.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            task = session.get(Task, task_id)
            assert task is not None
            started = TaskRecord.of(task)
            claimed = Claim(
                task_id=task.id,
                task_type=task.type,
                worker=worker,
                attempts=task.attempts,
                input=json.loads(task.input or "{}"),
                owner=task.owner,
                user_id=task.user_id,
                request_id=task.request_id,
            )
        rt.notifier.info("task.run", payloads.task(started))
        rt.notifier.info("task.processing", payloads.task(started))
        return claimed
    return None


def renew(
    rt: Runtime, claim_: Claim, bytes_done: int | None = None, bytes_total: int | None = None
) -> None:
    """Extend the lease (and record progress); :class:`LeaseLost` if it is no longer ours."""
    lease = datetime.timedelta(seconds=int(rt.conf.worker.lease_seconds))
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + lease}
    if bytes_done is not None:
        values["bytes_done"] = bytes_done
    if bytes_total is not None:
        values["bytes_total"] = bytes_total
    with rt.db.transaction() as session:
        result = session.execute(
            update(Task)
            .where(
                Task.id == claim_.task_id, Task.worker == claim_.worker, Task.status == "processing"
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(claim_.task_id)


def finish(
    rt: Runtime,
    session: Any,
    claim_: Claim,
    status: str,
    *,
    result: Any = None,
    message: str | None = None,
) -> TaskRecord:
    """Record the outcome in ``session``'s transaction, if the task is still ours; return it
    as recorded (for the task.success/task.failure notification once committed)."""
    now = utcnow()
    hours = int(rt.conf.task.task_time_to_live)
    updated = session.execute(
        update(Task)
        .where(Task.id == claim_.task_id, Task.worker == claim_.worker, Task.status == "processing")
        .values(
            status=status,
            result=json.dumps(result) if result is not None else None,
            message=message,
            updated_at=now,
            expires_at=now + datetime.timedelta(hours=hours),
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        raise LeaseLost(claim_.task_id)
    task = session.get(Task, claim_.task_id, populate_existing=True)
    return TaskRecord.of(task)
