"""reconcile: balance transfers, differences, the reconcile cursor

Revision ID: 0006_reconcile
Revises: 0005_sweep_l1_fees
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ctrip_cli.db.models


revision = '0006_reconcile'
down_revision = '0005_sweep_l1_fees'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table copy on SQLite, no rewrite
    # on PostgreSQL.
    op.add_column('transfers', sa.Column('source', sa.String(length=16), nullable=True))
    op.add_column('transfers', sa.Column('from_block', sa.BigInteger(), nullable=True))
    op.create_index('ix_sweep_tx_chain_from', 'sweep_transactions', ['chain', 'from_address'], unique=False)
    op.create_index('ix_sweep_tx_chain_to', 'sweep_transactions', ['chain', 'to_address'], unique=False)
    op.create_table('reconcile_cursors',
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('at', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chain')
    )
    op.create_table('reconcile_differences',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('token_address', sa.String(length=42), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('from_block', sa.BigInteger(), nullable=True),
    sa.Column('expected', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=False),
    sa.Column('actual', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=False),
    sa.Column('amount', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=False),
    sa.Column('ledger_received', ctrip_cli.db.models.BaseUnits(precision=78, scale=0), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('payment_id', sa.String(length=40), nullable=True),
    sa.Column('transfer_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('created_at', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_block', sa.BigInteger(), nullable=False),
    sa.Column('resolved_at', ctrip_cli.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reconcile_differences', schema=None) as batch_op:
        batch_op.create_index('ix_reconcile_diff_chain_resolution', ['chain', 'resolution'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_differences_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index('uq_reconcile_diff_open', ['chain', 'address', 'asset', 'kind'], unique=True, sqlite_where=sa.text("resolution = 'open'"), postgresql_where=sa.text("resolution = 'open'"))


def downgrade() -> None:
    with op.batch_alter_table('reconcile_differences', schema=None) as batch_op:
        batch_op.drop_index('uq_reconcile_diff_open', sqlite_where=sa.text("resolution = 'open'"), postgresql_where=sa.text("resolution = 'open'"))
        batch_op.drop_index(batch_op.f('ix_reconcile_differences_payment_id'))
        batch_op.drop_index('ix_reconcile_diff_chain_resolution')
    op.drop_table('reconcile_differences')
    op.drop_table('reconcile_cursors')
    op.drop_index('ix_sweep_tx_chain_to', table_name='sweep_transactions')
    op.drop_index('ix_sweep_tx_chain_from', table_name='sweep_transactions')
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as 0004's downgrade does.
    op.execute('ALTER TABLE transfers DROP COLUMN from_block')
    op.execute('ALTER TABLE transfers DROP COLUMN source')
