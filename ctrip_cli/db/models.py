"""SQLAlchemy 2 typed models: the one schema shared by SQLite and PostgreSQL.

Money is an exact integer of base units (`BaseUnits`); datetimes are aware UTC (`UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                "naive datetime given to the database; use an aware UTC one"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        return (
            value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        )


class BaseUnits(TypeDecorator[int]):
    """An exact non-negative integer amount: NUMERIC(78,0) on PostgreSQL.

    SQLite's NUMERIC affinity silently turns integers beyond 2**63 into floats, so there
    the digits are stored as text and all arithmetic happens in Python.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amounts are int base units, got {type(value).__name__}")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    pass


class DepositIndexCounter(Base):
    """A single row; `UPDATE ... SET next_index = next_index + 1` allocates atomically."""

    __tablename__ = "deposit_index_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_index: Mapped[int] = mapped_column(BigInteger)


class DepositAddress(Base):
    __tablename__ = "deposit_addresses"
    derivation_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_chain_status", "chain", "status"),
        Index("ix_payments_chain_address", "chain", "address"),
        Index("ix_payments_status_expires", "status", "expires_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    chain: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(16))
    token_address: Mapped[str | None] = mapped_column(String(42))
    decimals: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(42))
    derivation_index: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deposit_addresses.derivation_index")
    )
    amount: Mapped[int] = mapped_column(BaseUnits)
    amount_received: Mapped[int] = mapped_column(BaseUnits, default=0)
    # What confirmed sweeps took from the deposit address for this payment (for the
    # native coin: the value sent plus the fee paid from it).
    amount_swept: Mapped[int] = mapped_column(BaseUnits, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str | None] = mapped_column(String(255))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Transfer(Base):
    """One incoming transfer; log_index is -1 for a native-coin transaction, -(1000 +
    n) for coin forwarded at trace position n, and -2 for money `reconcile` found in
    a balance (`source` "balance"; it arrived in blocks `from_block`..`block_number`)."""

    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint(
            "chain", "tx_hash", "log_index", name="uq_transfers_chain_tx_log"
        ),
        Index("ix_transfers_chain_block", "chain", "block_number"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(32))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # The block's timestamp: lateness is judged by it, not by the pass's clock.
    block_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    from_address: Mapped[str | None] = mapped_column(String(42))
    to_address: Mapped[str] = mapped_column(String(42))
    token_address: Mapped[str | None] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BaseUnits)
    payment_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("payments.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # NULL for a transfer read from the chain (a log, a transaction, a trace); "balance"
    # for money reconcile found in a balance and credited (its amount shrinks when a
    # transfer read later explains the same money).
    source: Mapped[str | None] = mapped_column(String(16))
    from_block: Mapped[int | None] = mapped_column(BigInteger)


class ScanCursor(Base):
    """The last fully read block of a chain; it moves in the same transaction as the work."""

    __tablename__ = "scan_cursors"
    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # The cursor block's timestamp: `confirm` expires only what the scan read past.
    block_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RpcEndpointLimits(Base):
    """What the transport learnt about one endpoint (keyed by a hash of its URL, never
    the URL), so later passes start within its limits."""

    __tablename__ = "rpc_endpoint_limits"
    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    limits: Mapped[str] = mapped_column(Text)  # JSON of chain.limits.EndpointLimits
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScannedBlock(Base):
    """Hashes of the recent window of scanned blocks, for reorg detection."""

    __tablename__ = "scanned_blocks"
    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))


