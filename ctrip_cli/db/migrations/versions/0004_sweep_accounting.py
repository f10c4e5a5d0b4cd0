"""sweep accounting: several sweeps per payment, block times

Revision ID: 0004_sweep_accounting
Revises: 0003_webhook_endpoint_text
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ctrip_cli.db.models


revision = '0004_sweep_accounting'
down_revision = '0003_webhook_endpoint_text'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_swept', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), server_default='0', nullable=False))
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('block_time', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('scan_cursors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('block_time', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=True))
    # Settled before this revision: their one sweep took all they had received.
    op.execute("UPDATE payments SET amount_swept = amount_received WHERE status = 'settled'")
    # One link per (sweep, payment), with the amount the sweep took of the payment.
    op.create_table('sweep_payments_new',
    sa.Column('sweep_tx_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('amount', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.ForeignKeyConstraint(['sweep_tx_id'], ['sweep_transactions.id'], ),
    sa.PrimaryKeyConstraint('sweep_tx_id', 'payment_id')
    )
    op.execute(
        "INSERT INTO sweep_payments_new (sweep_tx_id, payment_id, amount) "
        "SELECT sp.sweep_tx_id, sp.payment_id, p.amount_received "
        "FROM sweep_payments sp JOIN payments p ON p.id = sp.payment_id"
    )
    with op.batch_alter_table('sweep_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweep_payments_sweep_tx_id'))
    op.drop_table('sweep_payments')
    op.rename_table('sweep_payments_new', 'sweep_payments')
    with op.batch_alter_table('sweep_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweep_payments_payment_id'), ['payment_id'], unique=False)


def downgrade() -> None:
    op.create_table('sweep_payments_old',
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('sweep_tx_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.ForeignKeyConstraint(['sweep_tx_id'], ['sweep_transactions.id'], ),
    sa.PrimaryKeyConstraint('payment_id')
    )
    # The old schema keeps one sweep per payment: its first.
    op.execute(
        "INSERT INTO sweep_payments_old (payment_id, sweep_tx_id) "
        "SELECT payment_id, MIN(sweep_tx_id) FROM sweep_payments GROUP BY payment_id"
    )
    with op.batch_alter_table('sweep_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweep_payments_payment_id'))
    op.drop_table('sweep_payments')
    op.rename_table('sweep_payments_old', 'sweep_payments')
    with op.batch_alter_table('sweep_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweep_payments_sweep_tx_id'), ['sweep_tx_id'], unique=False)
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of `payments`
    # would have to drop a table other tables reference.
    op.execute('ALTER TABLE scan_cursors DROP COLUMN block_time')
    op.execute('ALTER TABLE transfers DROP COLUMN block_time')
    op.execute('ALTER TABLE payments DROP COLUMN amount_swept')
