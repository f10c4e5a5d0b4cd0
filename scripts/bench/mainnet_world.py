"""A mainnet-shaped chain on anvil: blocks of 150 transactions, most of them with logs.

Deploys a DEX-like contract whose `swap` emits six logs as a router swap through a
Uniswap-V2-style pair does (WETH Deposit, two Transfers, Sync, Swap, Approval), the
repository's test tokens (USDC-like 6 decimals, DAI-like 18, USDT-like no-return 6),
and fills `blocks` blocks of `txs_per_block` transactions: ~60 % swaps, ~25 % token
transfers, the rest plain native transfers, to random addresses. Mining is off while
a block's transactions are sent (one batch of eth_sendTransaction from anvil's
unlocked accounts), then `evm_mine` seals it.

`payments` sprinkles real payments (native or token, to given addresses, in given
blocks) among the noise, for a scan to find.

    python scripts/bench/mainnet_world.py [--blocks 300] [--txs 150]

prints the receipts and full-transaction bytes per block it measured.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eth_utils.crypto import keccak  # noqa: E402

from tests.evm import ANVIL_ACCOUNTS, Anvil, deploy_token, mint  # noqa: E402

DECIMALS = {"ETH": 18, "USDC": 6, "DAI": 18, "USDT": 6}
SWAP_SHARE, TOKEN_SHARE = 0.60, 0.25  # the rest: native transfers
SENDERS = ANVIL_ACCOUNTS[1:]  # account 0 deploys
GAS = {"swap": 120_000, "token": 90_000, "native": 21_000}


def _topic(signature: str) -> bytes:
    return keccak(text=signature)


# -- the DEX-like contract, assembled (no compiler needed) --

_OP = {
    "STOP": 0x00,
    "ADDRESS": 0x30,
    "CALLER": 0x33,
    "CALLDATALOAD": 0x35,
    "CALLDATACOPY": 0x37,
    "CODECOPY": 0x39,
    "DUP1": 0x80,
    "LOG1": 0xA1,
    "LOG2": 0xA2,
    "LOG3": 0xA3,
    "RETURN": 0xF3,
}


def _push(value: int | bytes, width: int = 1) -> bytes:
    data = value if isinstance(value, bytes) else value.to_bytes(width, "big")
    return bytes([0x5F + len(data)]) + data


def _word(i: int) -> bytes:
    """Calldata word i on the stack."""
    return _push(32 * i) + bytes([_OP["CALLDATALOAD"]])


def _log(topics: list[bytes], offset: int, size: int) -> bytes:
    """LOGn(mem[offset:offset+size], *topics); `topics` are stack-pushing snippets."""
    code = b"".join(reversed(topics)) + _push(size) + _push(offset)
    return code + bytes([_OP[f"LOG{len(topics)}"]])


def swap_runtime(logs: int = 6) -> bytes:
    """Runtime code: any call with calldata (trader, amountIn, amountOut, pool) emits
    the first `logs` (4-6) of a router swap's logs. Memory holds the four words."""
    if not 4 <= logs <= 6:
        raise ValueError(f"logs={logs}: a swap emits 4 to 6 logs")
    trader, pool = _word(0), _word(3)
    this, caller = bytes([_OP["ADDRESS"]]), bytes([_OP["CALLER"]])

    def const(sig: str) -> bytes:
        return _push(_topic(sig))

    transfer = "Transfer(address,address,uint256)"
    events = [
        _log([const("Transfer(address,address,uint256)"), trader, pool], 32, 32),
        _log([const(transfer), pool, trader], 64, 32),
        _log([const("Sync(uint112,uint112)")], 32, 64),
        _log(
            [
                const("Swap(address,uint256,uint256,uint256,uint256,address)"),
                caller,
                trader,
            ],
            0,
            128,
        ),
        _log([const("Deposit(address,uint256)"), trader], 32, 32),
        _log([const("Approval(address,address,uint256)"), trader, this], 32, 32),
    ][:logs]
    copy = _push(0x80) + _push(0) + _push(0) + bytes([_OP["CALLDATACOPY"]])
    return copy + b"".join(events) + bytes([_OP["STOP"]])


