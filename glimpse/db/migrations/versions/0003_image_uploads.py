"""Track data writes in progress so interrupted uploads can be undone.

Revision ID: 0003_image_uploads
Revises: 0002_metadefs
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_image_uploads"
down_revision = "0002_metadefs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_uploads",
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(255)),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        mysql_charset="utf8mb4",
    )
