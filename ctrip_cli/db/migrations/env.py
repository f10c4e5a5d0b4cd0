"""Alembic environment: runs on the connection that `ctrip db upgrade` hands over."""

from __future__ import annotations

from alembic import context

from ctrip_cli.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` on the command line
    raise SystemExit("run migrations with `ctrip db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
