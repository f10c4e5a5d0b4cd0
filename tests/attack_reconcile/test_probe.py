from __future__ import annotations

from tests.attack_reconcile.conftest import ETH, AttackWorld
from tests.evm import ANVIL_ACCOUNTS, native_balance, send_native


def test_probe_tip_reorg_of_mined_sweep(aw: AttackWorld) -> None:
    p = aw.create("ETH", "1")
    send_native(aw.anvil, ANVIL_ACCOUNTS[1], p["address"], ETH)
    print(aw.round())
    aw.anvil.mine(3)
    print(aw.ok("scan"), aw.ok("confirm"))
    print(aw.payment_row(p["id"]))
    s1 = aw.ok("sweep")
    print("sweep1", s1)
    s2 = aw.ok("sweep")
    print("sweep2", s2)
    print(aw.query("SELECT kind, state, block_number, amount, fee_paid FROM sweep_transactions"))
    print("bal", native_balance(aw.anvil, p["address"]), aw.anvil.block_number())
    aw.anvil.reorg(1)
    print("bal after reorg", native_balance(aw.anvil, p["address"]))
    r = aw.round()
    print("reconcile", r)
    print(aw.payment_row(p["id"]), aw.differences())
    print(aw.ok("sweep"))
    aw.anvil.mine(3)
    print(aw.ok("sweep"))
    r = aw.round()
    print("reconcile2", r)
    print(aw.payment_row(p["id"]), aw.differences())
    print(aw.query("SELECT kind, state, block_number, amount, fee_paid FROM sweep_transactions"))
    print(aw.query("SELECT type FROM webhook_events ORDER BY id"))
    print(aw.ok("status"))
