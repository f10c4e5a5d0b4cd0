"""`sweep` on a real anvil node: native coin and three token kinds through to settled,
gas top-ups, batching, stuck and dropped transactions, an empty gas payer, dry runs.

Confirmed payments come from `make_confirmed`: a real payment, real funds on chain, a
Transfer row and the pending → detected → confirmed transitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli import lifecycle
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import Settings
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import (
    JobRun,
    Payment,
    SweepPayment,
    SweepTransaction,
    Transfer,
    WebhookEvent,
)
from ctrip_cli.errors import InsufficientFundsError
from ctrip_cli.jobs import sweep as sweep_job
from ctrip_cli.payments import create_payment
from tests.evm import (
    ANVIL_ACCOUNTS,
    Anvil,
    balance_of,
    get_receipt,
    mint,
    native_balance,
    send_native,
    wait_receipt,
)
from tests.evm_fixtures import TestTokens

pytestmark = pytest.mark.evm

TREASURY = "0x1111111111111111111111111111111111111111"
FUNDER = ANVIL_ACCOUNTS[0]
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def chains_yaml(
    anvil: Anvil,
    tokens: TestTokens,
    *,
    treasury: str | None = TREASURY,
    url: str | None = None,
    **extra: Any,
) -> str:
    """The `local` chain on `anvil` (or through `url`), with `extra` chain keys."""
    lines = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url or anvil.url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{tokens.usdc}", decimals: 6}}
      DAI: {{address: "{tokens.dai}", decimals: 18}}
      USDT: {{address: "{tokens.usdt}", decimals: 6}}
    treasury: {f"'{treasury}'" if treasury else "null"}
    block_time_s: 1
{lines}"""


@dataclass
class SweepWorld:
    """Everything a sweep test needs, on one anvil snapshot and one fresh database."""

    anvil: Anvil
    tokens: TestTokens
    settings: Settings
    engine: sa.Engine
    now: datetime

    @property
    def cfg(self) -> Any:
        return self.settings.chain("local")

    def token(self, asset: str) -> str:
        return {
            "USDC": self.tokens.usdc,
            "DAI": self.tokens.dai,
            "USDT": self.tokens.usdt,
        }[asset]

    def session(self) -> Session:
        return db_engine.session_factory(self.engine)()

    def payer(self) -> str:
        return KeyRing(self.settings.mnemonic).address(
            self.settings.sweep.gas_payer_path
        )  # type: ignore[arg-type]

    def fund_payer(self, wei: int = 10**18) -> None:
        send_native(self.anvil, FUNDER, self.payer(), wei)

    def sweep(self, *, now: datetime | None = None, **kw: Any) -> sweep_job.SweepResult:
        rpc = EvmChain.open(self.cfg)
        try:
            with self.session() as session:
                return sweep_job.run(
                    session,
                    rpc,
                    cfg=self.cfg,
                    keys=KeyRing.for_chain(self.settings.mnemonic, self.cfg),
                    now=now or self.now,
                    settings=self.settings.sweep,
                    **kw,
                )
        finally:
            rpc.close()

    def sweep_until_settled(self, ids: list[str], max_passes: int = 8) -> int:
        """Run passes (mining enough blocks in between) until every payment is settled."""
        for n in range(1, max_passes + 1):
            self.sweep()
            if all(self.payment(i).status == lifecycle.SETTLED for i in ids):
                return n
            if self.anvil.rpc("anvil_getAutomine"):
                self.wait_mined()
            self.anvil.mine(self.cfg.confirmations)
        raise AssertionError(
            f"not settled after {max_passes} passes: {self.statuses(ids)}"
        )

    def payment(self, payment_id: str) -> Payment:
        with self.session() as s:
            p = s.get(Payment, payment_id)
            assert p is not None
            return p

    def statuses(self, ids: list[str]) -> list[str]:
        return [self.payment(i).status for i in ids]

    def wait_mined(self) -> None:
        """Wait for anvil to mine what was sent (automine mines just after replying)."""
        newest = {
            row.purpose: row for row in self.sweep_rows()
        }  # superseded ones may never be
        for row in newest.values():
            if row.state == "pending":
                wait_receipt(self.anvil, row.tx_hash)

    def sweep_rows(self) -> list[SweepTransaction]:
        with self.session() as s:
            return list(
                s.scalars(sa.select(SweepTransaction).order_by(SweepTransaction.id))
            )


