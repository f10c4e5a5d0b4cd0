"""The pass registry: every pass that cron runs under a lock, in one place.

A pass is named once here: its command (also its lock, its `job_runs.job` and its
`pass` metrics label), whether it runs per chain, its frozen result type and the
result it reports when its lock is held. The CLI, `status`, metrics and the
deployment files (crontab.example, deploy/kubernetes) follow this list; a test
checks that the deployment files run every pass. The job modules load only when a
pass runs or reports, so `status` and `--help` stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ctrip_cli.db.locks import JobLock

if TYPE_CHECKING:
    from ctrip_cli.jobs.confirm import ConfirmResult
    from ctrip_cli.jobs.deliver_webhooks import DeliverWebhooksResult
    from ctrip_cli.jobs.reconcile import ReconcileResult
    from ctrip_cli.jobs.scan import ScanResult
    from ctrip_cli.jobs.sweep import SweepResult

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Pass(Generic[R]):
    """One pass. `result` is `module:Class`; its fields start `job, chain, skipped`."""

    lock: JobLock
    per_chain: bool
    result: str
    # How often cron runs it, if less often than CTRIP_STATUS_INTERVAL_S: `status
    # --check` judges its staleness by the longer of the two.
    interval_s: int | None = None

    @property
    def name(self) -> str:
        return str(self.lock)

    def result_type(self) -> type[R]:
        module, _, cls = self.result.partition(":")
        return cast("type[R]", getattr(importlib.import_module(module), cls))

    def skipped(self, scope: str, reason: str) -> R:
        """The result of a pass that did not run, e.g. `reason="lock held"`."""
        fields: dict[str, Any] = {"job": self.name, "skipped": reason}
        fields["chain"] = scope if self.per_chain else None
        return self.result_type()(**fields)


SCAN: Pass[ScanResult] = Pass(
    JobLock.SCAN, per_chain=True, result="ctrip_cli.jobs.scan:ScanResult"
)
CONFIRM: Pass[ConfirmResult] = Pass(
    JobLock.CONFIRM, per_chain=True, result="ctrip_cli.jobs.confirm:ConfirmResult"
)
SWEEP: Pass[SweepResult] = Pass(
    JobLock.SWEEP, per_chain=True, result="ctrip_cli.jobs.sweep:SweepResult"
)
DELIVER_WEBHOOKS: Pass[DeliverWebhooksResult] = Pass(
    JobLock.DELIVER_WEBHOOKS,
    per_chain=False,
    result="ctrip_cli.jobs.deliver_webhooks:DeliverWebhooksResult",
)
RECONCILE: Pass[ReconcileResult] = Pass(
    JobLock.RECONCILE,
    per_chain=True,
    result="ctrip_cli.jobs.reconcile:ReconcileResult",
    interval_s=600,  # crontab.example and the CronJobs: every 10 minutes
)

# In the order `status` shows them.
REGISTRY: tuple[Pass[Any], ...] = (SCAN, CONFIRM, SWEEP, RECONCILE, DELIVER_WEBHOOKS)


def by_name(name: str) -> Pass[Any]:
    """The registered pass called `name` (a KeyError names a pass never registered)."""
    return {p.name: p for p in REGISTRY}[name]


def scopes(p: Pass[Any], chains: list[str]) -> list[str]:
    """The lock scopes `p` runs under: each chain, or the one global scope ""."""
    return list(chains) if p.per_chain else [""]
