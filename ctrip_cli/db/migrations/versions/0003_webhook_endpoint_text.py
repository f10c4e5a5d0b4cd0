"""webhook_attempts.endpoint: TEXT instead of VARCHAR(255)

An endpoint is scheme://host:port of a webhook URL; a host of 253 characters with a
scheme and port does not fit 255, and an event stored before URLs were validated may
hold a longer one. Recording such an attempt stopped every delivery pass.

Revision ID: 0003_webhook_endpoint_text
Revises: 0002_rpc_endpoint_limits
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_webhook_endpoint_text"
down_revision = "0002_rpc_endpoint_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.alter_column(
            "endpoint",
            existing_type=sa.String(length=255),
            type_=sa.Text(),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.alter_column(
            "endpoint",
            existing_type=sa.Text(),
            type_=sa.String(length=255),
            existing_nullable=True,
        )