@pytest.fixture(name="world")
def world_fixture(
    anvil_snapshot: Anvil,
    tokens: TestTokens,
    make_settings: Callable[..., Settings],
    db_url: str,
    now: datetime,
) -> Iterator[SweepWorld]:
    settings = make_settings(chains_yaml=chains_yaml(anvil_snapshot, tokens))
    engine = db_engine.make_engine(db_url)
    try:
        yield SweepWorld(anvil_snapshot, tokens, settings, engine, now)
    finally:
        engine.dispose()


def make_confirmed(
    world: SweepWorld, asset: str, amount: str, *, fund: int | None = None
) -> Payment:
    """A confirmed payment whose deposit address really holds the funds on chain."""
    with world.session() as s, s.begin():
        created = create_payment(
            s, world.settings, chain="local", asset=asset, amount=amount, now=world.now
        )
    p = world.payment(created["id"])
    return fund_and_confirm(world, p, p.amount if fund is None else fund)


def fund_and_confirm(world: SweepWorld, p: Payment, units: int) -> Payment:
    """Send `units` to the payment's address, record the transfer, move it to confirmed."""
    if p.token_address is None:
        tx_hash = send_native(world.anvil, FUNDER, p.address, units)
        log_index = -1
    else:
        tx_hash = mint(world.anvil, p.token_address, p.address, units)
        log_index = 0
    receipt = get_receipt(world.anvil, tx_hash)
    assert receipt is not None
    with world.session() as s, s.begin():
        payment = s.get(Payment, p.id)
        assert payment is not None
        s.add(
            Transfer(
                chain="local",
                tx_hash=tx_hash,
                log_index=log_index,
                block_number=int(receipt["blockNumber"], 16),
                block_hash=receipt["blockHash"],
                from_address=FUNDER,
                to_address=p.address,
                token_address=p.token_address,
                amount=units,
                payment_id=p.id,
                created_at=world.now,
            )
        )
        payment.amount_received += units
        for to, event in (
            ("detected", "payment.detected"),
            ("confirmed", "payment.confirmed"),
        ):
            if payment.status != to:
                assert lifecycle.transition(
                    s, payment, to, now=world.now, reason="test factory", event=event
                )
    world.anvil.mine(world.settings.chain("local").confirmations)
    return world.payment(p.id)


def deposit_nonce(world: SweepWorld, address: str) -> int:
    return int(world.anvil.rpc("eth_getTransactionCount", address, "latest"), 16)


def test_native_and_three_token_kinds_settle_without_dust(world: SweepWorld) -> None:
    world.fund_payer()
    eth = make_confirmed(world, "ETH", "1.5")
    tokens = [
        make_confirmed(world, "USDC", "12.5"),
        make_confirmed(world, "DAI", "3.000000000000000001"),
        make_confirmed(world, "USDT", "7"),  # transfer() returns nothing
    ]
    ids = [eth.id, *(t.id for t in tokens)]

    world.sweep_until_settled(ids)

    rows = world.sweep_rows()
    native_row = next(r for r in rows if r.kind == "native")
    assert native_row.max_priority_fee_per_gas is None  # type 0: the fee is exact
    assert native_balance(world.anvil, eth.address) == 0  # no dust
    assert native_balance(world.anvil, TREASURY) == native_row.amount
    assert native_row.amount + native_row.fee_paid == eth.amount
    for t in tokens:
        assert balance_of(world.anvil, world.token(t.asset), t.address) == 0
        assert balance_of(world.anvil, world.token(t.asset), TREASURY) == t.amount
    assert sorted(r.kind for r in rows) == [
        "native",
        "token",
        "token",
        "token",
        *["topup"] * 3,
    ]
    assert {r.state for r in rows} == {"confirmed"}
    with world.session() as s:
        settled = s.scalars(
            sa.select(WebhookEvent.payment_id).where(
                WebhookEvent.type == "payment.settled"
            )
        ).all()
    assert sorted(settled) == sorted(ids)


