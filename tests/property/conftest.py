"""Hypothesis profiles for the property tests: `ci` (default, ~50 examples) and `full`
(~500), chosen with HYPOTHESIS_PROFILE=full (or CTRIP_PROPERTY_PROFILE=full)."""

from __future__ import annotations

import contextlib
import os
import warnings

import eth_account
import py_ecc
from hypothesis import HealthCheck, settings

# py_ecc (loaded lazily by the key ring) raises the recursion limit on import; import it
# up front so Hypothesis does not see the limit change inside a test.
_ = (eth_account, py_ecc)
# Hypothesis imports libcst to print a patch for a failing example; libcst trips a
# DeprecationWarning that `filterwarnings = error` would turn into an INTERNALERROR
# hiding the real failure. Import it once here with that warning silenced.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
    ],
}
# No example database in CI runs: no .hypothesis/ left in the working tree.
settings.register_profile("ci", max_examples=50, database=None, **_COMMON)
settings.register_profile("full", max_examples=500, **_COMMON)
settings.register_profile("dev", max_examples=10, database=None, **_COMMON)
settings.load_profile(
    os.environ.get("CTRIP_PROPERTY_PROFILE")
    or os.environ.get("HYPOTHESIS_PROFILE")
    or "ci"
)
