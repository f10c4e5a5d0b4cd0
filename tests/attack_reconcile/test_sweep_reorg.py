"""A sweep whose receipt the sweep pass recorded (`mined`, not yet deep) is removed by
a one-block reorg at the tip, before the next sweep pass. `reconcile` trusts the
recorded receipt's block number: the coin back on the deposit address is "more than
the ledger explains" and is credited to the payment a second time
(`payment.overpaid`, amount_received doubled). Once the sweep is rebroadcast and
mined, the credit is never explained away: an open shortfall of the whole amount,
`status --check` unhealthy, though every wei reached the treasury once."""

from __future__ import annotations

import pytest

from tests.attack_reconcile.conftest import ETH, AttackWorld
from tests.evm import native_balance
from tests.hostile.test_rpc_attacks import TREASURY

pytestmark = [pytest.mark.e2e, pytest.mark.evm]


def test_tip_reorg_of_a_recorded_sweep_is_not_credited_again(aw: AttackWorld) -> None:
    p = aw.confirmed_native("1", ETH)
    assert aw.payment_row(p["id"])[0] == "confirmed"
    treasury_before = native_balance(aw.anvil, TREASURY)
    aw.ok("sweep")  # signs and broadcasts; anvil mines it at the tip
    aw.ok("sweep")  # records the receipt: `mined`, not deep yet
    assert aw.query("SELECT state FROM sweep_transactions") == [("mined",)]
    aw.anvil.reorg(1)  # the sweep's block is replaced; its transaction dropped
    assert native_balance(aw.anvil, p["address"]) == ETH

    found = aw.round()  # reconcile runs before the next sweep pass
    credited = found["inflows_credited"]
    for _ in range(3):  # the sweep pass notices, rebroadcasts, records, confirms
        aw.ok("sweep")
        aw.anvil.mine(3)
    aw.ok("sweep")
    aw.round()
    swept = native_balance(aw.anvil, TREASURY) - treasury_before

    status, received, _ = aw.payment_row(p["id"])
    events = [e for (e,) in aw.query("SELECT type FROM webhook_events")]
    assert credited == 0, "the swept coin was credited to the payment again"
    assert received == ETH, received
    assert "payment.overpaid" not in events, events
    assert aw.open_shortfalls() == [], aw.open_shortfalls()
    assert status == "settled"
    assert swept > 0
    check = aw.ctrip("status", "--check")
    assert check.rc == 0, check.out
