"""The retry schedule: a jittered ladder, `Retry-After` within limits, and when to give up.

Pure functions; the randomness source is passed in so tests are deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime

JITTER = 0.15
MAX_RETRY_AFTER_S = 86_400.0


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date).

    Returns None when the header is absent or unreadable.
    """
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, (at - now).total_seconds())


def delay_s(
    attempt_in_round: int,
    *,
    retry_after_s: float | None,
    rng: random.Random,
    ladder_s: Sequence[float],
) -> float | None:
    """Seconds until the next attempt after failed attempt number `attempt_in_round`.

    `ladder_s` is WebhookSettings.retry_ladder_s (about 5 s, 5 min, 30 min, 2 h, 5 h,
    10 h, 10 h). Returns None when that was the last attempt. The ladder step gets ±15 % jitter so
    retries of many events spread out. A `Retry-After` is honoured when it asks for
    more than the step, up to 24 h; it can never shorten the ladder.
    """
    if attempt_in_round > len(ladder_s):
        return None
    step = ladder_s[attempt_in_round - 1]
    jittered = step * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s is not None and retry_after_s > jittered:
        return min(retry_after_s, max(MAX_RETRY_AFTER_S, step))
    return jittered
