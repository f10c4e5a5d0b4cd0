"""OP Stack L1 data fee: the L1Block predeploy's fee parameters and the Ecotone and
Fjord cost functions over a signed transaction's bytes. Pure: the reads go through the
ChainClient (`EvmChain.l1_fee_params`).

Sources: op-geth `core/types/rollup_cost.go` (slots, offsets, both cost functions and
`FlzCompressLen`), the Fjord execution-engine spec ("Fjord L1-Cost fee changes (FastLZ
estimator)": intercept, coefficient and `minTransactionSize` 100) and op-revm
`l1block.rs` / `constants.rs` (the operator fee slot, Isthmus and Jovian).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

L1_BLOCK = "0x4200000000000000000000000000000000000015"
GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
# `isFjord()`; GasPriceOracle answers it since Fjord (absent: assume Fjord, below).
IS_FJORD_CALL = "0x960e3a23"

# L1Block storage: slot 1 the L1 base fee; slot 3 packs baseFeeScalar at bytes
# [16:20) and blobBaseFeeScalar at [20:24) (big-endian, beside the sequence number);
# slot 7 the blob base fee; slot 8 (Isthmus) packs operatorFeeScalar at [20:24) and
# operatorFeeConstant at [24:32).
L1_BASE_FEE_SLOT, SCALARS_SLOT, BLOB_BASE_FEE_SLOT, OPERATOR_FEE_SLOT = 1, 3, 7, 8
SLOTS = (L1_BASE_FEE_SLOT, SCALARS_SLOT, BLOB_BASE_FEE_SLOT, OPERATOR_FEE_SLOT)

FJORD_INTERCEPT = -42_585_600  # scaled by 1e6
FJORD_FASTLZ_COEF = 836_500  # scaled by 1e6
FJORD_MIN_SIZE_SCALED = 100 * 1_000_000  # minTransactionSize, bytes × 1e6
OPERATOR_FEE_JOVIAN_MULTIPLIER = 100


@dataclass(frozen=True, slots=True)
class L1FeeParams:
    """What the L1Block predeploy holds for the L1 data fee (all in wei or raw scalars)."""

    l1_base_fee: int = 0
    blob_base_fee: int = 0
    base_fee_scalar: int = 0
    blob_base_fee_scalar: int = 0
    operator_fee_scalar: int = 0
    operator_fee_constant: int = 0
    fjord: bool = True  # False: the chain still prices with Ecotone's calldata gas

    @classmethod
    def from_slots(cls, words: Mapping[int, int], *, fjord: bool = True) -> L1FeeParams:
        """Parameters from the slots' 32-byte words (`{slot: value}`)."""
        scalars = words.get(SCALARS_SLOT, 0).to_bytes(32, "big")
        operator = words.get(OPERATOR_FEE_SLOT, 0).to_bytes(32, "big")
        return cls(
            l1_base_fee=words.get(L1_BASE_FEE_SLOT, 0),
            blob_base_fee=words.get(BLOB_BASE_FEE_SLOT, 0),
            base_fee_scalar=int.from_bytes(scalars[16:20], "big"),
            blob_base_fee_scalar=int.from_bytes(scalars[20:24], "big"),
            operator_fee_scalar=int.from_bytes(operator[20:24], "big"),
            operator_fee_constant=int.from_bytes(operator[24:32], "big"),
            fjord=fjord,
        )

    @property
    def scaled(self) -> int:
        """16·baseFeeScalar·l1BaseFee + blobBaseFeeScalar·blobBaseFee (×1e6)."""
        return (
            16 * self.base_fee_scalar * self.l1_base_fee
            + self.blob_base_fee_scalar * self.blob_base_fee
        )


def l1_fee(params: L1FeeParams, raw: bytes) -> int:
    """The L1 data fee the chain charges for the signed transaction `raw`, exactly."""
    if not raw or raw[0] == 0x7E:  # deposit transactions pay none
        return 0
    if params.fjord:
        return fjord_fee(params, flz_compress_len(raw))
    zeros = raw.count(0)
    return ecotone_fee(params, 4 * zeros + 16 * (len(raw) - zeros))


