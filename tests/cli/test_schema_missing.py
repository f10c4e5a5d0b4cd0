"""A database without the schema points the operator at `ctrip db upgrade`."""

from __future__ import annotations


def test_missing_schema_says_run_db_upgrade(ctrip, tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = ctrip("payments", "list", env={"CTRIP_DATABASE_URL": empty})
    assert result.exit_code == 1
    assert "ctrip db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
