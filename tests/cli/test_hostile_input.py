"""The CLI against hostile input (issue cases 1, 3, 5, 6 and 7), on SQLite and
PostgreSQL: one line naming the value, exit 2, no traceback, nothing written, and no
secret echoed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import JobRun
from tests.conftest import REPO
from tests.property._support import all_output, assert_clean_usage_error, row_counts

CREATE = ("payments", "create", "--chain", "local", "--asset", "ETH", "--amount", "1")
LONG_HOST = ".".join(["a" * 60] * 5)


def _refused(ctrip, cli_env, *args, env=None, needles=()):
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = ctrip(*args, env=env)
    assert_clean_usage_error(result, *needles)
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before
    return all_output(result)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        (f"https://{LONG_HOST}/hook", "longer than 253"),
        ("https://x.example/" + "p" * 2_100, "longer than 2048"),
        ("https://[::1/", "not a valid URL"),
        ("https://h:99999/", "port '99999'"),
        ("https://h:abc/", "port 'abc'"),
        ("https://h:0/", "port '0'"),
        ("https://::1/hook", "must be in brackets"),
        ("https://[fe80::1%25eth0]/", "zone ids"),
        ("https://a b.example/", "spaces"),
    ],
)
def test_webhook_urls_are_parsed_fully_at_creation(ctrip, cli_env, url, needle):
    _refused(ctrip, cli_env, *CREATE, "--webhook-url", url, needles=[needle])


def test_a_refused_webhook_url_is_shown_without_credentials_or_query(ctrip, cli_env):
    url = "https://merchant:hunter2@shop.example:99999/hook?token=s3cret"
    text = _refused(ctrip, cli_env, *CREATE, "--webhook-url", url)
    assert "https://shop.example:99999/hook?…" in text
    assert "hunter2" not in text
    assert "s3cret" not in text


def test_a_bad_default_webhook_url_is_not_echoed_whole(ctrip, cli_env):
    url = "https://merchant:hunter2@[::1/hook?token=s3cret"
    text = _refused(
        ctrip,
        cli_env,
        *CREATE,
        env={"CTRIP_WEBHOOK_URL": url},
        needles=["CTRIP_WEBHOOK_URL"],
    )
    assert "hunter2" not in text
    assert "s3cret" not in text


def test_payment_urls_are_redacted_in_show_and_list_like_webhooks_list(ctrip):
    url = "https://merchant:hunter2@shop.example:8443/hook?token=s3cret"
    created = ctrip(*CREATE, "--webhook-url", url, "--json")
    assert created.exit_code == 0, created.output
    payment = json.loads(created.stdout)
    shown = "https://shop.example:8443/hook?…"
    assert payment["webhook_url"] == shown
    outputs = [created.stdout]
    for args in (
        ("payments", "show", payment["id"], "--json"),
        ("payments", "list", "--json"),
        ("payments", "show", payment["id"]),
    ):
        result = ctrip(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert json.loads(outputs[1])["webhook_url"] == shown
    assert json.loads(outputs[2])[0]["webhook_url"] == shown
    for text in outputs:
        assert "hunter2" not in text
        assert "s3cret" not in text


@pytest.mark.parametrize(
    ("reference", "needle"),
    [
        ("\udcff", "not UTF-8"),  # what Python makes of the argv byte 0xff
        ("invoice\u202e", "U+202E"),
        ("a\u200bb", "U+200B"),
        ("a\u2028b", "U+2028"),
        ("a\x1b[31mb", "U+001B"),
        ("x" * 256, "at most 255"),
    ],
)
def test_references_refuse_undecodable_control_and_format_characters(
    ctrip, cli_env, reference, needle
):
    _refused(ctrip, cli_env, *CREATE, "--reference", reference, needles=[needle])


def test_printable_unicode_references_are_kept(ctrip):
    result = ctrip(*CREATE, "--reference", "Bestellung Nr. 7 – Müller 東京", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reference"] == "Bestellung Nr. 7 – Müller 東京"


@pytest.mark.parametrize(
    "args",
    [
        ("payments", "show", "\udcff"),
        ("payments", "show", "pay_" + "0" * 100),
        ("webhooks", "retry", "\udcff"),
    ],
)
def test_ids_that_cannot_exist_are_refused_before_the_database(ctrip, cli_env, args):
    _refused(ctrip, cli_env, *args, needles=["not an id"])


def test_an_undecodable_argument_from_a_real_argv_is_a_usage_error(cli_env):
    # Bytes, as a shell passes $'\xff': Python decodes them to a lone surrogate.
    result = subprocess.run(
        [sys.executable, "-m", "ctrip_cli", "payments", "show", b"\xff"],
        env={**os.environ, **cli_env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr
    assert b"not an id" in result.stderr


@pytest.mark.parametrize("budget", ["99999999d", "25h", "86401s"])
def test_an_overlong_time_budget_is_a_usage_error(ctrip, cli_env, budget):
    _refused(
        ctrip, cli_env, "deliver-webhooks", "--time-budget", budget, needles=[budget]
    )


def test_an_overlong_expiry_is_a_usage_error(ctrip, cli_env):
    _refused(
        ctrip, cli_env, *CREATE, "--expires-in", "999999999d", needles=["--expires-in"]
    )


def test_a_chains_file_that_is_not_utf8_is_refused(ctrip, cli_env, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("chains:\n  caf\xe9: {}\n".encode("latin-1"))
    _refused(ctrip, cli_env, "--chains", str(path), *CREATE, needles=["not UTF-8"])


def test_a_deeply_nested_chains_file_is_refused_quickly(ctrip, cli_env, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("chains: " + "[" * 5_000 + "]" * 5_000)
    _refused(ctrip, cli_env, "--chains", str(path), *CREATE, needles=["nested deeper"])


def test_a_mnemonic_file_that_is_not_utf8_is_refused(ctrip, cli_env, tmp_path):
    path = tmp_path / "mnemonic"
    path.write_bytes(b"\xff\xfe abandon")
    path.chmod(0o600)
    env = {"CTRIP_MNEMONIC": "", "CTRIP_MNEMONIC_FILE": str(path)}
    _refused(ctrip, cli_env, *CREATE, env=env, needles=["CTRIP_MNEMONIC_FILE", "UTF-8"])


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql+psycopg2://u:hunter2@127.0.0.1:notaport/x", "not a database URL"),
        ("postgresql+psycopg2://u:hunter2@[::1/x", "not a database URL"),
        ("postgresql+psycopg2://u:hunter2@127.0.0.1:5432/x?bogus=1", "bogus"),
        ("postgresql+psycopg2://u:hunter2@127.0.0.1:0/x", "port 0"),
        ("postgresql+asyncpg://u:hunter2@127.0.0.1/x", "postgresql+psycopg2"),
        ("mysql://u:hunter2@127.0.0.1/x", "unsupported database"),
        ("sqlite:///ctrip.db?mode=ro", "take no ?options"),
    ],
)
def test_bad_database_urls_are_usage_errors_without_the_password(
    ctrip, cli_env, url, needle
):
    result = ctrip("status", env={"CTRIP_DATABASE_URL": url})
    assert_clean_usage_error(result, "CTRIP_DATABASE_URL", needle)
    assert "hunter2" not in all_output(result)


def test_a_sqlite_file_that_is_not_a_database_is_a_usage_error(ctrip, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    result = ctrip("status", env={"CTRIP_DATABASE_URL": f"sqlite:///{path}"})
    assert_clean_usage_error(result, "CTRIP_DATABASE_URL", "not a database")
    assert path.read_text() == "not a database\n" * 100


def test_an_unexpected_error_of_a_pass_is_recorded_in_job_runs(
    ctrip, cli_env, monkeypatch
):
    from ctrip_cli.jobs import deliver_webhooks as job

    def broken(*args, **kwargs):
        raise RuntimeError("a bug whose text holds a secret: hunter2")

    monkeypatch.setattr(job, "run", broken)
    with pytest.raises(RuntimeError):
        ctrip("deliver-webhooks")
    engine = db_engine.make_engine(cli_env["CTRIP_DATABASE_URL"])
    with Session(engine) as session:
        [run] = session.scalars(sa.select(JobRun)).all()
    engine.dispose()
    assert (run.job, run.outcome) == ("deliver-webhooks", "error")
    assert run.error == "unexpected RuntimeError; see the pass's stderr"
