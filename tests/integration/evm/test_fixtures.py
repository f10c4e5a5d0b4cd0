"""Checks that the real-chain fixtures work: anvil lifecycle, token kinds, logs, failed
receipts, snapshots and anvil_reorg.
"""

from __future__ import annotations

import pytest

from tests.evm import (
    ANVIL_ACCOUNTS,
    TRANSFER_TOPIC,
    Anvil,
    balance_of,
    deploy_token,
    find_anvil,
    get_receipt,
    mint,
    native_balance,
    send_native,
    send_reverting_native,
    token_transfer,
)
from tests.evm_fixtures import TestTokens

pytestmark = pytest.mark.evm

ALICE, BOB, CAROL = ANVIL_ACCOUNTS[1], ANVIL_ACCOUNTS[2], ANVIL_ACCOUNTS[3]


def _topic_addr(addr: str) -> str:
    return "0x" + addr[2:].lower().rjust(64, "0")


def _call_uint(anvil: Anvil, token: str, selector: str) -> int:
    return int(anvil.rpc("eth_call", {"to": token, "data": selector}, "latest"), 16)


def test_find_anvil_and_chain_id(anvil: Anvil) -> None:
    assert find_anvil()
    assert int(anvil.rpc("eth_chainId"), 16) == 31337
    assert [a.lower() for a in anvil.rpc("eth_accounts")] == [
        a.lower() for a in ANVIL_ACCOUNTS
    ]


@pytest.mark.parametrize(
    ("kind", "decimals"), [("standard", 18), ("standard", 6), ("noreturn", 6)]
)
def test_token_mint_transfer_and_logs(
    anvil_snapshot: Anvil, kind: str, decimals: int
) -> None:
    anvil = anvil_snapshot
    token = deploy_token(anvil, kind, decimals=decimals, symbol="TT")  # type: ignore[arg-type]
    assert _call_uint(anvil, token, "0x313ce567") == decimals  # decimals()

    mint(anvil, token, ALICE, 1_000 * 10**decimals)
    assert balance_of(anvil, token, ALICE) == 1_000 * 10**decimals
    assert _call_uint(anvil, token, "0x18160ddd") == 1_000 * 10**decimals  # totalSupply

    amount = 12 * 10**decimals + 345
    tx = token_transfer(anvil, token, ALICE, BOB, amount)
    receipt = get_receipt(anvil, tx)
    assert receipt is not None
    assert receipt["status"] == "0x1"
    # standard returns true (32 bytes), noreturn returns nothing; both succeed.
    (log,) = receipt["logs"]
    assert log["address"].lower() == token.lower()
    assert log["topics"] == [TRANSFER_TOPIC, _topic_addr(ALICE), _topic_addr(BOB)]
    assert int(log["data"], 16) == amount
    assert balance_of(anvil, token, BOB) == amount
    assert balance_of(anvil, token, ALICE) == 1_000 * 10**decimals - amount

    # Insufficient balance: anvil mines it anyway, with status 0 and no logs.
    bad = token_transfer(anvil, token, CAROL, BOB, 1, gas=100_000)
    bad_receipt = get_receipt(anvil, bad)
    assert bad_receipt is not None
    assert bad_receipt["status"] == "0x0"
    assert bad_receipt["logs"] == []


def test_noreturn_transfer_returns_no_data(anvil: Anvil, tokens: TestTokens) -> None:
    data = "0xa9059cbb" + _topic_addr(BOB)[2:] + "0" * 64  # transfer(BOB, 0)
    ret_std = anvil.rpc("eth_call", {"from": ALICE, "to": tokens.usdc, "data": data})
    ret_nr = anvil.rpc("eth_call", {"from": ALICE, "to": tokens.usdt, "data": data})
    assert int(ret_std, 16) == 1
    assert ret_nr == "0x"


def test_session_tokens(anvil: Anvil, tokens: TestTokens) -> None:
    assert _call_uint(anvil, tokens.usdc, "0x313ce567") == 6
    assert _call_uint(anvil, tokens.dai, "0x313ce567") == 18
    assert _call_uint(anvil, tokens.usdt, "0x313ce567") == 6
    assert len({tokens.usdc, tokens.dai, tokens.usdt, tokens.reverter}) == 4


def test_native_send_and_reverting_send(
    anvil_snapshot: Anvil, tokens: TestTokens
) -> None:
    anvil = anvil_snapshot
    before = native_balance(anvil, CAROL)
    ok = send_native(anvil, ALICE, CAROL, 10**18)
    ok_receipt = get_receipt(anvil, ok)
    assert ok_receipt is not None
    assert ok_receipt["status"] == "0x1"
    assert native_balance(anvil, CAROL) == before + 10**18

    bad = send_reverting_native(anvil, ALICE, 10**18, reverter=tokens.reverter)
    receipt = get_receipt(anvil, bad)
    assert receipt is not None
    assert receipt["status"] == "0x0"
    assert native_balance(anvil, tokens.reverter) == 0
    # eth_getBlockReceipts works on anvil 1.7.1
    block_receipts = anvil.rpc("eth_getBlockReceipts", receipt["blockNumber"])
    assert [r["transactionHash"] for r in block_receipts] == [bad]


def test_snapshot_revert(anvil_snapshot: Anvil) -> None:
    anvil = anvil_snapshot
    start = anvil.block_number()
    snap = anvil.snapshot()
    anvil.mine(5)
    assert anvil.block_number() == start + 5
    assert anvil.revert(snap)
    assert anvil.block_number() == start


def test_reorg_replaces_last_blocks(anvil_snapshot: Anvil) -> None:
    anvil = anvil_snapshot
    anvil.mine(3)
    dropped = send_native(anvil, ALICE, CAROL, 777)
    head = anvil.block_number()
    old = {h: anvil.get_block(h)["hash"] for h in range(head - 3, head + 1)}  # type: ignore[index]
    carol_before = native_balance(anvil, CAROL, head - 1)

    anvil.reorg(2, [({"from": ALICE, "to": BOB, "value": hex(5)}, 0)])

    assert anvil.block_number() == head
    new = {h: anvil.get_block(h)["hash"] for h in range(head - 3, head + 1)}  # type: ignore[index]
    assert new[head - 3] == old[head - 3]
    assert new[head - 2] == old[head - 2]
    assert new[head - 1] != old[head - 1]
    assert new[head] != old[head]
    # The replaced head block's tx is gone; the injected one is in the first new block.
    assert get_receipt(anvil, dropped) is None
    assert native_balance(anvil, CAROL) == carol_before
    (injected,) = anvil.get_block(head - 1)["transactions"]  # type: ignore[index]
    injected_receipt = get_receipt(anvil, injected)
    assert injected_receipt is not None
    assert injected_receipt["status"] == "0x1"


def test_no_automine_and_mine(anvil_snapshot: Anvil) -> None:
    anvil = anvil_snapshot
    anvil.set_automine(False)
    head = anvil.block_number()
    tx = send_native(anvil, ALICE, BOB, 1)
    assert get_receipt(anvil, tx) is None
    anvil.mine(1)
    receipt = get_receipt(anvil, tx)
    assert receipt is not None
    assert int(receipt["blockNumber"], 16) == head + 1


def test_standalone_node_lifecycle() -> None:
    with Anvil(chain_id=8453, automine=False) as node:
        assert int(node.rpc("eth_chainId"), 16) == 8453
        assert node.rpc("anvil_getAutomine") is False
        node.set_balance(CAROL, 123)
        assert native_balance(node, CAROL) == 123
        proc = node.proc
    assert proc.poll() is not None
