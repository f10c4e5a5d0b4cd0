"""`ctrip scan --chain C`: one pass reading new blocks up to the head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app
from ctrip_cli.cli.runtime import Runtime
from ctrip_cli.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from ctrip_cli.jobs import scan as scan_job

BAR_MIN_BLOCKS = 5_000


@app.command()
def scan(
    ctx: typer.Context,
    chain: Annotated[str, typer.Option(help="Chain name from chains.yaml.")],
    from_block: Annotated[
        int | None,
        typer.Option(help="Rescan or backfill from this block (idempotent)."),
    ] = None,
    to_block: Annotated[int | None, typer.Option(help="Stop at this block.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Read new blocks up to the head, record matching transfers, mark payments
    detected, rewind on reorgs.

    Example: [bold]ctrip scan --chain bsc --json[/]
    """
    from ctrip_cli.jobs import passes  # here, so `ctrip --help` stays fast
    from ctrip_cli.jobs import scan as scan_job

    rt: Runtime = ctx.obj
    with rt.errors():
        _check_range(from_block, to_block)
        cfg, settings = rt.settings.chain(chain), rt.settings.scan
        with rt.open_chain(chain) as client, _progress(rt) as progress:
            result = rt.run_job(
                passes.SCAN,
                chain,
                lambda session: scan_job.run(
                    session,
                    client,
                    cfg=cfg,
                    now=rt.now(),
                    settings=settings,
                    from_block=from_block,
                    to_block=to_block,
                    progress=progress,
                ),
            )
    rt.show(lambda: _view(result), result, as_json=json_)


def _check_range(from_block: int | None, to_block: int | None) -> None:
    for name, value in (("--from-block", from_block), ("--to-block", to_block)):
        if value is not None and value < 0:
            raise InputError(f"{name} {value}: must be a block number >= 0")
    if from_block is not None and to_block is not None and to_block < from_block:
        raise InputError(f"--to-block {to_block}: is below --from-block {from_block}")


@contextmanager
def _progress(rt: Runtime) -> Iterator[scan_job.Progress | None]:
    """A Rich bar on stderr, only on a terminal and only for long ranges."""
    if not rt.err.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=rt.err, transient=True) as bar:
        task = bar.add_task("scanning", total=None, visible=False)

        def update(done: int, total: int) -> None:
            if total >= BAR_MIN_BLOCKS:
                bar.update(task, completed=done, total=total, visible=True)

        yield update


def _view(r: scan_job.ScanResult) -> Table | str:
    from rich.table import Table

    if r.skipped:
        return f"scan {r.chain}: skipped ({r.skipped})"
    table = Table("chain", "blocks", "head", "transfers", "detected", "late", "reorged")
    blocks = "-" if r.from_block is None else f"#{r.from_block:,}-#{r.to_block:,}"
    if r.lagging:
        blocks = "node lagging"
    table.add_row(
        r.chain,
        blocks,
        f"{r.head:,}" if r.head is not None else "-",
        str(r.transfers_recorded),
        str(r.payments_detected),
        str(r.payments_late),
        str(r.payments_reorged),
    )
    return table
