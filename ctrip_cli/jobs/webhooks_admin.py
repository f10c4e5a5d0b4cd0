"""`webhooks list` and `webhooks retry`: inspect the outbox and redeliver events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import inputs, redact
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookEvent
from ctrip_cli.errors import InputError

STATUSES = ("pending", "delivered", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class RetryResult:
    requeued: int
    ids: list[str]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def event_json(event: WebhookEvent) -> dict[str, Any]:
    """An outbox event as `webhooks list --json` shows it (the body is not repeated)."""
    return {
        "id": event.id,
        "type": event.type,
        "payment_id": event.payment_id,
        "status": event.status,
        "url": redact.redact_url(event.url),
        "uses_default_url": event.url is None,
        "attempts": event.attempts,
        "next_attempt_at": _iso(event.next_attempt_at)
        if event.status == "pending"
        else None,
        "last_status_code": event.last_status_code,
        "last_error": event.last_error,
        "created_at": _iso(event.created_at),
        "delivered_at": _iso(event.delivered_at),
    }


def list_events(
    session: Session, *, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Outbox events, newest first.

    Raises:
        InputError: an unknown status.
    """
    if status is not None and status not in STATUSES:
        raise InputError(
            f"--status {status!r}: not a webhook status ({', '.join(STATUSES)})"
        )
    return [
        event_json(e)
        for e in queries.list_webhook_events(session, status=status, limit=limit)
    ]


def retry(
    session: Session,
    *,
    event_id: str | None,
    all_failed: bool = False,
    all_skipped: bool = False,
    now: datetime,
) -> RetryResult:
    """Requeue one event (any status) or every failed/skipped one: pending, due now,
    with a fresh retry ladder. Earlier attempts stay in the history.

    Raises:
        InputError: neither or both of an id and a bulk option, or an unknown id.
    """
    statuses = [s for s, on in (("failed", all_failed), ("skipped", all_skipped)) if on]
    if (event_id is None) == (not statuses):
        raise InputError("give an event ID or --all-failed/--all-skipped (not both)")
    if event_id is not None:
        inputs.check_id(event_id, what="webhook event", example="msg_0123abcd...")
        if queries.get_webhook_event(session, event_id) is None:
            raise InputError(f"webhook event {event_id!r}: no such event")
        ids = queries.requeue_webhook_events(session, now=now, ids=[event_id])
    else:
        ids = queries.requeue_webhook_events(session, now=now, statuses=statuses)
    return RetryResult(requeued=len(ids), ids=ids)
