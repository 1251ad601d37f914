"""Tags, property names and member ids compare byte for byte on MariaDB/MySQL too.

Revision ID: 0005_exact_names
Revises: 0004_task_leases
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from glimpse.db.models import exact_collation

revision = "0005_exact_names"
down_revision = "0004_task_leases"
branch_labels = None
depends_on = None

_COLUMNS = (("image_tags", "value"), ("image_properties", "name"), ("image_members", "member"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return
    collation = exact_collation(bind.dialect)
    for table, column in _COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=sa.String(255),
            type_=mysql.VARCHAR(255, charset="utf8mb4", collation=collation),
            existing_nullable=False,
        )
