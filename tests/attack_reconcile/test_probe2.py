from __future__ import annotations

from tests import forwarders as fw
from tests.attack_reconcile.conftest import ETH, AttackWorld


def test_probe_bad_input(aw: AttackWorld) -> None:
    p = aw.create("ETH", "1")
    aw.anvil.set_balance(p["address"], ETH)
    aw.anvil.mine(4)
    aw.ok("scan")
    head = aw.anvil.block_number()
    for v in ["-1", "abc", "1e3", "0x10", str(10**30), str(head), str(head - 1), "", " 5", "5.0", "nan"]:
        d = aw.reconcile("--at-block", v)
        print(repr(v), d.rc, d.out[:200].replace("\n", " "), "|", d.err[-300:].replace("\n", " "))
    print(aw.query("SELECT count(*) FROM reconcile_differences"), aw.query("SELECT count(*) FROM reconcile_cursors"), aw.query("SELECT job, outcome FROM job_runs"))
    d = aw.reconcile("--at-block", str(head - 2))
    print("ok", d.rc, d.out[:300])
    d = aw.reconcile("--at-block", str(head - 3))
    print("below", d.rc, d.out[:300], d.err[-300:])
    d = aw.reconcile("--at-block", str(head - 2))
    print("same", d.rc, d.out[:300], d.err[-300:])


def test_probe_forwarder_then_trace_rescan_and_reorg(aw: AttackWorld) -> None:
    aw.yaml("    native_internal: reconcile")
    p = aw.create("ETH", "0.01")
    forward = fw.deploy(aw.anvil, "forward")
    aw.ok("scan")
    fw.pay_through(aw.anvil, forward, fw.forward_data(p["address"]), 10**16)
    t_block = aw.anvil.block_number()
    r = aw.round()
    print("credited", r["inflows_credited"], aw.payment_row(p["id"]))
    aw.yaml("    native_internal: traces")
    d = aw.ctrip("scan", "--chain", "local", "--json", "--from-block", str(aw.start))
    print("rescan", d.rc, d.out[:400], d.err[-300:])
    print(aw.payment_row(p["id"]), aw.differences())
    print(aw.query("SELECT source, block_number, amount FROM transfers"))
    r = aw.round()
    print("reconcile after rescan", r["inflows_credited"], r["shortfalls"], aw.payment_row(p["id"]))
    print(aw.differences())
    # now a reorg that removes the forward and re-mines it later
    aw.yaml("    native_internal: reconcile")
    depth = aw.anvil.block_number() - t_block + 1
    print("depth", depth)
