"""The CLI's runtime: settings, consoles, database and chain handles, the one error edge."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from ctrip_cli.errors import CtripError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from ctrip_cli.config import Settings
    from ctrip_cli.jobs.passes import Pass

# SQLAlchemy, pydantic, Rich and the chain modules are imported inside the methods that
# use them, so `ctrip --help` stays fast.

R = TypeVar("R")
log = logging.getLogger("ctrip")


class Runtime:
    """Built by the root callback; commands reach it as `ctx.obj`."""

    def __init__(
        self,
        *,
        chains_file: Path | None,
        out: Console | None = None,
        err: Console | None = None,
        log_json: bool = False,
        settings: Settings | None = None,
    ) -> None:
        self._chains_file = chains_file
        self._settings = settings
        self._engine: Engine | None = None
        self._out, self._err, self.log_json = out, err, log_json

    @property
    def out(self) -> Console:
        """The stdout console (made on first use: `--json` output never needs it)."""
        if self._out is None:
            from rich.console import Console

            self._out = Console()
        return self._out

    @property
    def err(self) -> Console:
        """The stderr console, for diagnostics."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True)
        return self._err

    @property
    def settings(self) -> Settings:
        """Validated on first use, so `--help` works even with a broken chains.yaml."""
        if self._settings is None:
            from ctrip_cli.config import load_settings

            self._settings = load_settings(chains_file=self._chains_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from ctrip_cli.db import engine as db_engine

            self._engine = db_engine.make_engine(
                self.settings.database_url.get_secret_value()
            )
        return self._engine

    def now(self) -> datetime:
        return datetime.now(UTC)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """The one error edge: CtripError → message on stderr and its exit code."""
        from ctrip_cli.db import engine as db_engine

        try:
            with db_engine.translate_errors():
                yield
        except CtripError as exc:
            from rich.markup import escape

            self.err.print(
                f"[red]{type(exc).__name__}[/]: {escape(str(exc))}",
                markup=True,
                highlight=False,
            )
            cause = exc.__cause__
            while cause is not None:
                self.err.print(
                    f"  caused by {type(cause).__name__}: {cause}", markup=False
                )
                cause = cause.__cause__
            raise typer.Exit(exc.exit_code) from None

    @contextmanager
    def open_session(self) -> Iterator[Session]:
        from ctrip_cli.db import engine as db_engine

        with db_engine.session_factory(self.engine)() as session:
            yield session

    @contextmanager
    def open_chain(self, name: str) -> Iterator[Any]:
        """A chain client for `name`; the chain modules load only here (they are slow).

        The endpoint limits learnt by earlier passes are loaded first, and what this
        pass learnt is saved when it closes the chain (even when the pass failed: a
        limit found by failing is worth keeping).
        """
        from ctrip_cli.chain import evm
        from ctrip_cli.chain.limits import EndpointLimits
        from ctrip_cli.db import rpc_limits

        known = rpc_limits.load(self.engine, name)
        client = evm.EvmChain.open(
            self.settings.chain(name),
            limits={k: EndpointLimits.from_json(d) for k, d in known.items()},
        )
        try:
            yield client
        finally:
            client.close()
            if client.rpc.limits_changed:
                self._save_limits(name, client)

    def _save_limits(self, name: str, client: Any) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        from ctrip_cli.db import rpc_limits

        docs = {k: v.to_json() for k, v in client.rpc.learnt_limits().items()}
        try:
            rpc_limits.save(self.engine, name, docs, self.now())
        except SQLAlchemyError as exc:  # the pass's own outcome matters more
            log.warning("could not keep the learnt RPC limits: %s", type(exc).__name__)

    def run_job(self, job: Pass[R], scope: str, body: Callable[[Session], R]) -> R:
        """Run `body` under the pass's (lock, scope) and record the run in job_runs.

        A held lock makes the pass's skipped result (`jobs.passes`), recorded too.

        Every failure is recorded, so `status` sees it: a CtripError with its message,
        anything else (a bug, whose traceback follows) by its type only, as its text
        may hold values the pass was handling.
        """
        from ctrip_cli.db import engine as db_engine
        from ctrip_cli.db import locks

        name, started = job.name, self.now()
        try:
            with (
                db_engine.translate_errors(),
                locks.try_job_lock(self.engine, job.lock, scope) as held,
            ):
                if not held:
                    result = job.skipped(scope, "lock held")
                    self._record(name, scope, started, "skipped", result, None)
                    return result
                with self.open_session() as session:
                    result = body(session)
        except CtripError as exc:
            self._record(
                name, scope, started, "error", None, f"{type(exc).__name__}: {exc}"
            )
            raise
        except Exception as exc:
            error = f"unexpected {type(exc).__name__}; see the pass's stderr"
            self._record(name, scope, started, "error", None, error)
            raise
        self._record(name, scope, started, "ok", result, None)
        return result

    def _record(
        self,
        job: str,
        scope: str,
        started: datetime,
        outcome: str,
        result: Any,
        error: str | None,
    ) -> None:
        from ctrip_cli.cli.logs import log_pass
        from ctrip_cli.db import queries

        data = to_jsonable(result) if result is not None else None
        summary = json.dumps(data) if data is not None else None
        finished = self.now()
        log_pass(
            log,
            job=job,
            chain=scope,
            outcome=outcome,
            duration_s=(finished - started).total_seconds(),
            result=data,
            error=error,
        )
        try:
            with self.open_session() as session, session.begin():
                queries.add_job_run(
                    session,
                    job=job,
                    chain=scope,
                    started_at=started,
                    finished_at=finished,
                    outcome=outcome,
                    summary=summary,
                    error=error,
                )
        except Exception as exc:
            if outcome != "error":
                raise
            log.warning("could not record the failed run: %s", type(exc).__name__)
        self._publish_metrics()

    def _publish_metrics(self) -> None:
        """After each pass, refresh the metrics textfile / Pushgateway if configured."""
        cfg = self.settings.status
        if cfg.metrics_textfile is None and cfg.metrics_pushgateway is None:
            return
        from sqlalchemy.exc import SQLAlchemyError

        from ctrip_cli import metrics

        try:
            with self.open_session() as session:
                metrics.publish(session, self.settings, now=self.now())
        except (OSError, ValueError, CtripError, SQLAlchemyError) as exc:
            # Metrics are best effort: they never turn a pass into a failure.
            log.warning("could not publish metrics: %s", type(exc).__name__)

    def show(
        self,
        renderable: RenderableType | Callable[[], RenderableType],
        data: Any,
        *,
        as_json: bool,
    ) -> None:
        """Print `data` as one JSON object, or the human view, on stdout."""
        if as_json:
            sys.stdout.write(json.dumps(to_jsonable(data)) + "\n")
            sys.stdout.flush()
        else:
            self.out.print(renderable() if callable(renderable) else renderable)


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts and datetimes to RFC 3339; ints stay ints."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
