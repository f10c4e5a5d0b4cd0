"""Named statements about passes: job runs, the scan cursor and the scanned-block window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    JobRun,
    ScanCursor,
    ScannedBlock,
)
from ctrip_cli.db.queries._sql import (
    _BLOCKS,
    _is_pg,
)


def get_cursor(session: Session, chain: str) -> ScanCursor | None:
    return session.get(ScanCursor, chain)


def add_job_run(
    session: Session,
    *,
    job: str,
    chain: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    summary: str | None,
    error: str | None,
) -> None:
    session.add(
        JobRun(
            job=job,
            chain=chain,
            started_at=started_at,
            finished_at=finished_at,
            outcome=outcome,
            summary=summary,
            error=error,
        )
    )


def last_job_runs(session: Session, *, outcome: str) -> dict[tuple[str, str], JobRun]:
    """The latest run with `outcome` for every (job, chain)."""
    latest = (
        select(JobRun.job, JobRun.chain, func.max(JobRun.id).label("id"))
        .where(JobRun.outcome == outcome)
        .group_by(JobRun.job, JobRun.chain)
        .subquery()
    )
    rows = session.scalars(select(JobRun).join(latest, JobRun.id == latest.c.id))
    return {(r.job, r.chain): r for r in rows}


def cursor_position(session: Session, chain: str) -> tuple[int, str] | None:
    row = session.execute(
        select(ScanCursor.block_number, ScanCursor.block_hash).where(
            ScanCursor.chain == chain
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def set_cursor(
    session: Session,
    chain: str,
    number: int,
    block_hash: str,
    now: datetime,
    block_time: datetime | None = None,
) -> None:
    """Upsert the chain's cursor (`block_time`: the block's timestamp, if known)."""
    values = {
        "block_number": number,
        "block_hash": block_hash,
        "block_time": block_time,
        "updated_at": now,
    }
    stmt: Any = (pg_insert if _is_pg(session) else sqlite_insert)(ScanCursor).values(
        chain=chain, **values
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["chain"], set_=values))


def cursor_time(session: Session, chain: str) -> tuple[int, datetime | None] | None:
    """(cursor block, its timestamp or None when unknown); None before the first scan."""
    row = session.execute(
        select(ScanCursor.block_number, ScanCursor.block_time).where(
            ScanCursor.chain == chain
        )
    ).first()
    return None if row is None else (int(row[0]), row[1])


def scanned_hashes(session: Session, chain: str, *, since: int) -> dict[int, str]:
    stmt = select(ScannedBlock.number, ScannedBlock.hash).where(
        ScannedBlock.chain == chain, ScannedBlock.number >= since
    )
    return {int(n): str(h) for n, h in session.execute(stmt)}


def replace_scanned_blocks(
    session: Session,
    chain: str,
    blocks: Sequence[tuple[int, str, str]],
    *,
    keep_from: int,
) -> None:
    """Upsert (number, hash, parent_hash) of `blocks`; forget blocks below `keep_from`."""
    session.execute(
        delete(ScannedBlock).where(
            ScannedBlock.chain == chain, ScannedBlock.number < keep_from
        )
    )
    if not blocks:
        return
    stmt: Any = (pg_insert if _is_pg(session) else sqlite_insert)(_BLOCKS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["chain", "number"],
        set_={"hash": stmt.excluded.hash, "parent_hash": stmt.excluded.parent_hash},
    )
    rows = [
        {"chain": chain, "number": n, "hash": h, "parent_hash": p} for n, h, p in blocks
    ]
    session.execute(stmt, rows)


def forget_blocks_above(session: Session, chain: str, number: int) -> None:
    session.execute(
        delete(ScannedBlock).where(
            ScannedBlock.chain == chain, ScannedBlock.number > number
        )
    )
