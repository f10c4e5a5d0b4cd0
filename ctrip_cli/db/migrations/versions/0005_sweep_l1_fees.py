"""sweep L1 fees: the L1 data fee reserved and paid by each attempt, and its dust

Revision ID: 0005_sweep_l1_fees
Revises: 0004_sweep_accounting
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ctrip_cli.db.models


revision = '0005_sweep_l1_fees'
down_revision = '0004_sweep_accounting'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sweep_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('l1_fee_reserved', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('l1_fee_paid', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=True))
        batch_op.add_column(sa.Column('dust', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=True))
    # Before this revision no chain charged an L1 fee; a confirmed sweep kept what it
    # reserved beyond what it paid.
    op.execute(
        "UPDATE sweep_transactions SET dust = gas_limit * max_fee_per_gas - fee_paid "
        "WHERE state = 'confirmed' AND kind <> 'topup' AND fee_paid IS NOT NULL"
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0004.
    op.execute('ALTER TABLE sweep_transactions DROP COLUMN dust')
    op.execute('ALTER TABLE sweep_transactions DROP COLUMN l1_fee_paid')
    op.execute('ALTER TABLE sweep_transactions DROP COLUMN l1_fee_reserved')
