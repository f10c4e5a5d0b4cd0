"""Recording webhook outcomes so that one bad row never costs the rest of its batch.

The batch is written in one savepoint. If the database refuses it (a value it cannot
store: a NUL character on PostgreSQL, a too-long value in a column of an older schema),
each event is written in its own savepoint, again with NULs replaced if need be, and an
event whose attempt row is still refused is recorded without it, its error saying why. Every event's state moves on, so
no event is re-sent for ever because its outcome could not be stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.orm import Session

from ctrip_cli.db import queries

log = logging.getLogger("ctrip.webhooks")


def record(
    session: Session,
    *,
    owner: str,
    attempts: Sequence[dict[str, Any]],
    updates: Sequence[dict[str, Any]],
) -> None:
    """Insert attempt rows and apply event updates in the caller's transaction.

    Raises:
        sqlalchemy.exc.OperationalError: the database is unreachable (nothing is
            lost: the events' leases bring them back).
    """
    try:
        _write(session, owner, attempts, updates)
        return
    except (exc.OperationalError, exc.InterfaceError):
        raise
    except (exc.DBAPIError, ValueError) as e:
        log.warning(
            "recording %d outcomes failed (%s); one by one", len(updates), _why(e)
        )
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in attempts:
        rows.setdefault(row["event_id"], []).append(row)
    for update in updates:
        _record_one(session, owner, rows.get(update["id"], []), update)


def _record_one(
    session: Session,
    owner: str,
    attempts: list[dict[str, Any]],
    update: dict[str, Any],
) -> None:
    why = None
    for rows in (attempts, [_storable(row) for row in attempts]):
        try:
            _write(session, owner, rows, [update])
            return
        except (exc.OperationalError, exc.InterfaceError):
            raise
        except (exc.DBAPIError, ValueError) as e:
            why = why or _why(e)
    log.warning("event %s: its attempt could not be recorded (%s)", update["id"], why)
    note = f"the attempt could not be recorded ({why})"
    _write(session, owner, [], [update | {"last_error": note}])


def _write(
    session: Session,
    owner: str,
    attempts: Sequence[dict[str, Any]],
    updates: Sequence[dict[str, Any]],
) -> None:
    with session.begin_nested():
        queries.record_webhook_results(
            session, owner=owner, attempts=attempts, updates=updates
        )


def _storable(row: dict[str, Any]) -> dict[str, Any]:
    """The row with NUL characters (PostgreSQL text cannot hold them) replaced."""
    return {
        k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v
        for k, v in row.items()
    }


def _why(e: Exception) -> str:
    """The driver's first line only: later lines can quote the refused values."""
    orig = getattr(e, "orig", None) or e
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:200]
