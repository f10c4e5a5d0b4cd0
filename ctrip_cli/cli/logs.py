"""stderr logging: readable lines on a terminal, JSON lines with `--log-format json`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from rich.console import Console
from rich.logging import RichHandler


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


def setup_logging(err: Console, *, log_format: str, level: int) -> None:
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(err.file)
        handler.setFormatter(JsonLines())
    else:
        handler = RichHandler(
            console=err, show_path=False, markup=False, rich_tracebacks=False
        )
    root = logging.getLogger("ctrip")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
