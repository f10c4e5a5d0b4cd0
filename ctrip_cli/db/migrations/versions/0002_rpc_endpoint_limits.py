"""learnt RPC endpoint limits

Revision ID: 0002_rpc_endpoint_limits
Revises: 0001_initial
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ctrip_cli.db.models


revision = '0002_rpc_endpoint_limits'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rpc_endpoint_limits',
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('endpoint_key', sa.String(length=16), nullable=False),
    sa.Column('limits', sa.Text(), nullable=False),
    sa.Column('updated_at', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chain', 'endpoint_key')
    )


def downgrade() -> None:
    op.drop_table('rpc_endpoint_limits')
