"""The invariants every campaign checks after it lets the system settle, each against
ground truth from the chain (`truth.py`):

  no payment lost        every payment funded on the canonical chain is settled
  nothing counted twice  amount_received == the sum of its canonical transfers
  nothing non-canonical  no recorded transfer (so no confirmed payment) is off-chain
  no double sweep        at most one confirmed sweep per purpose; every outgoing transfer
                         from a deposit address is a recorded sweep; the treasury gained
                         exactly the swept amounts
  every unit accounted   for every deposit address, its on-chain balance equals what the
                         ledger says its payments still owe the treasury (received less
                         swept), within the documented dust; money still owed has a
                         reason an operator can act on (an expired, underpaid payment
                         held for a refund; late money below min_late_sweep_bps); a
                         settled payment had its asked amount swept
  webhooks               every event delivered, each webhook-id names one event, every
                         signature verifies
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from scripts.chaos.truth import ChainTruth, Move
from scripts.chaos.world import TREASURY

if TYPE_CHECKING:
    from scripts.chaos.world import World

FINAL_SWEEP_STATES = ("confirmed", "failed", "replaced")
MIN_LATE_SWEEP_BPS = 100  # SweepSettings' default, which the campaigns run with


def check(world: World, *, settled: bool = True) -> list[str]:
    """Violations (empty when every invariant holds)."""
    truth = ChainTruth(world.anvil.url)
    tokens = [a.token for a in world.assets.values() if a.token]
    moves = truth.token_moves(tokens) + truth.native_moves()
    problems: list[str] = []
    problems += _transfers(world, moves)
    problems += _payments(world, moves, settled=settled)
    problems += _sweeps(world, truth, moves, settled=settled)
    if settled:
        problems += accounted(world)
        problems += _webhooks(world)
    return problems


def accounted(world: World) -> list[str]:
    """Every base unit on a deposit address is what the ledger says is still owed to
    the treasury (within the dust bound), and owed for a reason; settled payments had
    their asked amount swept."""
    from tests.evm import balance_of, native_balance

    rows = world.query(
        "SELECT id, address, token_address, amount, amount_received, amount_swept, "
        "status FROM payments"
    )
    owed: dict[tuple[str, str | None], int] = defaultdict(int)
    out: list[str] = []
    for pid, address, token, amount, got, swept, status in rows:
        due = int(got) - int(swept)
        owed[(address, token)] += due
        out += _reason(pid, status, int(amount), due, int(swept))
    dust = _native_dust(world)
    for (address, token), due in owed.items():
        held = (
            balance_of(world.anvil, token, address)
            if token
            else native_balance(world.anvil, address)
        )
        bound = 0 if token else dust.get(address.lower(), 0)
        if not 0 <= held - due <= bound:
            out.append(
                f"deposit {address} holds {held} of {token or 'ETH'}, the ledger says "
                f"{due} is still owed (dust bound {bound})"
            )
    return out


def _reason(pid: str, status: str, amount: int, due: int, swept: int) -> list[str]:
    if status == "settled" and swept < amount:
        return [f"payment {pid}: settled, but only {swept} of {amount} swept"]
    if due <= 0 or status in ("pending", "expired"):
        return []  # nothing owed, or held for the payer (underpaid: refund pending)
    if status == "settled" and due * 10_000 < amount * MIN_LATE_SWEEP_BPS:
        return []  # late dust, reported by the sweep pass
    return [f"payment {pid}: {status}, owes {due} to the treasury but was not swept"]


def _native_dust(world: World) -> dict[str, int]:
    """What confirmed native sweeps may leave behind: their recorded dust, the fee
    reserved but not paid (negative for a sweep that paid more, out of later money,
    which the next sweep of the address makes up for)."""
    rows = world.query(
        "SELECT from_address, dust FROM sweep_transactions "
        "WHERE state = 'confirmed' AND kind = 'native'"
    )
    dust: dict[str, int] = defaultdict(int)
    for sender, left in rows:
        dust[sender.lower()] += int(left or 0)
    return dust


def confirmed_are_canonical(world: World) -> list[str]:
    """No confirmed (or settled) payment counts a transfer the canonical chain lacks."""
    truth = ChainTruth(world.anvil.url)
    tokens = [a.token for a in world.assets.values() if a.token]
    canonical = {
        (m.tx_hash, m.log_index)
        for m in truth.token_moves(tokens) + truth.native_moves()
        if m.ok
    }
    rows = world.query(
        "SELECT p.id, t.tx_hash, t.log_index FROM payments p JOIN transfers t "
        "ON t.payment_id = p.id WHERE p.status IN ('confirmed', 'settled')"
    )
    return [
        f"payment {pid} is confirmed with non-canonical transfer {tx}:{log}"
        for pid, tx, log in rows
        if (tx.lower(), int(log)) not in canonical
    ]


def _transfers(world: World, moves: list[Move]) -> list[str]:
    canonical = {(m.tx_hash, m.log_index): m for m in moves if m.ok}
    out = []
    rows = world.query(
        "SELECT tx_hash, log_index, block_hash, amount, to_address FROM transfers"
    )
    seen: Counter[tuple[str, int]] = Counter()
    for tx_hash, log_index, block_hash, amount, to in rows:
        key = (tx_hash.lower(), int(log_index))
        seen[key] += 1
        move = canonical.get(key)
        if move is None:
            out.append(f"transfer {tx_hash}:{log_index} is recorded but not canonical")
        elif move.block_hash != block_hash.lower() or move.amount != int(amount):
            out.append(
                f"transfer {tx_hash}:{log_index} recorded with a stale block/amount"
            )
        elif move.to != to.lower():
            out.append(f"transfer {tx_hash}:{log_index} recorded to the wrong address")
    out += [
        f"transfer {k[0]}:{k[1]} recorded {n} times" for k, n in seen.items() if n > 1
    ]
    return out


def _payments(world: World, moves: list[Move], *, settled: bool) -> list[str]:
    received: dict[tuple[str, str | None], int] = defaultdict(int)
    for m in moves:
        if m.ok:
            received[(m.to, m.token)] += m.amount
    out = []
    rows = world.query(
        "SELECT id, address, token_address, amount, amount_received, status FROM payments"
    )
    for pid, address, token, amount, got, status in rows:
        truth = received[(address.lower(), token.lower() if token else None)]
        if int(got) != truth:
            out.append(f"payment {pid}: amount_received {got} != canonical {truth}")
        funded = truth >= int(amount)
        if funded and settled and status != "settled":
            out.append(f"payment {pid}: funded on chain but {status} (lost?)")
        if funded and status in ("pending", "expired") and not settled:
            continue  # not scanned yet: only the settled check can call it lost
        if not funded and status in ("detected", "confirmed", "settled"):
            out.append(f"payment {pid}: {status} without enough canonical funds")
    return out


def _sweeps(
    world: World, truth: ChainTruth, moves: list[Move], *, settled: bool
) -> list[str]:
    out = []
    rows = world.query(
        "SELECT purpose, kind, tx_hash, state, amount, token_address, to_address "
        "FROM sweep_transactions"
    )
    confirmed = [r for r in rows if r[3] == "confirmed"]
    per_purpose = Counter(r[0] for r in confirmed)
    out += [
        f"sweep purpose {p!r} confirmed {n} times"
        for p, n in per_purpose.items()
        if n > 1
    ]
    recorded = {r[2].lower() for r in rows}
    deposits = {
        a.lower() for (a,) in world.query("SELECT address FROM deposit_addresses")
    }
    for m in moves:
        if m.sender in deposits and m.ok and m.tx_hash not in recorded:
            out.append(f"deposit {m.sender} sent {m.tx_hash} that ctrip never recorded")
        if m.sender in deposits and not m.ok:
            out.append(f"sweep {m.tx_hash} from {m.sender} failed on chain")
    receipts = truth.receipts([r[2] for r in confirmed])
    for r in confirmed:
        receipt = receipts[r[2]]
        if receipt is None or int(receipt["status"], 16) != 1:
            out.append(
                f"sweep {r[2]} is confirmed in ctrip but not on the canonical chain"
            )
    if settled:
        out += _treasury(world, confirmed)
        out += [
            f"sweep {r[2]} still {r[3]} after settling"
            for r in rows
            if r[3] not in FINAL_SWEEP_STATES
        ]
    return out


def _treasury(world: World, confirmed: list[Any]) -> list[str]:
    by_token = {
        a.token.lower() if a.token else None: s for s, a in world.assets.items()
    }
    swept: Counter[str] = Counter()
    for _purpose, kind, _tx, _state, amount, token, to in confirmed:
        if kind != "topup" and to.lower() == TREASURY.lower():
            swept[by_token[token.lower() if token else None]] += int(amount)
    now = world.treasury_balances()
    return [
        f"treasury {symbol}: gained {now[symbol] - start}, ctrip swept {swept[symbol]}"
        for symbol, start in world.treasury_start.items()
        if now[symbol] - start != swept[symbol]
    ]


def _webhooks(world: World) -> list[str]:
    out = []
    events = world.query("SELECT id, type, payment_id, status FROM webhook_events")
    ids = {e[0] for e in events}
    for event_id, kind, payment_id, status in events:
        if status != "delivered":
            out.append(f"webhook {event_id} ({kind}) is {status}, not delivered")
        elif event_id not in world.receiver.seen:
            out.append(f"webhook {event_id} is delivered but the receiver never saw it")
        elif world.receiver.seen[event_id] != {f"{kind}:{payment_id}"}:
            out.append(
                f"webhook-id {event_id} carried {sorted(world.receiver.seen[event_id])}"
            )
    out += [
        f"receiver got unknown webhook-id {i}"
        for i in world.receiver.seen
        if i not in ids
    ]
    if world.receiver.bad_signatures:
        reasons = dict(world.receiver.bad_reasons)
        out.append(
            f"{world.receiver.bad_signatures} webhook signatures did not verify: {reasons}"
        )
    return out
