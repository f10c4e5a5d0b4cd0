"""Test doubles shipped with the package: `FakeChain`, an in-memory ChainClient with
blocks, transfers, forks, balances, a mempool and receipts, for fast tests of job logic
(never the only test of a chain path: those run on anvil)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from ctrip_cli.chain import opstack, tx
from ctrip_cli.chain.client import (
    BalanceQuery,
    Balances,
    BlockHeader,
    EndpointProbe,
    Fees,
    Log,
    NativeTransfer,
    Receipt,
    SendOutcome,
    TokenTransfer,
    Transfers,
    Watched,
)
from ctrip_cli.errors import RpcRejectedError

ZERO_HASH = "0x" + "00" * 32
PAYER = "0x" + "ab" * 20


@dataclass
class _Block:
    header: BlockHeader
    tokens: list[TokenTransfer] = field(default_factory=list)
    native: list[NativeTransfer] = field(default_factory=list)


class FakeChain:
    """A chain in memory: `produce_blocks`, `add_transfer`, `produce_fork`."""

    def __init__(
        self, chain_id: int = 31337, *, blocks: int = 1, start_time: int = 1_700_000_000
    ) -> None:
        self.id = chain_id
        self.start_time = start_time  # block n's timestamp is start_time + n
        self.round_trips = 0
        self.lag_blocks = 0  # the node reports a head this far behind its tip
        self.log_queries: list[Collection[str] | None] = []
        self._salt = itertools.count()
        self._tx = itertools.count(1)
        self.blocks: list[_Block] = []
        # Accounts: native balances, token balances, mined nonces (lowercase keys).
        self.balances: dict[str, int] = {}
        self.token_balances: dict[tuple[str, str], int] = {}
        self.nonces: dict[str, int] = {}
        # Every balance change with its block, so balances read at a block are
        # the latest ones less what changed after it.
        self.balance_changes: list[tuple[int, str | tuple[str, str], int]] = []
        self.multicall = True  # balances_at reports Multicall3, else direct reads
        self.base_fee_wei = 1_000_000_000
        self.tip_wei = 1_000_000_000
        self.token_gas = 50_000
        # OP Stack: the L1Block fee parameters; every transaction then pays an L1 data
        # fee on top of gas × price (receipts do not report it, as on anvil).
        self.l1_params = opstack.L1FeeParams()
        self.auto_mine = False  # mine every accepted transaction at once
        # False: the node answers no trace method, so forwarded coin stays unseen.
        self.traces = True
        self.mempool: dict[str, tuple[str, tx.Decoded]] = {}  # hash -> (raw, decoded)
        self.mined: dict[str, Receipt] = {}
        self.sent: list[str] = []  # raw transactions in the order they arrived
        self.produce_blocks(blocks)

    # -- building the chain --

    def _hash(self, *parts: object) -> str:
        text = ":".join(str(p) for p in (*parts, next(self._salt)))
        return "0x" + hashlib.sha256(text.encode()).hexdigest()

    def produce_blocks(self, n: int = 1) -> list[BlockHeader]:
        """Append `n` empty blocks; returns their headers."""
        out = []
        for _ in range(n):
            number = len(self.blocks)
            parent = self.blocks[-1].header.hash if self.blocks else ZERO_HASH
            stamp = self.start_time + number
            header = BlockHeader(number, self._hash(number), parent, stamp)
            self.blocks.append(_Block(header))
            out.append(header)
        return out

    def add_transfer(
        self,
        to: str,
        amount: int,
        *,
        token: str | None = None,
        block: int | None = None,
    ) -> TokenTransfer | NativeTransfer:
        """Record a transfer in `block` (default: a new block) and return it."""
        if token is None:
            return self._add_native(to, amount, block, None, None)
        if block is None:
            block = self.produce_blocks(1)[0].number
        b = self.blocks[block]
        tx_hash = self._hash("tx", next(self._tx))
        self._credit((token.lower(), to.lower()), amount, block)
        log_index = len(b.tokens)
        t = TokenTransfer(
            tx_hash, log_index, block, b.header.hash, token, PAYER, to, amount
        )
        b.tokens.append(t)
        return t

    def add_internal_transfer(
        self,
        to: str,
        amount: int,
        *,
        block: int | None = None,
        tx_hash: str | None = None,
        position: int = 1,
    ) -> NativeTransfer:
        """Native coin forwarded to `to` by a contract, at trace `position` (>= 1) of
        transaction `tx_hash` (default: a new one) in `block` (default: a new block)."""
        if position < 1:
            raise ValueError("position 0 is the top-level call, not an internal one")
        return self._add_native(to, amount, block, tx_hash, position)

    def _add_native(
        self,
        to: str,
        amount: int,
        block: int | None,
        tx_hash: str | None,
        position: int | None,
    ) -> NativeTransfer:
        if block is None:
            block = self.produce_blocks(1)[0].number
        b = self.blocks[block]
        tx_hash = tx_hash or self._hash("tx", next(self._tx))
        n = NativeTransfer(tx_hash, block, b.header.hash, PAYER, to, amount, position)
        b.native.append(n)
        self._credit(to.lower(), amount, block)
        return n

    def add_silent(
        self,
        to: str,
        amount: int,
        *,
        token: str | None = None,
        block: int | None = None,
    ) -> int:
        """Change a balance by `amount` (negative: money out) in `block` (default: a
        new one) with no transfer any read shows: coin forwarded where no traces are
        read, a token moving without a Transfer log, a key used outside ctrip."""
        if block is None:
            block = self.produce_blocks(1)[0].number
        key: str | tuple[str, str] = (
            to.lower() if token is None else (token.lower(), to.lower())
        )
        self._credit(key, amount, block)
        return block

    def _credit(self, key: str | tuple[str, str], amount: int, block: int) -> None:
        if isinstance(key, tuple):
            self.token_balances[key] = self.token_balances.get(key, 0) + amount
        else:
            self.balances[key] = self.balances.get(key, 0) + amount
        self.balance_changes.append((block, key, amount))

    def mine_again(self, t: NativeTransfer, block: int) -> NativeTransfer:
        """The same native transaction (same hash) in `block` of the current chain: a
        transaction orphaned by a reorg and mined again elsewhere."""
        return self._add_native(
            t.to_address, t.amount, block, t.tx_hash, t.trace_position
        )

    def produce_fork(self, depth: int, *, keep_transfers: bool = False) -> None:
        """Replace the last `depth` blocks with new ones (transfers dropped, or moved)."""
        base = len(self.blocks) - depth
        orphaned, self.blocks = self.blocks[base:], self.blocks[:base]
        self.produce_blocks(depth)
        if keep_transfers:
            for old in orphaned:
                for t in old.tokens:
                    self.add_transfer(
                        t.to_address,
                        t.amount,
                        token=t.token_address,
                        block=old.header.number,
                    )
                for n in old.native:
                    if n.trace_position is None:
                        self.add_transfer(
                            n.to_address, n.amount, block=old.header.number
                        )
                    else:
                        self.add_internal_transfer(
                            n.to_address,
                            n.amount,
                            block=old.header.number,
                            position=n.trace_position,
                        )

    # -- ChainClient: reads for scan and confirm --

    def chain_id(self) -> int:
        return self.id

    def check_chain_id(self) -> None:
        self.round_trips += 1

    def checked_head(self) -> int:
        return self.head()

    def head(self) -> int:
        self.round_trips += 1
        return len(self.blocks) - 1 - self.lag_blocks

    def block_header(self, number: int) -> BlockHeader:
        return self.block_headers([number])[0]

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        self.round_trips += 1
        if any(n >= len(self.blocks) for n in numbers):
            raise RpcRejectedError("block not found; the node is lagging")
        return [self.blocks[n].header for n in numbers]

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]:
        self.round_trips += 1
        return {
            n: (self.blocks[n].header.hash if n < len(self.blocks) else None)
            for n in numbers
        }

    def transfers(self, from_block: int, to_block: int, watched: Watched) -> Transfers:
        tokens = (
            self.token_transfers(
                from_block, to_block, watched.tokens, watched.token_recipients
            )
            if watched.wants_tokens
            else []
        )
        native = (
            self.native_transfers(from_block, to_block, watched.native)
            if watched.native
            else []
        )
        return Transfers(tokens, native, "fake")

    def receipt_transfers(self, number: int, watched: Watched) -> Transfers | None:
        if number >= len(self.blocks):
            return None
        return Transfers(
            self.token_transfers(
                number, number, watched.tokens, watched.token_recipients
            )
        )

    def token_transfers(
        self,
        from_block: int,
        to_block: int,
        tokens: Sequence[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]:
        self.round_trips += 1
        self.log_queries.append(recipients)
        wanted = None if recipients is None else {r.lower() for r in recipients}
        lowered = {t.lower() for t in tokens}
        return [
            t
            for b in self.blocks[from_block : to_block + 1]
            for t in b.tokens
            if t.token_address.lower() in lowered
            and (wanted is None or t.to_address.lower() in wanted)
            and t.amount > 0
        ]

    def native_transfers(
        self, from_block: int, to_block: int, recipients: Collection[str]
    ) -> list[NativeTransfer]:
        self.round_trips += 1
        wanted = {r.lower() for r in recipients}
        return [
            n
            for b in self.blocks[from_block : to_block + 1]
            for n in b.native
            if n.to_address.lower() in wanted
            and (self.traces or n.trace_position is None)
        ]

    # -- ChainClient: accounts and transactions --

    def balance(self, address: str, block: int | str = "latest") -> int:
        self.round_trips += 1
        return self.balances.get(address.lower(), 0)

    def token_balance(
        self, token: str, address: str, block: int | str = "latest"
    ) -> int:
        self.round_trips += 1
        return self.token_balances.get((token.lower(), address.lower()), 0)

    def balances_at(self, queries: Sequence[BalanceQuery], block: int) -> Balances:
        self.round_trips += 1
        later: dict[str | tuple[str, str], int] = {}
        for n, changed, amount in self.balance_changes:
            if n > block:
                later[changed] = later.get(changed, 0) + amount
        values: list[int | None] = []
        for q in queries:
            if q.token is None:
                key: str | tuple[str, str] = q.address.lower()
                now = self.balances.get(q.address.lower(), 0)
            else:
                key = (q.token.lower(), q.address.lower())
                now = self.token_balances.get(key, 0)
            values.append(now - later.get(key, 0))
        return Balances(values, "multicall3" if self.multicall else "direct")

    def nonce(self, address: str, block: str = "pending") -> int:
        self.round_trips += 1
        mined = self.nonces.get(address.lower(), 0)
        if block != "pending":
            return mined
        pending = [d for _, d in self.mempool.values() if _sender(d) == address.lower()]
        return mined + len(pending)

    def fees(self, *, eip1559: bool) -> Fees:
        if not eip1559:
            return self.gas_price()
        return Fees(2 * self.base_fee_wei + self.tip_wei, self.tip_wei)

    def gas_price(self) -> Fees:
        return Fees(self.base_fee_wei + self.tip_wei)

    def l1_fee_params(self, block: int | str = "latest") -> opstack.L1FeeParams:
        self.round_trips += 1
        return self.l1_params

    def _l1_fee(self, raw: str) -> int:
        return opstack.l1_fee(self.l1_params, bytes.fromhex(raw.removeprefix("0x")))

    def estimate_gas(
        self, *, sender: str, to: str, value: int = 0, data: str = "0x"
    ) -> int:
        self.round_trips += 1
        return 21_000 if data in ("", "0x") else self.token_gas

    def send_raw(self, raw: str) -> SendOutcome:
        """Accept a signed transaction into the mempool, as a node's pool would."""
        self.round_trips += 1
        self.sent.append(raw)
        d = tx.decode(raw)
        sender = d.sender.lower()
        if d.tx_hash in self.mempool or d.tx_hash in self.mined:
            return SendOutcome.KNOWN
        if d.nonce < self.nonces.get(sender, 0):
            return SendOutcome.NONCE_USED
        for h, (_, other) in list(self.mempool.items()):
            if _sender(other) == sender and other.nonce == d.nonce:
                if d.fees.max_fee_per_gas <= other.fees.max_fee_per_gas:
                    return SendOutcome.UNDERPRICED
                del self.mempool[h]
        cost = d.value + d.gas_limit * d.fees.max_fee_per_gas + self._l1_fee(raw)
        if self.balances.get(sender, 0) < cost:
            return SendOutcome.NO_FUNDS
        self.mempool[d.tx_hash] = (raw, d)
        if self.auto_mine:
            self.mine()
        return SendOutcome.SENT

    def mine(self) -> BlockHeader:
        """A new block holding the mempool's transactions, in nonce order."""
        header = self.produce_blocks(1)[0]
        queued = sorted(self.mempool.values(), key=lambda p: p[1].nonce)
        self.mempool.clear()
        for raw, d in queued:
            self._apply(d, header, self._l1_fee(raw))
        return header

    def _apply(self, d: tx.Decoded, header: BlockHeader, l1_fee: int = 0) -> None:
        sender = d.sender.lower()
        if d.nonce != self.nonces.get(sender, 0):
            return  # a gap or a replaced nonce: never mined
        gas = 21_000 if d.data in ("", "0x") else self.token_gas
        price = (
            d.fees.max_fee_per_gas
            if d.fees.legacy
            else min(
                d.fees.max_fee_per_gas,
                self.base_fee_wei + (d.fees.max_priority_fee_per_gas or 0),
            )
        )
        self.nonces[sender] = d.nonce + 1
        self._credit(sender, -(gas * price + l1_fee + d.value), header.number)
        to = d.to.lower()
        self._credit(to, d.value, header.number)
        logs: tuple[Log, ...] = ()
        status = 1
        if d.data.startswith("0xa9059cbb"):
            dest = "0x" + d.data[34:74]
            amount = int(d.data[74:138], 16)
            held = self.token_balances.get((to, sender), 0)
            if held < amount:
                status = 0
            else:
                self._credit((to, sender), -amount, header.number)
                self._credit((to, dest), amount, header.number)
                topics = (tx.TRANSFER_TOPIC, _word(sender), _word(dest))
                logs = (Log(to, topics, f"0x{amount:064x}"),)
        self.mined[d.tx_hash] = Receipt(
            d.tx_hash, status, header.number, gas, price, logs
        )

    def is_known(self, tx_hash: str) -> bool:
        self.round_trips += 1
        return tx_hash in self.mempool or tx_hash in self.mined

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        self.round_trips += 1
        return {h: self.mined.get(h) for h in tx_hashes}

    # -- status --

    def probe(self, *, timeout_s: float) -> list[EndpointProbe]:
        head = self.blocks[-1].header
        return [
            EndpointProbe(
                "#1 fake",
                ok=True,
                head=head.number,
                head_timestamp=head.timestamp,
                latency_ms=0,
            )
        ]

    def close(self) -> None:
        pass


def _sender(d: tx.Decoded) -> str:
    return d.sender.lower()


def _word(address: str) -> str:
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")
