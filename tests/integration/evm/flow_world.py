"""A world that runs the real passes (scan, confirm, sweep) in turn on the session's
anvil node, with a clock that follows the chain's, for tests of whole payment flows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import Settings
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Payment, SweepTransaction, Transfer, WebhookEvent
from ctrip_cli.jobs import confirm as confirm_job
from ctrip_cli.jobs import scan as scan_job
from ctrip_cli.jobs import sweep as sweep_job
from ctrip_cli.payments import create_payment
from tests.evm import ANVIL_ACCOUNTS, Anvil, mint, send_native
from tests.evm_fixtures import TestTokens

TREASURY = "0x2222222222222222222222222222222222222222"
FUNDER = ANVIL_ACCOUNTS[0]


def chains_yaml(anvil: Anvil, tokens: TestTokens) -> str:
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{anvil.url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{tokens.usdc}", decimals: 6}}
    treasury: '{TREASURY}'
    reorg_depth_blocks: 16
    block_time_s: 1
"""


@dataclass
class FlowWorld:
    anvil: Anvil
    tokens: TestTokens
    settings: Settings
    engine: sa.Engine
    clock: datetime

    @property
    def cfg(self) -> Any:
        return self.settings.chain("local")

    def session(self) -> Session:
        return db_engine.session_factory(self.engine)()

    # -- time: the passes' clock follows the chain's --

    def chain_time(self) -> datetime:
        block = self.anvil.get_block("latest")
        assert block is not None
        return datetime.fromtimestamp(int(block["timestamp"], 16), UTC)

    def advance(self, seconds: int) -> None:
        """Let `seconds` pass on the chain (one block) and on the passes' clock."""
        self.anvil.rpc("evm_increaseTime", seconds)
        self.anvil.mine(1)
        self.clock = max(self.clock + timedelta(seconds=seconds), self.chain_time())

    # -- the merchant and the payers --

    def pay(self, asset: str, amount: str, *, expires_in_s: int = 3_600) -> Payment:
        with self.session() as s, s.begin():
            created = create_payment(
                s,
                self.settings,
                chain="local",
                asset=asset,
                amount=amount,
                now=self.clock,
                expires_in_s=expires_in_s,
            )
        return self.payment(created["id"])

    def send(self, p: Payment, units: int) -> str:
        if p.token_address is None:
            return send_native(self.anvil, FUNDER, p.address, units)
        return mint(self.anvil, p.token_address, p.address, units)

    def fund_payer(self, wei: int = 10**18) -> None:
        send_native(self.anvil, FUNDER, self.payer(), wei)

    def payer(self) -> str:
        mnemonic = self.settings.mnemonic
        assert mnemonic is not None
        return KeyRing(mnemonic).address(self.settings.sweep.gas_payer_path)

    # -- the passes --

    def scan(self) -> scan_job.ScanResult:
        client = EvmChain.open(self.cfg)
        try:
            with self.session() as s:
                return scan_job.run(
                    s, client, cfg=self.cfg, now=self.clock, settings=self.settings.scan
                )
        finally:
            client.close()

    def confirm(self) -> confirm_job.ConfirmResult:
        client = EvmChain.open(self.cfg)
        try:
            with self.session() as s:
                return confirm_job.run(s, client, cfg=self.cfg, now=self.clock)
        finally:
            client.close()

    def sweep(self) -> sweep_job.SweepResult:
        mnemonic = self.settings.mnemonic
        assert mnemonic is not None
        client = EvmChain.open(self.cfg)
        try:
            with self.session() as s:
                return sweep_job.run(
                    s,
                    client,
                    cfg=self.cfg,
                    keys=KeyRing.for_chain(mnemonic, self.cfg),
                    now=self.clock,
                    settings=self.settings.sweep,
                )
        finally:
            client.close()

    def converge(self, rounds: int = 6) -> None:
        """Run scan, confirm and sweep, mining past the confirmations, until calm."""
        for _ in range(rounds):
            self.scan()
            self.confirm()
            self.sweep()
            self.anvil.mine(self.cfg.confirmations)

    # -- what the ledger says --

    def payment(self, pid: str) -> Payment:
        with self.session() as s:
            p = s.get(Payment, pid)
            assert p is not None
            return p

    def events(self, pid: str) -> list[tuple[str, dict[str, Any]]]:
        with self.session() as s:
            rows = s.execute(
                sa.select(WebhookEvent.type, WebhookEvent.body)
                .where(WebhookEvent.payment_id == pid)
                .order_by(WebhookEvent.created_at, WebhookEvent.id)
            ).all()
        return [(t, json.loads(b)) for t, b in rows]

    def event_types(self, pid: str) -> list[str]:
        return [t for t, _ in self.events(pid)]

    def sweeps(self, kind: str | None = None) -> list[SweepTransaction]:
        with self.session() as s:
            stmt = sa.select(SweepTransaction).order_by(SweepTransaction.id)
            if kind is not None:
                stmt = stmt.where(SweepTransaction.kind == kind)
            return list(s.scalars(stmt))

    def transfers(self, pid: str) -> list[Transfer]:
        with self.session() as s:
            stmt = sa.select(Transfer).where(Transfer.payment_id == pid)
            return list(s.scalars(stmt.order_by(Transfer.block_number)))