def initcode(runtime: bytes) -> bytes:
    """Constructor that returns `runtime` (CODECOPY + RETURN, 12 bytes)."""
    head_len = 12
    head = (
        _push(len(runtime), 2)
        + bytes([_OP["DUP1"]])
        + _push(head_len)
        + _push(0)
        + bytes([_OP["CODECOPY"]])
        + _push(0)
        + bytes([_OP["RETURN"]])
    )
    assert len(head) == head_len
    return head + runtime


# -- the world --


@dataclass(frozen=True)
class Payment:
    """A real payment to put in block `block` (0-based within the filled range)."""

    block: int
    to: str
    asset: str  # "ETH" or a token symbol of World.tokens
    amount: int  # base units


@dataclass
class World:
    url: str
    first: int
    last: int
    dex: str
    tokens: dict[str, str]  # symbol -> address
    txs_per_block: int
    payments: list[dict[str, Any]] = field(default_factory=list)  # with block, tx hash
    nonces: dict[str, int] = field(default_factory=dict)  # next nonce per sender
    build_s: float = 0.0

    @property
    def blocks(self) -> int:
        return self.last - self.first + 1


def _addr_word(addr: str) -> str:
    return addr[2:].lower().rjust(64, "0")


def _token_tx(sender: str, token: str, to: str, amount: int) -> dict[str, Any]:
    data = "0xa9059cbb" + _addr_word(to) + f"{amount:064x}"
    return {"from": sender, "to": token, "data": data, "gas": hex(GAS["token"])}


def _payment_tx(world: World, sender: str, p: Payment) -> dict[str, Any]:
    if p.asset == "ETH":
        return {
            "from": sender,
            "to": p.to,
            "value": hex(p.amount),
            "gas": hex(GAS["native"]),
        }
    return _token_tx(sender, world.tokens[p.asset], p.to, p.amount)


def _noise_tx(rng: random.Random, world: World, sender: str) -> dict[str, Any]:
    roll = rng.random()
    to = "0x" + rng.randbytes(20).hex()
    if roll < SWAP_SHARE:
        data = (
            "0x"
            + _addr_word(sender)
            + "".join(f"{rng.randrange(1, 10**24):064x}" for _ in range(2))
            + _addr_word(to)
        )
        return {"from": sender, "to": world.dex, "data": data, "gas": hex(GAS["swap"])}
    if roll < SWAP_SHARE + TOKEN_SHARE:
        symbol = rng.choice(sorted(world.tokens))
        return _token_tx(sender, world.tokens[symbol], to, rng.randrange(1, 10**9))
    return {
        "from": sender,
        "to": to,
        "value": hex(rng.randrange(1, 10**15)),
        "gas": hex(GAS["native"]),
    }


def deploy(anvil: Anvil, swap_logs: int = 6) -> tuple[str, dict[str, str]]:
    """The DEX-like contract and the three test tokens, minted to every sender."""
    receipt = anvil.rpc(
        "eth_sendTransactionSync"
        if anvil.rpc("anvil_getAutomine")
        else "eth_sendTransaction",
        {
            "from": ANVIL_ACCOUNTS[0],
            "data": "0x" + initcode(swap_runtime(swap_logs)).hex(),
        },
    )
    if isinstance(receipt, str):  # automine off: mine it
        anvil.mine(1)
        receipt = anvil.rpc("eth_getTransactionReceipt", receipt)
    dex = str(receipt["contractAddress"])
    tokens = {
        "USDC": deploy_token(
            anvil, "standard", decimals=6, symbol="USDC", name="USD Coin"
        ),
        "DAI": deploy_token(anvil, "standard", decimals=18, symbol="DAI", name="Dai"),
        "USDT": deploy_token(
            anvil, "noreturn", decimals=6, symbol="USDT", name="Tether"
        ),
    }
    for token in tokens.values():
        for sender in SENDERS:
            mint(anvil, token, sender, 10**40)
    return dex, tokens


