"""A scan/confirm test world on the real anvil node: settings whose chains.yaml points at
the session node and tokens, a SQLite or PostgreSQL database, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli import payments
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.config import ScanSettings, Settings, load_chains
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Payment, Transfer, WebhookEvent
from ctrip_cli.jobs import confirm as confirm_job
from ctrip_cli.jobs import scan as scan_job
from tests.conftest import TEST_MNEMONIC_OWN
from tests.evm import ANVIL_ACCOUNTS, Anvil, mint
from tests.evm_fixtures import TestTokens

PAYER = ANVIL_ACCOUNTS[1]


def chains_yaml(
    anvil_url: str, tokens: TestTokens, *, rpc_urls: list[str] | None = None
) -> str:
    urls = ", ".join(f'"{u}"' for u in (rpc_urls or [anvil_url]))
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: [{urls}]
    confirmations: 3
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{tokens.usdc}", decimals: 6}}
      DAI: {{address: "{tokens.dai}", decimals: 18}}
      USDT: {{address: "{tokens.usdt}", decimals: 6}}
    reorg_depth_blocks: 16
    max_block_range: 500
    block_time_s: 1
"""


@dataclass
class ScanWorld:
    anvil: Anvil
    tokens: TestTokens
    settings: Settings
    engine: sa.Engine
    clock: datetime

    @property
    def cfg(self) -> Any:
        return self.settings.chain("local")

    def session(self) -> Any:
        return db_engine.session_factory(self.engine)()

    def pay(self, asset: str, amount: str, *, expires_in_s: int = 3_600) -> str:
        with self.session() as s, s.begin():
            p = payments.create_payment(
                s,
                self.settings,
                chain="local",
                asset=asset,
                amount=amount,
                now=self.clock,
                expires_in_s=expires_in_s,
            )
        return str(p["id"])

    def scan(
        self, scan_settings: ScanSettings | None = None, **kw: Any
    ) -> scan_job.ScanResult:
        client = EvmChain.open(self.cfg, attempts=2, backoff_s=0.01)
        try:
            with self.session() as s:
                return scan_job.run(
                    s,
                    client,
                    cfg=self.cfg,
                    now=self.clock,
                    settings=scan_settings or self.settings.scan,
                    **kw,
                )
        finally:
            client.close()

    def confirm(self, at: datetime | None = None) -> confirm_job.ConfirmResult:
        client = EvmChain.open(self.cfg)
        try:
            with self.session() as s:
                return confirm_job.run(s, client, cfg=self.cfg, now=at or self.clock)
        finally:
            client.close()

    def payment(self, pid: str) -> Payment:
        with self.session() as s:
            p = s.get(Payment, pid)
            assert p is not None
            return p

    def transfers(self, pid: str) -> list[Transfer]:
        with self.session() as s:
            stmt = sa.select(Transfer).where(Transfer.payment_id == pid)
            return list(s.scalars(stmt.order_by(Transfer.block_number)))

    def events(self, pid: str) -> list[str]:
        with self.session() as s:
            stmt = sa.select(WebhookEvent.type).where(WebhookEvent.payment_id == pid)
            return list(
                s.scalars(stmt.order_by(WebhookEvent.created_at, WebhookEvent.id))
            )

    def fund_payer(self) -> None:
        for token in (self.tokens.usdc, self.tokens.dai, self.tokens.usdt):
            mint(self.anvil, token, PAYER, 10**30)


def make_world(
    anvil: Anvil,
    tokens: TestTokens,
    db_url: str,
    tmp_path: Path,
    *,
    rpc_urls: list[str] | None = None,
) -> ScanWorld:
    path = tmp_path / "chains.yaml"
    path.write_text(chains_yaml(anvil.url, tokens, rpc_urls=rpc_urls))
    settings = Settings(
        database_url=SecretStr(db_url),
        chains_file=path,
        chains=load_chains(path, {}),
        mnemonic=SecretStr(TEST_MNEMONIC_OWN),
    )
    clock = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return ScanWorld(anvil, tokens, settings, db_engine.make_engine(db_url), clock)
