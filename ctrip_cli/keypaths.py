"""BIP-32 derivation paths: parsing, and where the gas payer may not live.

Deposit address `i` is m/44'/60'/0'/0/i. A gas payer inside that branch would be a
customer's deposit address: top-ups would spend the deposit and share its nonces.
"""

from __future__ import annotations

HARDENED = 2**31
DEPOSIT_BRANCH = (44 + HARDENED, 60 + HARDENED, 0 + HARDENED, 0)
# sweep_transactions.key_path is VARCHAR(64).
MAX_PATH_CHARS = 64


def parse_path(path: str) -> tuple[int, ...]:
    """The child indexes of a path such as m/44'/60'/0'/0/7 (hardened ones + 2**31).

    Raises:
        ValueError: not `m` followed by /-separated indexes below 2**31, each
            optionally marked hardened with ' or H.
    """
    parts = path.split("/")
    if parts[0] != "m":
        raise ValueError("it does not start with m/")
    nodes = []
    for part in parts[1:]:
        hardened = part.endswith(("'", "H"))
        digits = part[:-1] if hardened else part
        if not digits.isascii() or not digits.isdigit() or int(digits) >= HARDENED:
            raise ValueError(f"{part!r} is not an index below 2**31")
        nodes.append(int(digits) + (HARDENED if hardened else 0))
    return tuple(nodes)


def gas_payer_problem(path: str) -> str | None:
    """Why `path` cannot be the gas payer's derivation path, or None."""
    if len(path) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters"
    try:
        nodes = parse_path(path)
    except ValueError as exc:
        return f"not a derivation path ({exc}), e.g. m/44'/60'/1'/0/0"
    if nodes[: len(DEPOSIT_BRANCH)] == DEPOSIT_BRANCH:
        return (
            "inside the deposit branch m/44'/60'/0'/0, so it would be a customer's "
            "deposit address; use another account, e.g. m/44'/60'/1'/0/0"
        )
    return None