def l1_fee_bound(params: L1FeeParams, length: int) -> int:
    """The most the L1 data fee of any transaction of at most `length` bytes can be at
    these parameters: FastLZ never outgrows its input by more than one byte in 32 (a
    literal run of 32 bytes costs 33), and calldata gas is at most 16 per byte."""
    if params.fjord:
        return fjord_fee(params, length + -(-length // 32) + 1)
    return ecotone_fee(params, 16 * length)


def fjord_fee(params: L1FeeParams, fastlz_size: int) -> int:
    """Fjord: max(minTransactionSize, intercept + coef·fastlzSize) · scaled / 1e12."""
    size = max(FJORD_MIN_SIZE_SCALED, FJORD_INTERCEPT + FJORD_FASTLZ_COEF * fastlz_size)
    return size * params.scaled // 10**12


def ecotone_fee(params: L1FeeParams, calldata_gas: int) -> int:
    """Ecotone: calldataGas · scaled / 16e6."""
    return calldata_gas * params.scaled // 16_000_000


def operator_fee_bound(params: L1FeeParams, gas_limit: int) -> int:
    """The most the operator fee (Isthmus) can take of a `gas_limit` transaction.

    Jovian charges gas · scalar · 100 + constant, Isthmus gas · scalar / 1e6 +
    constant: the Jovian form bounds both. Zero on chains that set no operator fee.
    """
    if not (params.operator_fee_scalar or params.operator_fee_constant):
        return 0
    return (
        gas_limit * params.operator_fee_scalar * OPERATOR_FEE_JOVIAN_MULTIPLIER
        + params.operator_fee_constant
    )


# -- FastLZ (level 1) compressed length: op-geth's FlzCompressLen, after solady's
# LibZip.flzCompress; the estimator Fjord prices with. --


def flz_compress_len(data: bytes) -> int:
    """Length of `data` once FastLZ-compressed (only the length is computed)."""
    n = len(data)
    idx_limit = 0 if n < 13 else n - 13
    htab = [0] * 8192
    idx, anchor, size = 2, 0, 0
    while idx < idx_limit:
        while True:  # find the next match
            seq = _u24(data, idx)
            slot = _hash(seq)
            ref = htab[slot]
            htab[slot] = idx
            distance = idx - ref
            if idx >= idx_limit:
                break
            idx += 1
            if distance < 8192 and seq == _u24(data, ref):
                break
        if idx >= idx_limit:
            break
        idx -= 1
        if idx > anchor:
            size = _literals(idx - anchor, size)
        length = _cmp(data, ref + 3, idx + 3, idx_limit + 9)
        size = _match(length, size)
        idx = _set_next_hash(htab, data, idx + length)
        idx = _set_next_hash(htab, data, idx)
        anchor = idx
    return _literals(n - anchor, size)


def _u24(data: bytes, i: int) -> int:
    return data[i] | data[i + 1] << 8 | data[i + 2] << 16


def _hash(v: int) -> int:
    return ((v * 2_654_435_769) >> 19) & 0x1FFF


def _literals(r: int, size: int) -> int:
    size += 0x21 * (r // 0x20)
    r %= 0x20
    return size + r + 1 if r else size


def _cmp(data: bytes, p: int, q: int, r: int) -> int:
    limit = r - q
    for i in range(limit):
        if data[p + i] != data[q + i]:
            return i + 1
    return limit


def _match(length: int, size: int) -> int:
    length -= 1
    size += 3 * (length // 262)
    return size + (3 if length % 262 >= 6 else 2)


def _set_next_hash(htab: list[int], data: bytes, idx: int) -> int:
    htab[_hash(_u24(data, idx))] = idx
    return idx + 1