@sqlite_only
def test_token_sweep_waits_for_its_gas_top_up(world: SweepWorld) -> None:
    world.fund_payer()
    world.anvil.set_automine(False)
    p = make_confirmed_no_automine(world, "USDC", "5")

    first = world.sweep()
    topup, token_tx = world.sweep_rows()
    assert (first.topups, first.broadcast) == (1, 1)
    assert (topup.kind, topup.state, token_tx.state) == ("topup", "pending", "held")
    assert token_tx.depends_on_id == topup.id
    world.sweep()  # the top-up is not mined yet: the token sweep stays held
    assert world.sweep_rows()[1].state == "held"

    world.anvil.mine(1)
    world.sweep()
    assert world.sweep_rows()[1].state == "pending"
    world.anvil.mine(1)
    gas = token_tx.gas_limit * token_tx.max_fee_per_gas
    assert topup.amount == gas  # exactly enough for the token transfer at its max fee
    world.anvil.mine(2)
    world.sweep()
    assert world.payment(p.id).status == "settled"


def make_confirmed_no_automine(world: SweepWorld, asset: str, amount: str) -> Payment:
    world.anvil.set_automine(True)
    try:
        return make_confirmed(world, asset, amount)
    finally:
        world.anvil.set_automine(False)


@sqlite_only
def test_two_payments_on_one_address_are_swept_in_one_transaction(
    world: SweepWorld,
) -> None:
    a = make_confirmed(world, "ETH", "0.4")
    with world.session() as s, s.begin():
        created = create_payment(
            s, world.settings, chain="local", asset="ETH", amount="0.6", now=world.now
        )
        # Tests only: point the second payment at the first one's deposit address.
        s.execute(
            sa.update(Payment)
            .where(Payment.id == created["id"])
            .values(address=a.address, derivation_index=a.derivation_index)
        )
    b = fund_and_confirm(world, world.payment(created["id"]), 6 * 10**17)

    world.sweep_until_settled([a.id, b.id])

    (row,) = world.sweep_rows()
    with world.session() as s:
        linked = s.scalars(
            sa.select(SweepPayment.payment_id).where(SweepPayment.sweep_tx_id == row.id)
        ).all()
    assert sorted(linked) == sorted([a.id, b.id])
    assert row.amount + row.fee_paid == 10**18
    assert native_balance(world.anvil, a.address) == 0


@sqlite_only
def test_stuck_transaction_is_replaced_with_a_fee_bump(world: SweepWorld) -> None:
    p = make_confirmed(world, "ETH", "1")
    world.anvil.set_automine(False)
    world.sweep()
    (first,) = world.sweep_rows()
    assert first.state == "pending"

    later = world.now + timedelta(seconds=world.settings.sweep.stuck_after_s + 1)
    result = world.sweep(now=later)
    assert result.replaced == 1
    old, new = world.sweep_rows()
    assert (new.nonce, new.replaces_id, new.purpose) == (old.nonce, old.id, old.purpose)
    assert new.max_fee_per_gas * 10_000 >= old.max_fee_per_gas * 11_250
    assert new.amount + new.max_fee_per_gas * new.gas_limit == p.amount

    world.anvil.set_automine(True)
    world.anvil.mine(1)
    world.sweep_until_settled([p.id])
    old, new = world.sweep_rows()
    assert (old.state, new.state) == ("replaced", "confirmed")
    assert deposit_nonce(world, p.address) == 1  # exactly one transaction went out
    assert native_balance(world.anvil, TREASURY) == new.amount
    assert native_balance(world.anvil, p.address) == 0


@sqlite_only
def test_dropped_transaction_is_rebroadcast(world: SweepWorld) -> None:
    p = make_confirmed(world, "ETH", "1")
    world.anvil.set_automine(False)
    world.sweep()
    (row,) = world.sweep_rows()
    world.anvil.rpc("anvil_dropTransaction", row.tx_hash)

    result = world.sweep()

    assert result.rebroadcast == 1
    assert world.anvil.rpc("eth_getTransactionByHash", row.tx_hash) is not None
    world.anvil.set_automine(True)
    world.anvil.mine(1)
    world.sweep_until_settled([p.id])
    assert len(world.sweep_rows()) == 1


@sqlite_only
def test_empty_gas_payer_is_a_clear_error_and_loses_nothing(world: SweepWorld) -> None:
    eth = make_confirmed(world, "ETH", "1")
    usdt = make_confirmed(world, "USDT", "7")

    with pytest.raises(InsufficientFundsError) as err:
        world.sweep()

    assert world.payer() in str(err.value)
    assert "m/44'/60'/1'/0/0" in str(err.value)
    assert [r.kind for r in world.sweep_rows()] == [
        "native"
    ]  # the native sweep went out
    assert world.payment(usdt.id).status == "confirmed"
    world.fund_payer()
    world.sweep_until_settled([eth.id, usdt.id])


