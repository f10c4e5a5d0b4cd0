"""stderr logging: readable lines on a terminal, JSON lines with `--log-format json`."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


class PlainLines(logging.Formatter):
    """One unwrapped line per record, for log files and cron mail."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{ts} {record.levelname:<7} {record.getMessage()}"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners swap it between commands)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(err: Callable[[], Console], *, log_format: str, level: int) -> None:
    """JSON lines, Rich lines on a terminal, plain unwrapped lines otherwise.

    `err` gives the stderr console; it is asked for (and Rich loaded) only when stderr
    may be a terminal.
    """
    handler: logging.Handler
    if log_format == "json":
        handler = _Stderr()
        handler.setFormatter(JsonLines())
    elif not _may_be_terminal() or not err().is_terminal:
        handler = _Stderr()
        handler.setFormatter(PlainLines())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(
            console=err(), show_path=False, markup=False, rich_tracebacks=False
        )
    logger = logging.getLogger("ctrip")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    # Records still reach the root logger (which a CLI run leaves without handlers),
    # so pytest's caplog sees them after any earlier CLI invocation in the process.
    logger.propagate = True


def _may_be_terminal() -> bool:
    """False when Rich would not take stderr for a terminal either: not a TTY, and
    neither TTY_COMPATIBLE=1 nor FORCE_COLOR says otherwise (rich.console.is_terminal)."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stderr.isatty()
    except ValueError:  # closed
        return False


_RESERVED = frozenset({"ts", "level", "logger", "message", "event", "job", "chain"})


def log_pass(
    logger: logging.Logger,
    *,
    job: str,
    chain: str,
    outcome: str,
    duration_s: float,
    result: Any,
    error: str | None,
) -> None:
    """The one summary line of a pass: job, chain, outcome, duration and its numbers.

    Only scalar fields of the pass's result are kept (counts, block numbers, hashes);
    results never hold key material, and error messages never name secrets.
    """
    numbers = _scalars(result)
    text = f"{job} {chain or '-'} {outcome} in {duration_s:.2f}s"
    if numbers:
        text += " " + " ".join(f"{k}={v}" for k, v in numbers.items())
    if error:
        text += f": {error}"
    fields: dict[str, Any] = {
        "event": "pass",
        "job": job,
        "chain": chain,
        "outcome": outcome,
        "duration_s": round(duration_s, 3),
        **numbers,
    }
    if error:
        fields["error"] = error
    level = logging.ERROR if outcome == "error" else logging.INFO
    logger.log(level, text, extra={"fields": fields})


def _scalars(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    return {
        k: v
        for k, v in result.items()
        if k not in _RESERVED
        and v is not None
        and (isinstance(v, int | float | bool) or (isinstance(v, str) and len(v) <= 80))
    }
