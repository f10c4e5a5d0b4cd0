"""The secrets check: the known mnemonic, its private keys, the webhook secret and the RPC
API key must not appear in any stdout, stderr or log line, nor in any database cell."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli.chain.signer import DEPOSIT_PATH, KeyRing
from scripts.chaos.world import MNEMONIC, RPC_API_KEY, WEBHOOK_KEY, WEBHOOK_SECRET

if TYPE_CHECKING:
    from scripts.chaos.world import World


def needles(world: World) -> dict[str, str]:
    """name -> lowercase secret text."""
    out = {
        "mnemonic": MNEMONIC,
        "mnemonic (first words)": " ".join(MNEMONIC.split()[:4]),
        "webhook secret": WEBHOOK_SECRET,
        "webhook key": WEBHOOK_KEY,
        "RPC API key": RPC_API_KEY,
    }
    keys = KeyRing(SecretStr(MNEMONIC))
    (count,) = world.query("SELECT count(*) FROM deposit_addresses")[0]
    for i in range(int(count) + 1):
        out[f"deposit key {i}"] = keys.private_key(DEPOSIT_PATH.format(index=i)).hex()
    out["gas payer key"] = keys.private_key("m/44'/60'/1'/0/0").hex()
    return {name: text.lower() for name, text in out.items()}


def check(world: World) -> list[str]:
    found = needles(world)
    problems = []
    for run in world.runs:
        text = (run.out + "\n" + run.err).lower()
        problems += [
            f"{name} printed by `ctrip {' '.join(run.args)}`"
            for name, s in found.items()
            if s in text
        ]
    cells = 0
    engine = world.engine()
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    for value in row:
                        cells += 1
                        text = str(value).lower()
                        problems += [
                            f"{name} stored in table {table}"
                            for name, s in found.items()
                            if s in text
                        ]
    finally:
        engine.dispose()
    world.scanned_cells += cells
    return sorted(set(problems))


def scanned(world: World) -> tuple[int, int]:
    """(outputs and cells scanned, runs made with faults or --verbose)."""
    return len(world.runs) + world.scanned_cells, len(world.runs)