@sqlite_only
def test_uneconomic_native_sweep_is_skipped_and_reported(world: SweepWorld) -> None:
    p = make_confirmed(world, "ETH", "0.000000000001")

    result = world.sweep()

    assert (result.skipped_uneconomic, result.signed) == (1, 0)
    assert result.plan[0].action.startswith("skip")
    assert world.sweep_rows() == []
    assert world.payment(p.id).status == "confirmed"


def _table_counts(world: SweepWorld) -> dict[str, int]:
    with world.session() as s:
        return {
            m.__tablename__: s.scalar(sa.select(sa.func.count()).select_from(m)) or 0
            for m in (SweepTransaction, SweepPayment, WebhookEvent, JobRun, Payment)
        }


def test_dry_run_plans_and_writes_nothing(world: SweepWorld) -> None:
    eth = make_confirmed(world, "ETH", "2")
    make_confirmed(world, "DAI", "1")
    before = _table_counts(world)
    head = world.anvil.block_number()

    result = world.sweep(dry_run=True)

    assert result.dry_run
    assert (result.planned, result.signed) == (2, 0)
    kinds = sorted((i.kind, i.asset, i.action) for i in result.plan)
    assert kinds == [
        ("native", "ETH", "sweep"),
        ("token", "DAI", "top up gas, then sweep"),
        ("topup", "ETH", "top up"),
    ]
    native = next(i for i in result.plan if i.kind == "native")
    assert int(native.amount_base_units) + int(native.fee_wei) == eth.amount
    assert native.to_address == TREASURY
    assert _table_counts(world) == before
    assert world.anvil.block_number() == head
    assert any("gas payer" in e for e in result.errors)


@sqlite_only
def test_stuck_token_sweep_gets_a_bump_top_up_then_its_replacement(
    world: SweepWorld,
) -> None:
    world.fund_payer()
    p = make_confirmed(world, "DAI", "5")
    world.anvil.set_automine(False)
    world.sweep()  # top-up out, token sweep held
    world.anvil.mine(1)
    world.sweep()  # top-up mined: token sweep broadcast
    topup, token_tx = world.sweep_rows()
    assert token_tx.state == "pending"
    # Fees spike past the token sweep's max fee: it cannot be mined any more.
    world.anvil.rpc(
        "anvil_setNextBlockBaseFeePerGas", hex(4 * token_tx.max_fee_per_gas)
    )
    world.anvil.mine(1)

    later = world.now + timedelta(seconds=world.settings.sweep.stuck_after_s + 1)
    result = world.sweep(now=later)

    assert (result.replaced, result.topups) == (1, 1)
    rows = world.sweep_rows()
    bump_topup, replacement = rows[2], rows[3]
    assert (bump_topup.kind, replacement.state) == ("topup", "held")
    assert (replacement.nonce, replacement.replaces_id) == (token_tx.nonce, token_tx.id)
    assert replacement.depends_on_id == bump_topup.id
    # Exactly the extra gas the replacement needs, on top of the first top-up.
    assert (
        topup.amount + bump_topup.amount
        == replacement.gas_limit * replacement.max_fee_per_gas
    )
    for _ in range(3):
        world.anvil.mine(1)
        world.sweep(now=later)
    world.anvil.set_automine(True)
    world.sweep_until_settled([p.id])
    states = {r.id: r.state for r in world.sweep_rows()}
    assert (states[token_tx.id], states[replacement.id]) == ("replaced", "confirmed")
    assert deposit_nonce(world, p.address) == 1
    assert balance_of(world.anvil, world.tokens.dai, TREASURY) == p.amount


@sqlite_only
def test_reverted_token_sweep_is_failed_and_its_payment_stays_confirmed(
    world: SweepWorld,
) -> None:
    world.fund_payer()
    p = make_confirmed(world, "USDC", "2")
    world.sweep()  # the top-up goes out; the token sweep is held
    world.wait_mined()
    reverter_code = world.anvil.rpc("eth_getCode", world.tokens.reverter, "latest")
    world.anvil.rpc("anvil_setCode", world.tokens.usdc, reverter_code)  # token breaks

    world.sweep()  # releases the token sweep: mined, reverted
    world.wait_mined()
    result = world.sweep()

    assert result.failed == 1
    assert any("reverted" in e for e in result.errors)
    token_row = next(r for r in world.sweep_rows() if r.kind == "token")
    assert token_row.state == "failed"
    assert "reverted" in (token_row.last_error or "")
    assert world.payment(p.id).status == "confirmed"
    assert world.sweep().signed == 0  # not re-signed: each retry would burn gas


