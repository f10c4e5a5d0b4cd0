"""Helpers shared by the property tests: row counts of every table, output checks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Base


def row_counts(url: str) -> dict[str, int]:
    """Rows per table plus the deposit index counter: equal before/after = nothing written."""
    engine = db_engine.make_engine(url)
    try:
        with engine.connect() as conn:
            counts = {
                name: int(
                    conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                )
                for name, t in Base.metadata.tables.items()
            }
            counts["next_index"] = int(
                conn.execute(
                    sa.text(
                        "SELECT coalesce(max(next_index), 0) FROM deposit_index_counter"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
    return counts


def all_output(result: Any) -> str:
    """stdout and stderr of a CliRunner result."""
    return str(result.output) + str(getattr(result, "stderr", "") or "")


def assert_clean_usage_error(result: Any, *needles: str) -> None:
    """Exit 2, no traceback, and the message names every needle."""
    text = all_output(result)
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, (needle, text)
