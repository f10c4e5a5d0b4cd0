"""The retry ladder: jitter bounds, Retry-After within limits, the last attempt."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ctrip_cli.config import WebhookSettings
from ctrip_cli.webhooks import retry

LADDER = WebhookSettings().retry_ladder_s
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_default_ladder_is_about_5s_5m_30m_2h_5h_10h_10h():
    assert LADDER == (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)


@pytest.mark.parametrize("attempt", range(1, len(LADDER) + 1))
def test_each_step_is_jittered_within_15_percent(attempt):
    rng = random.Random(attempt)
    step = LADDER[attempt - 1]
    delays = [
        retry.delay_s(attempt, retry_after_s=None, rng=rng, ladder_s=LADDER)
        for _ in range(200)
    ]
    assert all(d is not None and step * 0.85 <= d <= step * 1.15 for d in delays)
    assert len(set(delays)) > 100  # spread out, not one value


def test_after_the_last_attempt_there_is_no_next():
    rng = random.Random(1)
    assert (
        retry.delay_s(len(LADDER) + 1, retry_after_s=None, rng=rng, ladder_s=LADDER)
        is None
    )


def test_retry_after_lengthens_but_never_shortens_and_is_capped_at_a_day():
    rng = random.Random(2)
    assert retry.delay_s(1, retry_after_s=120, rng=rng, ladder_s=LADDER) == 120
    short = retry.delay_s(2, retry_after_s=1, rng=rng, ladder_s=LADDER)
    assert short is not None
    assert short >= 300 * 0.85
    assert retry.delay_s(1, retry_after_s=10**9, rng=rng, ladder_s=LADDER) == 86_400


def test_retry_after_parses_seconds_and_http_dates():
    assert retry.parse_retry_after("120", now=NOW) == 120
    date = format_datetime(NOW + timedelta(minutes=10), usegmt=True)
    assert retry.parse_retry_after(date, now=NOW) == 600
    past = format_datetime(NOW - timedelta(minutes=10), usegmt=True)
    assert retry.parse_retry_after(past, now=NOW) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_ignored(value):
    assert retry.parse_retry_after(value, now=NOW) is None