class PaymentStatusChange(Base):
    __tablename__ = "payment_status_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("payments.id"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """The outbox: written in the same transaction as the status change that causes it."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_due", "status", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("payments.id"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts since the last `webhooks retry`: indexes the retry ladder.
    attempts_in_round: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The claim: which run holds the event and until when (a crashed run's claim expires).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One delivery attempt: what was sent where, and what came back."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_events.id"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    endpoint: Mapped[str | None] = mapped_column(Text)


class SweepTransaction(Base):
    """One signed attempt, committed before it is broadcast; reruns reuse `raw_tx`.

    Attempts of one purpose share it; a fee-bump replacement has the same nonce and
    points at the attempt it replaces. `depends_on_id` holds a token sweep back until
    its gas top-up is mined. States: held, signed, pending, mined, confirmed, failed,
    replaced.
    """

    __tablename__ = "sweep_transactions"
    __table_args__ = (
        UniqueConstraint("chain", "tx_hash", name="uq_sweep_tx_chain_hash"),
        Index("ix_sweep_tx_chain_state", "chain", "state"),
        Index("ix_sweep_tx_chain_purpose", "chain", "purpose"),
        # reconcile reads what left (and what topped up) each deposit address.
        Index("ix_sweep_tx_chain_from", "chain", "from_address"),
        Index("ix_sweep_tx_chain_to", "chain", "to_address"),
        # One first attempt per purpose and per (sender, nonce): never sign twice.
        Index(
            "uq_sweep_tx_root_purpose",
            "chain",
            "purpose",
            unique=True,
            sqlite_where=text("replaces_id IS NULL"),
            postgresql_where=text("replaces_id IS NULL"),
        ),
        Index(
            "uq_sweep_tx_root_nonce",
            "chain",
            "from_address",
            "nonce",
            unique=True,
            sqlite_where=text("replaces_id IS NULL"),
            postgresql_where=text("replaces_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    key_path: Mapped[str] = mapped_column(String(64))
    from_address: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str] = mapped_column(String(42))
    token_address: Mapped[str | None] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BaseUnits)
    nonce: Mapped[int] = mapped_column(BigInteger)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int] = mapped_column(BaseUnits)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(BaseUnits)
    raw_tx: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(String(66))
    state: Mapped[str] = mapped_column(String(16))
    replaces_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("sweep_transactions.id")
    )
    depends_on_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("sweep_transactions.id")
    )
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    # What the sender paid in all once mined: gas × price, plus the L1 data fee
    # (OP Stack) that `l1_fee_paid` itemises.
    fee_paid: Mapped[int | None] = mapped_column(BaseUnits)
    # The L1 data fee bound this attempt reserved when signed (0 where none is charged).
    l1_fee_reserved: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default="0"
    )
    l1_fee_paid: Mapped[int | None] = mapped_column(BaseUnits)
    # Native coin the sender keeps of what it reserved once the attempt confirmed
    # (gas_limit × max fee + l1_fee_reserved − fee_paid): for a sweep, the dust left on
    # the deposit address.
    dust: Mapped[int | None] = mapped_column(BaseUnits)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    broadcast_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SweepPayment(Base):
    """Which payments a sweep takes money of, and how much of each: links to the sweep's
    first attempt. A payment may have several sweeps (money that arrives later gets
    its own), each linked once."""

    __tablename__ = "sweep_payments"
    sweep_tx_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sweep_transactions.id"), primary_key=True
    )
    payment_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("payments.id"), primary_key=True, index=True
    )
    # Base units of the payment's money this sweep moves off the deposit address.
    amount: Mapped[int] = mapped_column(BaseUnits)


class JobRun(Base):
    """What each pass did: `status` reads the last success and failure per job and chain."""

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_job_chain_started", "job", "chain", "started_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))
    chain: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class ReconcileCursor(Base):
    """The block the last reconcile of a chain compared balances at."""

    __tablename__ = "reconcile_cursors"
    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconcileDifference(Base):
    """A balance that differs from what the ledger explains at a block.

    kind: `inflow` (more than explained) or `shortfall` (less). resolution:
    `credited` (an inflow credited to `payment_id` as a balance transfer),
    `superseded` (a transfer read later explained part or all of that credit),
    `reorged` (a reorg removed the credit), `open` (an operator must look) and
    `resolved` (a later reconcile found the balance explained again). At most one
    open difference per (chain, address, asset, kind).
    """

    __tablename__ = "reconcile_differences"
    __table_args__ = (
        Index("ix_reconcile_diff_chain_resolution", "chain", "resolution"),
        Index(
            "uq_reconcile_diff_open",
            "chain",
            "address",
            "asset",
            "kind",
            unique=True,
            sqlite_where=text("resolution = 'open'"),
            postgresql_where=text("resolution = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(42))
    asset: Mapped[str] = mapped_column(String(16))
    token_address: Mapped[str | None] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # The money arrived (or left) after this block: the previous reconcile's, if known.
    from_block: Mapped[int | None] = mapped_column(BigInteger)
    # The bound of what the ledger explains that the balance crossed, and the balance.
    expected: Mapped[int] = mapped_column(BaseUnits)
    actual: Mapped[int] = mapped_column(BaseUnits)
    amount: Mapped[int] = mapped_column(BaseUnits)
    # For a credit: what the ledger had recorded as received at or below the block
    # when it was credited (a later transfer below the block supersedes the credit).
    ledger_received: Mapped[int | None] = mapped_column(BaseUnits)
    kind: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("payments.id"), index=True
    )
    transfer_tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_block: Mapped[int] = mapped_column(BigInteger)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
