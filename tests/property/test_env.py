"""Environment settings: any value of a numeric CTRIP_* variable either works or is
refused with exit 2 by a message naming the variable; nothing is written."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from tests.property._support import all_output, assert_clean_usage_error, row_counts

NUMERIC_ENV = [
    "CTRIP_DEFAULT_EXPIRES_IN_S",
    "CTRIP_UNDERPAYMENT_TOLERANCE_BPS",
    "CTRIP_SWEEP_MAX_FEE_SHARE_BPS",
    "CTRIP_SWEEP_STUCK_AFTER_S",
    "CTRIP_SWEEP_FEE_BUMP_BPS",
    "CTRIP_STATUS_INTERVAL_S",
    "CTRIP_STATUS_STALE_FACTOR",
    "CTRIP_STATUS_MAX_LAG_S",
    "CTRIP_STATUS_PROBE_TIMEOUT_S",
]
env_value = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**12).map(str),
    st.sampled_from(
        ["", "0", "-1", "1.5", "abc", "1e3", " 7 ", "0x10", "99999999999999999999"]
    ),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=8,
    ),
)


@given(name=st.sampled_from(NUMERIC_ENV), value=env_value)
@example(name="CTRIP_DEFAULT_EXPIRES_IN_S", value="999999999")
def test_numeric_env_value_works_or_is_named(ctrip, cli_env, name, value):
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = ctrip(
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1",
        env={name: value},
    )
    if result.exit_code == 0:
        return
    assert_clean_usage_error(result)
    assert name in re.sub(r"\s+", "", all_output(result))
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before