def build(
    anvil: Anvil,
    *,
    blocks: int = 300,
    txs_per_block: int = 150,
    payments: list[Payment] | tuple[Payment, ...] = (),
    swap_logs: int = 6,
    seed: int = 0,
) -> World:
    """Deploy, then fill `blocks` blocks of `txs_per_block` transactions each."""
    began = time.perf_counter()
    dex, tokens = deploy(anvil, swap_logs)
    world = World(anvil.url, 0, -1, dex, tokens, txs_per_block)
    by_block: dict[int, list[Payment]] = {}
    for p in payments:
        if not 0 <= p.block < blocks:
            raise ValueError(f"payment block {p.block} outside 0..{blocks - 1}")
        by_block.setdefault(p.block, []).append(p)
    rng = random.Random(seed)
    automine = bool(anvil.rpc("anvil_getAutomine"))
    anvil.set_automine(False)
    http = httpx.Client(timeout=120)
    try:
        world.nonces = {
            a: int(anvil.rpc("eth_getTransactionCount", a, "pending"), 16)
            for a in SENDERS
        }
        world.first = anvil.block_number() + 1
        for b in range(blocks):
            _fill_block(http, anvil.url, world, rng, by_block.get(b, []), b)
        world.last = anvil.block_number()
    finally:
        http.close()
        anvil.set_automine(automine)
    _locate_payments(anvil, world)
    world.build_s = time.perf_counter() - began
    return world


def _fill_block(
    http: httpx.Client,
    url: str,
    world: World,
    rng: random.Random,
    payments: list[Payment],
    index: int,
) -> None:
    txs = [
        _payment_tx(world, SENDERS[i % len(SENDERS)], p) for i, p in enumerate(payments)
    ]
    while len(txs) < world.txs_per_block:
        txs.append(_noise_tx(rng, world, SENDERS[len(txs) % len(SENDERS)]))
    for tx in txs:  # a batch is handled concurrently: nonces must be explicit
        tx["nonce"] = hex(world.nonces[tx["from"]])
        world.nonces[tx["from"]] += 1
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction", "params": [tx]}
        for i, tx in enumerate(txs)
    ]
    replies = http.post(url, json=body).json()
    failed = [r for r in replies if "error" in r]
    if failed:
        raise RuntimeError(f"block {index}: eth_sendTransaction failed: {failed[0]}")
    for p, reply in zip(payments, replies, strict=False):
        world.payments.append({**p.__dict__, "tx": reply["result"]})
    mined = http.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}
    )
    if "error" in mined.json():
        raise RuntimeError(f"block {index}: evm_mine failed: {mined.json()}")


def _locate_payments(anvil: Anvil, world: World) -> None:
    """Each payment's mined block number, and that it succeeded."""
    for p in world.payments:
        receipt = anvil.rpc("eth_getTransactionReceipt", p["tx"])
        if receipt is None or int(receipt["status"], 16) != 1:
            raise RuntimeError(f"payment {p} was not mined successfully: {receipt}")
        p["block_number"] = int(receipt["blockNumber"], 16)


def measure(url: str, first: int, last: int, sample: int = 20) -> dict[str, Any]:
    """Bytes per block of eth_getBlockReceipts and eth_getBlockByNumber(full), JSON as
    the node sends it, over `sample` blocks spread across the range."""
    step = max(1, (last - first + 1) // sample)
    numbers = list(range(first, last + 1, step))[:sample]
    out: dict[str, Any] = {"sampled_blocks": len(numbers)}
    with httpx.Client(timeout=120) as http:
        for key, method, extra in (
            ("receipts", "eth_getBlockReceipts", []),
            ("full_blocks", "eth_getBlockByNumber", [True]),
            ("headers", "eth_getBlockByNumber", [False]),
        ):
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": method,
                    "params": [hex(n), *extra],
                }
                for n in numbers
            ]
            raw = http.post(url, json=body).content
            out[f"{key}_bytes_per_block"] = round(len(raw) / len(numbers))
        receipts = http.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_getBlockReceipts",
                "params": [hex(numbers[0])],
            },
        ).json()["result"]
    out["txs_per_block"] = len(receipts)
    out["logs_per_block"] = sum(len(r["logs"]) for r in receipts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--txs", type=int, default=150)
    parser.add_argument("--swap-logs", type=int, default=6)
    args = parser.parse_args()
    with Anvil(extra_args=["--gas-limit", "100000000"]) as anvil:
        world = build(
            anvil, blocks=args.blocks, txs_per_block=args.txs, swap_logs=args.swap_logs
        )
        report = {
            "blocks": world.blocks,
            "txs_per_block": world.txs_per_block,
            "build_s": round(world.build_s, 1),
            **measure(anvil.url, world.first, world.last),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
