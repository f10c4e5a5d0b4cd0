"""Hand-assembled forwarder contracts: native coin reaching an address by internal call.

No compiler is needed: each runtime is a few opcodes (the `initcode` wrapper is the
one in scripts/bench/mainnet_world.py). The shapes are those real payers use:

* `forward`: calldata `(target, inner calldata...)`; CALLs `target` with all of
  `msg.value` and the inner calldata, and reverts if that call fails (a router).
* `forward_try`: the same, but ignores a failed call and keeps the coin.
* `forward_then_revert`: CALLs `target`, then reverts itself (a failed inner step).
* `split`: calldata `(a, amount_a, b)`; pays `amount_a` to `a`, the rest to `b`.
"""

from __future__ import annotations

from typing import Literal

from eth_abi import encode as abi_encode

from scripts.bench.mainnet_world import initcode
from tests.evm import ANVIL_ACCOUNTS, Anvil, _send_and_confirm

Kind = Literal["forward", "forward_try", "forward_then_revert", "split"]

# Opcodes (the Yellow Paper, appendix H).
STOP, SUB, ISZERO, POP = 0x00, 0x03, 0x15, 0x50
CALLVALUE, CALLDATALOAD, CALLDATASIZE, CALLDATACOPY = 0x34, 0x35, 0x36, 0x37
JUMPI, GAS, JUMPDEST, PUSH0, PUSH1, DUP1 = 0x57, 0x5A, 0x5B, 0x5F, 0x60, 0x80
CALL, REVERT = 0xF1, 0xFD


def _ops(*codes: int) -> bytes:
    return bytes(codes)


def _word(i: int) -> bytes:
    return _ops(PUSH1, 32 * i, CALLDATALOAD)


def _forward_call() -> bytes:
    """CALL(gas, calldata[0], msg.value, mem[0:size], 0, 0), mem = calldata[32:]."""
    ret = _ops(PUSH0, PUSH0)  # retSize, retOffset
    size = _ops(PUSH1, 32, CALLDATASIZE, SUB)  # argsSize = calldatasize - 32
    copy = _ops(DUP1, PUSH1, 32, PUSH0, CALLDATACOPY)  # mem[0:] = calldata[32:]
    return ret + size + copy + _ops(PUSH0, CALLVALUE) + _word(0) + _ops(GAS, CALL)


def _pay(to: bytes, value: bytes) -> bytes:
    """CALL(gas, to, value, 0, 0, 0, 0) without calldata."""
    return _ops(PUSH0, PUSH0, PUSH0, PUSH0) + value + to + _ops(GAS, CALL)


def runtime(kind: Kind) -> bytes:
    """The runtime bytecode of a forwarder of `kind`."""
    if kind == "forward_try":
        return _forward_call() + _ops(POP, STOP)
    if kind == "forward_then_revert":
        return _forward_call() + _ops(POP, PUSH0, PUSH0, REVERT)
    if kind == "forward":
        calls = [_forward_call()]
    else:
        rest = _word(1) + _ops(CALLVALUE, SUB)  # msg.value - amount_a
        calls = [_pay(_word(0), _word(1)), _pay(_word(2), rest)]
    # Each call's flag: ISZERO, jump to the REVERT at the end when it failed.
    checks_len = sum(len(c) + 4 for c in calls) + 1
    code = b"".join(c + _ops(ISZERO, PUSH1, checks_len, JUMPI) for c in calls)
    code += _ops(STOP)
    if len(code) != checks_len:
        raise ValueError("forwarder assembly: jump target moved")
    return code + _ops(JUMPDEST, PUSH0, PUSH0, REVERT)


def deploy(anvil: Anvil, kind: Kind, sender: str = ANVIL_ACCOUNTS[0]) -> str:
    """Deploy a forwarder of `kind`; returns its address."""
    receipt = _send_and_confirm(
        anvil, {"from": sender, "data": "0x" + initcode(runtime(kind)).hex()}
    )
    return str(receipt["contractAddress"])


def forward_data(target: str, inner: bytes = b"") -> str:
    """Calldata for `forward*`: the target word, then the calldata passed on."""
    return "0x" + (abi_encode(["address"], [target]) + inner).hex()


def split_data(a: str, amount_a: int, b: str) -> str:
    return "0x" + abi_encode(["address", "uint256", "address"], [a, amount_a, b]).hex()


def pay_through(
    anvil: Anvil, contract: str, data: str, wei: int, sender: str = ANVIL_ACCOUNTS[1]
) -> str:
    """Send `wei` to `contract` with `data`; returns the (successful) tx hash."""
    receipt = _send_and_confirm(
        anvil,
        {
            "from": sender,
            "to": contract,
            "value": hex(wei),
            "data": data,
            "gas": hex(300_000),
        },
    )
    return str(receipt["transactionHash"])
