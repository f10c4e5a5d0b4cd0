"""Deployment files: Kubernetes manifests (schema + our rules), crontab, Dockerfile and
.env.example stay complete and consistent with the CLI and chains.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ctrip_cli.cli import app
from ctrip_cli.jobs import passes

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
PER_CHAIN = tuple(p.name for p in passes.REGISTRY if p.per_chain)
GLOBAL = tuple(p.name for p in passes.REGISTRY if not p.per_chain)
PROD_CHAINS = ("ethereum", "bsc", "polygon")
SECRET_VARS = {"CTRIP_DATABASE_URL", "CTRIP_MNEMONIC", "CTRIP_WEBHOOK_SECRET"}


def _docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in _docs() if d["kind"] == kind]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    job = (
        doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    )
    return dict(job["template"]["spec"])


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(doc)["containers"]
    return dict(container)


def _env(doc: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in _container(doc).get("env", [])}


def test_every_manifest_passes_the_kubernetes_schema():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = [(name, d) for name, d in _docs() if d["kind"] != "Kustomization"]
    assert len(docs) >= 15
    for name, doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        assert doc["metadata"]["name"], name


def test_one_cronjob_per_pass_and_chain_with_the_safety_settings():
    cronjobs = _of_kind("CronJob")
    found = set()
    for cj in cronjobs:
        spec = cj["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] < 60
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        pod = _pod(cj)
        assert pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert _container(cj)["securityContext"]["allowPrivilegeEscalation"] is False
        args = _container(cj)["args"]
        chain = args[args.index("--chain") + 1] if "--chain" in args else None
        found.add((args[0], chain))
    expected = {(p, c) for p in PER_CHAIN for c in PROD_CHAINS}
    assert expected | {(p, None) for p in GLOBAL} | {("status", None)} == found


def test_secrets_come_from_the_secret_and_only_where_needed():
    for doc in [*_of_kind("CronJob"), *_of_kind("Job")]:
        env = _env(doc)
        for name in SECRET_VARS & set(env):
            assert set(env[name]) == {"name", "valueFrom"}, name
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "ctrip-secrets"
        command = _container(doc)["args"][0]
        assert "CTRIP_DATABASE_URL" in env
        assert "CTRIP_MNEMONIC" not in env  # a file: variables leak more easily
        assert ("CTRIP_MNEMONIC_FILE" in env) == (command == "sweep")
        assert ("CTRIP_WEBHOOK_SECRET" in env) == (command == "deliver-webhooks")
    env_map = next(
        d for d in _of_kind("ConfigMap") if d["metadata"]["name"] == "ctrip-env"
    )
    assert not SECRET_VARS & set(env_map["data"])


def test_sweep_reads_the_mnemonic_from_a_secret_file_only_it_can_read():
    sweeps = [d for d in _of_kind("CronJob") if _container(d)["args"][0] == "sweep"]
    assert sweeps
    for doc in sweeps:
        path = Path(_env(doc)["CTRIP_MNEMONIC_FILE"]["value"])
        pod = _pod(doc)
        mount = next(
            m
            for m in _container(doc)["volumeMounts"]
            if m["mountPath"] == str(path.parent)
        )
        assert mount["readOnly"] is True
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        secret = volume["secret"]
        assert secret["secretName"] == "ctrip-secrets"
        assert secret["items"] == [{"key": "mnemonic", "path": path.name}]
        assert secret["defaultMode"] == 0o400
        # The file's group is then the pod's own, which the permission check allows.
        context = pod["securityContext"]
        assert context["fsGroup"] == context["runAsGroup"] == context["runAsUser"]


def test_configmap_chains_are_the_repository_chains():
    chains = next(
        d for d in _of_kind("ConfigMap") if d["metadata"]["name"] == "ctrip-chains"
    )
    shipped = yaml.safe_load((REPO / "chains.yaml").read_text())
    assert yaml.safe_load(chains["data"]["chains.yaml"]) == shipped


def test_db_upgrade_job_and_kustomization():
    (job,) = _of_kind("Job")
    assert _container(job)["args"] == ["db", "upgrade"]
    assert job["spec"]["activeDeadlineSeconds"] > 0
    (kustomization,) = _of_kind("Kustomization")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file()


def test_every_command_in_the_deployment_files_parses():
    runner = CliRunner()
    commands = [_container(d)["args"] for d in [*_of_kind("CronJob"), *_of_kind("Job")]]
    for line in _crontab_commands():
        commands.append(line.split("ctrip ", 1)[1].split(" >")[0].split())
    for args in commands:
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)


def _crontab_commands() -> list[str]:
    lines = (REPO / "crontab.example").read_text().splitlines()
    return [
        line for line in lines if line and not line.startswith("#") and "ctrip " in line
    ]


def test_crontab_runs_every_pass_for_every_shipped_chain():
    chains = yaml.safe_load((REPO / "chains.yaml").read_text())["chains"]
    lines = _crontab_commands()
    for line in lines:
        assert len(line.split()) > 5
        assert re.match(r"^([0-9*/,-]+ ){5}", line), line
        assert "flock" not in line
    for chain in chains:
        for p in PER_CHAIN:
            assert any(f"ctrip {p} --chain {chain} " in line for line in lines), (
                p,
                chain,
            )
    for p in GLOBAL:
        assert any(f"ctrip {p} " in line for line in lines), p
    assert any("ctrip status --check" in line for line in lines)


def test_dockerfile_is_multi_stage_slim_and_non_root():
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM python:3\.11-slim", text, re.MULTILINE)) == 2
    (user,) = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["ctrip"]' in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".env", "tests", "*.db"} <= set(ignored)


def test_the_image_installs_hash_pinned_dependencies_only():
    text = (REPO / "Dockerfile").read_text()
    assert "--require-hashes" in text
    assert "-r /tmp/requirements.lock" in text
    assert re.search(r"pip install [^\n]*--no-deps /wheels/", text)
    lock = (REPO / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.MULTILINE)
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", lock, flags=re.MULTILINE)[1:]
    assert len(pins) == len(blocks) > 20
    assert all("--hash=sha256:" in block for block in blocks)
    names = {name.lower().replace("_", "-") for name, _ in pins}
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", dependency, maxsplit=1)[0].lower()
        assert name in names, name
    assert ("httpx", "0.28.1") in pins  # within the pin the SSRF guard is tested with
    assert "!requirements.lock" in (REPO / ".dockerignore").read_text().split()


def test_env_example_documents_every_ctrip_variable():
    sources = [*(REPO / "ctrip_cli").rglob("*.py"), REPO / "chains.yaml"]
    used = {v for p in sources for v in re.findall(r"CTRIP_[A-Z0-9_]+", p.read_text())}
    documented = set(
        re.findall(r"^#?(CTRIP_[A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M)
    )
    assert used - documented == set()