@sqlite_only
def test_held_token_sweep_refused_for_funds_is_retried(world: SweepWorld) -> None:
    world.fund_payer()
    p = make_confirmed(world, "USDT", "9")
    world.sweep()  # the top-up goes out; the token sweep is held
    world.wait_mined()
    funded = native_balance(world.anvil, p.address)
    world.anvil.set_balance(p.address, 0)

    refused = world.sweep()

    assert any("insufficient funds" in e for e in refused.errors)
    assert next(r for r in world.sweep_rows() if r.kind == "token").state == "held"
    world.anvil.set_balance(p.address, funded)
    world.sweep_until_settled([p.id])
    assert (
        len(world.sweep_rows()) == 2
    )  # one top-up, one token sweep: nothing re-signed


@sqlite_only
def test_nonce_taken_by_a_foreign_transaction_fails_the_sweep(
    world: SweepWorld,
) -> None:
    p = make_confirmed(world, "ETH", "1")
    world.anvil.set_automine(False)
    world.sweep()
    (row,) = world.sweep_rows()
    world.anvil.rpc("anvil_dropTransaction", row.tx_hash)
    # Someone else holding the mnemonic spends from the deposit address with our nonce.
    account = KeyRing(world.settings.mnemonic).account(row.key_path)  # type: ignore[arg-type]
    foreign = account.sign_transaction(
        {
            "chainId": 31337,
            "nonce": row.nonce,
            "to": FUNDER,
            "value": 1,
            "gas": 21_000,
            "gasPrice": 10**10,
        }
    )
    world.anvil.rpc("eth_sendRawTransaction", "0x" + foreign.raw_transaction.hex())
    world.anvil.mine(1)

    waiting = world.sweep()  # could be an endpoint whose receipts lag: wait first
    assert waiting.failed == 0
    assert any("no receipt is visible" in e for e in waiting.errors)
    assert world.sweep_rows()[0].state == "pending"
    later = world.now + timedelta(seconds=world.settings.sweep.stuck_after_s)
    result = world.sweep(now=later)

    assert result.failed == 1
    (row,) = world.sweep_rows()
    assert row.state == "failed"
    assert "did not sign" in (row.last_error or "")
    assert world.payment(p.id).status == "confirmed"


@sqlite_only
def test_address_holding_less_than_received_waits_instead_of_stranding(
    world: SweepWorld,
) -> None:
    p = make_confirmed(world, "USDC", "5")
    with world.session() as s, s.begin():  # as if the endpoint lagged behind the scan
        s.execute(
            sa.update(Payment)
            .where(Payment.id == p.id)
            .values(amount_received=6_000_000)
        )
        s.execute(
            sa.update(Transfer)
            .where(Transfer.payment_id == p.id)
            .values(amount=6_000_000)
        )

    result = world.sweep()

    assert (result.planned, result.signed) == (0, 0)
    assert any("less than its payments are owed" in e for e in result.errors)
    assert world.payment(p.id).status == "confirmed"


@sqlite_only
def test_funds_credited_after_confirmation_wait_until_deep_before_sweeping(
    world: SweepWorld,
) -> None:
    # A confirmed payment gets an overpayment at the head. Sweeping that now signs a
    # transfer of funds a reorg can still remove (the token sweep would revert): the
    # deep part is swept at once, the rest by a sweep of its own once deep.
    world.fund_payer()
    p = make_confirmed(world, "USDC", "5")
    tx_hash = mint(world.anvil, p.token_address or "", p.address, 1_000_000)
    receipt = get_receipt(world.anvil, tx_hash)
    assert receipt is not None
    with world.session() as s, s.begin():
        s.add(
            Transfer(
                chain="local",
                tx_hash=tx_hash,
                log_index=0,
                block_number=int(receipt["blockNumber"], 16),
                block_hash=receipt["blockHash"],
                from_address=FUNDER,
                to_address=p.address,
                token_address=p.token_address,
                amount=1_000_000,
                payment_id=p.id,
                created_at=world.now,
            )
        )
        s.execute(
            sa.update(Payment)
            .where(Payment.id == p.id)
            .values(amount_received=6_000_000)
        )

    result = world.sweep()  # the mint is at the head: 1 of 2 confirmations

    (token_row,) = [r for r in world.sweep_rows() if r.kind == "token"]
    assert (result.planned, token_row.amount) == (1, 5_000_000)
    world.anvil.mine(world.cfg.confirmations)
    world.sweep_until_settled([p.id])
    for _ in range(6):
        world.sweep()
        world.anvil.mine(world.cfg.confirmations)
    assert balance_of(world.anvil, world.tokens.usdc, TREASURY) == 6_000_000
    assert balance_of(world.anvil, world.tokens.usdc, p.address) == 0
    assert world.payment(p.id).amount_swept == 6_000_000
    sweeps = [r for r in world.sweep_rows() if r.kind == "token"]
    assert [r.amount for r in sweeps] == [5_000_000, 1_000_000]


