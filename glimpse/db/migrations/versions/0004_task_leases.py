"""Tasks become jobs that workers claim with a lease, and report progress.

Revision ID: 0004_task_leases
Revises: 0003_image_uploads
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_task_leases"
down_revision = "0003_image_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("worker", sa.String(255)))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime()))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("bytes_done", sa.BigInteger()))
        batch.add_column(sa.Column("bytes_total", sa.BigInteger()))
    op.create_index("ix_tasks_status_lease", "tasks", ["status", "lease_expires_at"])
