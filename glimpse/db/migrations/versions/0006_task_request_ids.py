"""Tasks record request ids up to 255 characters.

A client's ``X-Openstack-Request-ID`` of up to ``max_request_id_length`` characters
gets the ``req-`` prefix: 68 characters with the default, more than the 64 the
column held, which PostgreSQL and MariaDB refused when the request queued a task.

Revision ID: 0006_task_request_ids
Revises: 0005_exact_names
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_task_request_ids"
down_revision = "0005_exact_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths
    op.alter_column("tasks", "request_id", existing_type=sa.String(64), type_=sa.String(255))