@sqlite_only
def test_used_nonce_without_receipt_waits_from_when_it_is_first_seen(
    world: SweepWorld,
) -> None:
    # The sweep sat in the mempool past stuck_after_s before its nonce was used; the
    # first pass that sees the nonce used without a receipt (an endpoint whose receipts
    # lag) must wait, not fail at once: a failed sweep is final, never retried.
    make_confirmed(world, "ETH", "1")
    world.anvil.set_automine(False)
    world.sweep()
    (row,) = world.sweep_rows()
    world.anvil.rpc("anvil_dropTransaction", row.tx_hash)
    account = KeyRing(world.settings.mnemonic).account(row.key_path)  # type: ignore[arg-type]
    foreign = account.sign_transaction(
        {
            "chainId": 31337,
            "nonce": row.nonce,
            "to": FUNDER,
            "value": 1,
            "gas": 21_000,
            "gasPrice": 10**10,
        }
    )
    world.anvil.rpc("eth_sendRawTransaction", "0x" + foreign.raw_transaction.hex())
    world.anvil.mine(1)
    stuck_s = world.settings.sweep.stuck_after_s
    first_seen = world.now + timedelta(seconds=stuck_s + 60)

    waiting = world.sweep(now=first_seen)

    assert waiting.failed == 0
    assert world.sweep_rows()[0].state == "pending"
    assert world.sweep(now=first_seen + timedelta(seconds=stuck_s - 1)).failed == 0
    assert world.sweep(now=first_seen + timedelta(seconds=stuck_s)).failed == 1
    assert world.sweep_rows()[0].state == "failed"


@sqlite_only
def test_a_token_that_refuses_its_transfer_does_not_block_other_sweeps(
    world: SweepWorld,
) -> None:
    # eth_estimateGas of a transfer the token refuses (paused, blacklisted address)
    # is an RPC error; it must cost that one sweep, not every sweep of the chain.
    eth = make_confirmed(world, "ETH", "1")
    usdc = make_confirmed(world, "USDC", "2")
    reverter_code = world.anvil.rpc("eth_getCode", world.tokens.reverter, "latest")
    world.anvil.rpc("anvil_setCode", world.tokens.usdc, reverter_code)

    world.sweep_until_settled([eth.id])

    assert world.payment(usdc.id).status == "confirmed"
    assert [r.kind for r in world.sweep_rows()] == ["native"]
    result = world.sweep()
    assert any(usdc.address in e for e in result.errors)


class _Crash(Exception):
    pass


def _crash_after_sign(step: str) -> None:
    if step == "after_sign":
        raise _Crash


@sqlite_only
def test_signed_row_refused_for_a_risen_base_fee_is_replaced_once_stuck(
    world: SweepWorld,
) -> None:
    # Signed, then the pass died before the broadcast; by the rerun the base fee has
    # risen past the stored fee, and the node refuses the bytes. The row must not stay
    # `signed` (rebroadcast as is, forever): it is replaced with fresh fees once stuck.
    p = make_confirmed(world, "ETH", "1")
    with pytest.raises(_Crash):
        world.sweep(hook=_crash_after_sign)
    world.anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**12))
    world.anvil.mine(1)
    world.sweep()
    later = world.now + timedelta(seconds=world.settings.sweep.stuck_after_s)

    result = world.sweep(now=later)

    assert result.replaced == 1
    for n in range(4):
        world.wait_mined()
        world.anvil.mine(world.cfg.confirmations)
        world.sweep(now=later + timedelta(seconds=n + 1))
    assert world.payment(p.id).status == lifecycle.SETTLED
    assert native_balance(world.anvil, p.address) == 0
