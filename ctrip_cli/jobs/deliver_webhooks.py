"""`deliver-webhooks`: claim due outbox events, send them concurrently, record each attempt.

One pass. A claim (a lease) is committed before any request is sent, so a crashed
run's claims come back when the lease expires; requests run outside any transaction;
outcomes are recorded in one transaction per batch. While the time budget lasts the
pass keeps claiming newly due events, so short retry delays are honoured in one run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.config import WebhookSettings
from ctrip_cli.db import queries
from ctrip_cli.errors import ConfigError
from ctrip_cli.jobs import webhook_records
from ctrip_cli.webhooks import delivery, retry, signing, ssrf

log = logging.getLogger("ctrip.webhooks")

FLUSH_EVERY = 64  # outcomes per recording transaction, at most
FLUSH_AFTER_S = 0.25  # ... or this long after the first unrecorded outcome
IDLE_FLOOR_S = 0.05
HOLD_FACTOR = 4  # claimed events held per in-flight slot


@dataclass(frozen=True, slots=True)
class DeliverWebhooksResult:
    """Counts are per attempt outcome: an event retried within the pass counts twice."""

    job: str = "deliver-webhooks"
    chain: str | None = None
    skipped: str | None = None
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    no_url: int = 0
    released: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Done:
    event: queries.DueEvent
    attempt: delivery.Attempt | None  # None: nothing was sent
    no_url: bool = False


def signing_keys(settings: WebhookSettings) -> list[bytes]:
    """The HMAC keys of CTRIP_WEBHOOK_SECRET (several during a rotation).

    Raises:
        ConfigError: a secret is not base64 (the message names its position only).
    """
    keys = []
    for i, secret in enumerate(settings.secrets):
        try:
            keys.append(signing.decode_secret(secret.get_secret_value()))
        except ValueError as exc:
            raise ConfigError(f"CTRIP_WEBHOOK_SECRET[{i}]: {exc}") from None
    return keys


def run(
    session: Session,
    *,
    now: datetime,
    settings: WebhookSettings,
    dev_chains: Collection[str],
    limit: int = 1_000,
    time_budget_s: float = 50.0,
    sender: delivery.Sender | None = None,
    rng: random.Random | None = None,
) -> DeliverWebhooksResult:
    """Deliver due webhook events until none is due within the budget, or `limit` claims.

    `dev_chains` names the chains on which plain http is allowed. `sender` (for tests)
    is used for this pass only and closed at its end.

    Raises:
        ConfigError: events are pending but CTRIP_WEBHOOK_SECRET is missing or invalid.
    """
    keys = signing_keys(settings)
    if not keys:
        with session.begin():
            pending = queries.next_webhook_due_at(session)
        if pending is not None:
            raise ConfigError(
                "CTRIP_WEBHOOK_SECRET is not set: webhooks are signed, so set it "
                "(whsec_ followed by base64) and rerun"
            )
        return DeliverWebhooksResult()
    state = _Pass(
        session,
        now=now,
        settings=settings,
        dev_chains=frozenset(dev_chains),
        limit=limit,
        time_budget_s=time_budget_s,
        rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
    )
    if sender is None:
        sender = delivery.Sender(settings, keys=keys, clock=state.clock)
    return asyncio.run(state.main(sender))


class _Pass:
    """The state of one pass: its clock and budget, tasks in flight, unrecorded outcomes."""

    def __init__(
        self,
        session: Session,
        *,
        now: datetime,
        settings: WebhookSettings,
        dev_chains: frozenset[str],
        limit: int,
        time_budget_s: float,
        rng: random.Random,
    ) -> None:
        self.session, self.settings, self.dev_chains = session, settings, dev_chains
        self.limit, self.rng = limit, rng
        self.owner = f"run_{uuid.uuid4().hex}"
        self.start, self.t0 = now, time.monotonic()
        self.deadline = self.t0 + time_budget_s
        self.tasks: set[asyncio.Task[_Done]] = set()
        self.done: list[_Done] = []
        self.first_unrecorded: float | None = None
        self.tally: Counter[str] = Counter()
        self.idle = False

    def clock(self) -> datetime:
        """`now` as given, advanced by the monotonic time this pass has run."""
        return self.start + timedelta(seconds=time.monotonic() - self.t0)

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    async def main(self, sender: delivery.Sender) -> DeliverWebhooksResult:
        async with sender:
            while not self.idle and self.remaining_s() > 0:
                started = await self._checkpoint(sender)
                if self.tasks:
                    await self._wait_any()
                elif self.tally["claimed"] >= self.limit:
                    break
                elif not started:
                    await self._wait_for_due()
            await self._drain()
        self._flush()
        return DeliverWebhooksResult(
            claimed=self.tally["claimed"],
            delivered=self.tally["delivered"],
            retrying=self.tally["retrying"],
            failed=self.tally["failed"],
            no_url=self.tally["no_url"],
            released=self.tally["released"],
            elapsed_s=round(time.monotonic() - self.t0, 3),
        )

    def _claim_size(self) -> int:
        """How many events to claim now: 0 until a batch's worth of room is free.

        Up to HOLD_FACTOR x `max_in_flight` events are held (the extra ones wait for a
        slot), so claims come in batches, and requests keep flowing while a claim's
        transaction is still committing.
        """
        room = HOLD_FACTOR * self.settings.max_in_flight - len(self.tasks)
        want = min(room, self.limit - self.tally["claimed"])
        if want <= 0 or self.remaining_s() < delivery.MIN_REQUEST_S:
            return 0
        if self.tasks and room < self.settings.max_in_flight:
            return 0
        return want

    async def _checkpoint(self, sender: delivery.Sender) -> int:
        """Record finished attempts and claim more, in one transaction; the number
        of events claimed."""
        want = self._claim_size()
        age = time.monotonic() - (self.first_unrecorded or time.monotonic())
        due = len(self.done) >= FLUSH_EVERY or age >= FLUSH_AFTER_S
        if want == 0 and not (self.done and due):
            return 0
        attempts, updates = self._decisions()
        # The transaction runs in a worker thread so requests in flight keep moving
        # while the database commits; nothing else touches the session meanwhile.
        events = await asyncio.to_thread(
            self._record_and_claim, attempts, updates, want
        )
        self.tally["claimed"] += len(events)
        for event in events:
            self._start(sender, event)
        return len(events)

    def _record_and_claim(
        self, attempts: list[dict[str, Any]], updates: list[dict[str, Any]], want: int
    ) -> list[queries.DueEvent]:
        now = self.clock()
        lease_until = now + timedelta(
            seconds=self.remaining_s() + self.settings.lease_s
        )
        with self.session.begin():
            if updates:
                webhook_records.record(
                    self.session, owner=self.owner, attempts=attempts, updates=updates
                )
            if not want:
                return []
            return queries.claim_due_events(
                self.session,
                now=now,
                limit=want,
                owner=self.owner,
                lease_until=lease_until,
            )

    def _start(self, sender: delivery.Sender, event: queries.DueEvent) -> None:
        url = event.url or self.settings.default_url
        if url is None:
            self._finished(_Done(event, None, no_url=True))
            return
        https = self.settings.require_https and event.chain not in self.dev_chains
        problem = ssrf.url_problem(url, require_https=https)
        if problem is not None:
            self._finished(
                _Done(event, delivery.refused(url, problem, at=self.clock()))
            )
            return
        item = delivery.Delivery(event.id, url, event.body)
        self.tasks.add(asyncio.create_task(self._send(sender, event, item)))

    async def _send(
        self, sender: delivery.Sender, event: queries.DueEvent, item: delivery.Delivery
    ) -> _Done:
        return _Done(event, await sender.send(item, deadline=self.deadline))

    def _finished(self, done: _Done) -> None:
        if self.first_unrecorded is None:
            self.first_unrecorded = time.monotonic()
        self.done.append(done)

    async def _wait_any(self) -> None:
        finished, self.tasks = await asyncio.wait(
            self.tasks,
            timeout=max(self.remaining_s(), 0) + 1.0,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in finished:
            self._finished(task.result())

    async def _wait_for_due(self) -> None:
        """Sleep until the next event is due if that is within the budget, else stop."""
        self._flush()
        with self.session.begin():
            due = queries.next_webhook_due_at(self.session)
        if due is None:
            self.idle = True
            return
        wait_s = (due - self.clock()).total_seconds()
        if wait_s > self.remaining_s() - delivery.MIN_REQUEST_S:
            self.idle = True
            return
        await asyncio.sleep(max(wait_s, IDLE_FLOOR_S))

    async def _drain(self) -> None:
        if not self.tasks:
            return
        # Every request ends at the deadline by itself; the grace only covers a bug.
        finished, stuck = await asyncio.wait(
            self.tasks, timeout=max(self.remaining_s(), 0) + 2
        )
        for task in finished:
            self._finished(task.result())
        for task in stuck:
            # Unknown whether it was sent: keep the lease, so the event returns later.
            task.cancel()
        self.tasks = set()

    def _decisions(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Attempt rows and event updates for every unrecorded outcome (now taken)."""
        batch, self.done, self.first_unrecorded = self.done, [], None
        attempts, updates = [], []
        now = self.clock()
        for done in batch:
            row, update, outcome = self._decide(done, now)
            if row is not None:
                attempts.append(row)
            updates.append(update)
            self.tally[outcome] += 1
        return attempts, updates

    def _flush(self) -> None:
        if not self.done:
            return
        attempts, updates = self._decisions()
        with self.session.begin():
            webhook_records.record(
                self.session, owner=self.owner, attempts=attempts, updates=updates
            )

    def _decide(
        self, done: _Done, now: datetime
    ) -> tuple[dict[str, Any] | None, dict[str, Any], str]:
        """(attempt row, event update, outcome) for one finished delivery."""
        event, attempt = done.event, done.attempt
        if done.no_url:
            note = "no webhook URL (payment has none, CTRIP_WEBHOOK_URL unset)"
            return (
                None,
                {"id": event.id, "status": "skipped", "last_error": note},
                "no_url",
            )
        if attempt is None:
            return None, {"id": event.id}, "released"
        row = {
            "event_id": event.id,
            "attempt": event.attempts + 1,
            "started_at": attempt.started_at,
            "latency_ms": attempt.latency_ms,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "response_excerpt": attempt.excerpt,
            "endpoint": attempt.endpoint,
        }
        update: dict[str, Any] = {
            "id": event.id,
            "attempted": True,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
        }
        if attempt.ok:
            # A 2xx is a delivery even if the body then trickled past the deadline.
            # delivered_at is when the outcome was recorded (within FLUSH_AFTER_S of
            # the response), so a batch of deliveries is one UPDATE.
            update |= {"status": "delivered", "delivered_at": now, "last_error": None}
            return row, update, "delivered"
        if attempt.status_code == 410:
            log.warning(
                "endpoint %s answered 410 Gone; event %s failed",
                attempt.endpoint,
                event.id,
            )
            return row, update | {"status": "failed"}, "failed"
        wait_s = retry.delay_s(
            event.attempts_in_round + 1,
            retry_after_s=retry.parse_retry_after(attempt.retry_after, now=now),
            rng=self.rng,
            ladder_s=self.settings.retry_ladder_s,
        )
        if wait_s is None:
            return row, update | {"status": "failed"}, "failed"
        return (
            row,
            update | {"next_attempt_at": now + timedelta(seconds=wait_s)},
            "retrying",
        )
