"""`ctrip payments create | list | show` through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ctrip_cli.db import engine as db_engine


def _count_payments(url: str) -> int:
    engine = db_engine.make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM payments")).scalar_one()
    engine.dispose()
    return int(n)


def test_create_prints_contract_shape(ctrip):
    result = ctrip(
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1.5",
        "--json",
    )
    assert result.exit_code == 0, result.output
    payment = json.loads(result.stdout)
    assert payment["amount"] == "1.5"
    assert payment["amount_base_units"] == "1500000000000000000"
    assert payment["amount_received_base_units"] == "0"
    assert payment["status"] == "pending"
    assert payment["late"] is False
    assert payment["chain"] == "local"
    assert payment["asset"] == "ETH"
    assert payment["address"].startswith("0x")
    assert len(payment["address"]) == 42
    for key in ("id", "reference", "created_at", "expires_at"):
        assert key in payment


def test_show_has_transfers_and_history(ctrip):
    created = json.loads(
        ctrip(
            "payments",
            "create",
            "--chain",
            "local",
            "--asset",
            "USDC",
            "--amount",
            "12.5",
            "--reference",
            "order-7",
            "--expires-in",
            "2h",
            "--json",
        ).stdout
    )
    shown = ctrip("payments", "show", created["id"], "--json")
    detail = json.loads(shown.stdout)
    assert detail["reference"] == "order-7"
    assert detail["amount_base_units"] == "12500000"
    assert detail["transfers"] == []
    assert [h["to"] for h in detail["history"]] == ["pending"]
    listed = json.loads(ctrip("payments", "list", "--chain", "local", "--json").stdout)
    assert [p["id"] for p in listed] == [created["id"]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--amount", "1.0000000"], "more than 6 decimal places"),
        (["--amount", "0"], "greater than zero"),
        (["--amount", "-1"], "not a positive decimal"),
        (["--amount", "abc"], "'abc'"),
        (["--amount", "NaN"], "'NaN'"),
        (["--amount", "1e3"], "'1e3'"),
        (["--amount", "1", "--expires-in", "soon"], "--expires-in"),
        (["--amount", "1", "--webhook-url", "ftp://x"], "--webhook-url"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(ctrip, cli_env, args, needle):
    result = ctrip("payments", "create", "--chain", "local", "--asset", "USDC", *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert _count_payments(cli_env["CTRIP_DATABASE_URL"]) == 0


def test_unknown_chain_and_asset_are_named(ctrip):
    bad_chain = ctrip(
        "payments", "create", "--chain", "nope", "--asset", "ETH", "--amount", "1"
    )
    assert bad_chain.exit_code == 2
    assert "'nope'" in bad_chain.stderr
    bad_asset = ctrip(
        "payments", "create", "--chain", "local", "--asset", "DOGE", "--amount", "1"
    )
    assert bad_asset.exit_code == 2
    assert "'DOGE'" in bad_asset.stderr


def test_test_mnemonic_refused_on_real_chain(ctrip):
    test_words = "test test test test test test test test test test test junk"
    result = ctrip(
        "payments",
        "create",
        "--chain",
        "ethereum",
        "--asset",
        "USDT",
        "--amount",
        "1",
        env={"CTRIP_MNEMONIC": test_words},
    )
    assert result.exit_code == 2
    assert "test mnemonic" in result.stderr
    assert test_words not in result.output + result.stderr


def test_missing_mnemonic_is_a_config_error(ctrip):
    result = ctrip(
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1",
        env={"CTRIP_MNEMONIC": ""},
    )
    assert result.exit_code == 2
    assert "CTRIP_MNEMONIC" in result.stderr
