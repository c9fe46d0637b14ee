"""Cluster operations as an operator runs them, on real processes: decommissioning
under load, datanodes joining later, `dfs cluster up` stopped and started again.
(Failures and repair: test_healing.py; data dirs and restarts: test_servers.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from dfs.datadir import LOCK_NAME
from dfs.testing.cluster import free_port, read_until
from dfs.testing.faults import MiB, block_ids_on, check_all, locations, log_text, put_bytes, wait_state


def test_decommission_under_load_with_too_few_nodes_waits_for_a_new_one(make_cluster):
    """3 datanodes, replication 3: the leaving node's replicas have nowhere to go, so it
    stays decommissioning -- reads and writes going on -- until a 4th node joins, takes
    its copies, and only then is it decommissioned (it was at once, and switching it off
    left every block with 2 replicas)."""
    c = make_cluster(datanodes=3)
    files = {f"/old{i}": os.urandom(MiB + i) for i in range(3)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    leaving = c.datanodes[0]
    held = block_ids_on(leaving)
    stop, errors, written = threading.Event(), [], {}

    def load() -> None:   # a writer and a reader all along
        client = c.client(retry_seconds=20)
        i = 0
        while not stop.is_set():
            try:
                data = os.urandom(200_000 + i)
                client.write_bytes(f"/new{i}", data)
                written[f"/new{i}"] = data
                assert client.read_bytes(f"/old{i % 3}") == files[f"/old{i % 3}"]
            except Exception as e:   # noqa: BLE001 - reported by the test
                errors.append(repr(e))
            i += 1

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        r = c.cli("admin", "decommission", leaving.address)
        assert r.returncode == 0, r.stderr
        # Accepted, but said at once that it cannot finish (it was only in the namenode's log).
        (line,) = r.stderr.decode().splitlines()     # the load's blocks too: at least those held before
        m = re.fullmatch(rf"dfs: admin decommission: {leaving.address}: warning: (\d+) of its blocks have "
                         r"replication up to 3 but only 2 other datanodes in service: it stays "
                         r"decommissioning until more join or the replication is lowered", line)
        assert m and int(m[1]) >= len(held), line
        since = len(written) + 1          # the next one may have begun before
        # Several monitor rounds: it holds replicas no other node can take.
        c.wait_for(lambda: len(written) >= since + 3, 30, "writes during the decommission")
        rep = c.report()
        assert {n["address"]: n["state"] for n in rep["live"]}[leaving.address] == "decommissioning"
        assert rep["pending_repair_bytes"] > 0
        assert rep["under_replicated"] >= len(held) and rep["missing"] == 0
        # Its replicas do not count toward the target (fsck said HEALTHY, 0 under-replicated).
        r = c.cli("fsck", "--json", "/old0")
        f = json.loads(r.stdout)
        assert r.returncode == 1 and (f["status"], f["missing"], f["corrupt"]) == ("DEGRADED", 0, 0), f
        assert f["under_replicated"] == f["decommissioning_replicas"] == f["blocks"] > 0, f
        f = json.loads(c.cli("fsck", "--json", "--locations", "/old0").stdout)
        assert [(b["live_replicas"], b["decommissioning_replicas"]) for b in f["details"][0]["blocks"]] == \
            [(2, 1)] * f["blocks"], f
        out = c.cli("fsck", "--locations", "/old0").stdout.decode()
        assert "live_repl=2 decommissioning_repl=1 [" in out, out
        assert f"{leaving.address}/" in out and " (decommissioning)" in out, out
        assert f" Decommissioning replicas:\t{f['blocks']}" in out, out
        assert all(leaving.address not in b["names"] for p in list(written)[since:] for b in locations(c, p))
        joined = c.add_datanode("/rack2")
        wait_state(c, leaving, "decommissioned", timeout=30)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not errors, errors
    assert held <= block_ids_on(joined)             # the new node took its copies
    c.kill(leaving)
    c.wait_for_status("HEALTHY", timeout=30)      # nothing was left short
    check_all(c, {**files, **written})


def test_cluster_up_stopped_with_ctrl_c_and_started_again_serves_the_old_files(tmp_path):
    """Two datanodes and no --replication: blocks are made at replication 2 (at 3, fsck
    said DEGRADED for good on a healthy cluster); restarted on the same --base-dir, it
    is ready only once the old files are readable."""
    port = free_port("127.0.0.1")
    base = str(tmp_path / "local")
    data = os.urandom(3 * MiB)

    def dfs(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dfs", "--namenode", f"127.0.0.1:{port}", *args],
                              capture_output=True, timeout=60, env={**os.environ, "DFS_RETRY_SECONDS": "0"}, **kw)

    for first in (True, False):
        p = subprocess.Popen([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", base,
                              "--datanodes", "2", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert b"Ctrl-C" in read_until(p, b"Ctrl-C", 90)
            if first:
                r = dfs("put", "-", "/kept", input=data)
                assert r.returncode == 0, r.stderr
                # The same --base-dir up twice: the second says why it cannot start.
                r = subprocess.run([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", base,
                                    "--datanodes", "2", "--port", str(free_port("127.0.0.1"))],
                                   capture_output=True, timeout=60)
                assert r.returncode == 1 and r.stderr.decode().splitlines() == [
                    f"dfs: cluster up: {base}: in use by another `dfs cluster up`"], r.stderr
            r = dfs("cat", "/kept")
            assert r.returncode == 0 and r.stdout == data, r.stderr
            r = dfs("fsck", "/")
            assert r.returncode == 0 and b"HEALTHY" in r.stdout, r.stdout
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=30) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_namenode_restarted_with_a_datanode_missing_stays_in_safe_mode_and_says_why(make_cluster):
    """Replication 1, one datanode down across a namenode restart: its blocks are not
    reported, so safe mode stays on; `safemode wait --timeout` gives up with the counts
    (it had no deadline, and `get` said only "waiting for block reports"); files on the
    other nodes read meanwhile; when the node is back, the wait ends and all read."""
    c = make_cluster(datanodes=3, replication=1)
    files = {f"/f{i}": os.urandom(300_000 + i) for i in range(6)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    missing = c.datanodes[0]
    on_missing = block_ids_on(missing)
    assert on_missing and len(on_missing) < len(files)
    block_of = {p: locations(c, p)[0]["block_id"] for p in files}
    c.kill(c.namenode)
    c.kill(missing)
    c.restart(c.namenode)
    why = (f"waiting for block reports: {len(files) - len(on_missing)} of {len(files)} blocks reported, "
           f"99.9% needed; 2 datanodes registered")
    c.wait_for(lambda: c.cli("admin", "safemode", "get").stdout.decode() == f"Safe mode is ON ({why})\n",
               30, "the other two datanodes' reports")
    # fsck says safe mode is on and counts the unreported blocks apart (it said CORRUPT: missing)
    r = c.cli("fsck", "--json", "/")
    f = json.loads(r.stdout)
    assert r.returncode == 1 and (f["status"], f["missing"], f["corrupt"]) == ("DEGRADED", 0, 0), f
    assert f["safemode"] is True and f["unreported"] == len(on_missing), f
    rep = c.report()
    assert (rep["missing"], rep["unreported"]) == (0, len(on_missing)), rep
    out = c.cli("fsck", "/").stdout.decode()
    assert f"The namenode is in safe mode ({why}): {len(on_missing)} block(s) not reported by any datanode yet" in out
    # the files not HEALTHY are named, one line each, without --files (as HDFS's fsck)
    assert sorted(ln for ln in out.splitlines() if ln.startswith("/")) == \
        sorted(f"{p}: DEGRADED" for p in files if block_of[p] in on_missing), out
    r = c.cli("admin", "safemode", "wait", "--timeout", "1", timeout=30)
    assert r.returncode == 1, r.stdout
    assert r.stderr.decode().splitlines() == [
        f"dfs: admin safemode: safe mode still ON after 1s ({why})"], r.stderr
    readable = {p: d for p, d in files.items() if block_of[p] not in on_missing}
    check_all(c, readable)
    r = c.cli("cat", next(p for p in files if p not in readable), env={"DFS_RETRY_SECONDS": "0"})
    assert r.returncode == 1 and b"no datanode has reported block" in r.stderr, r.stderr
    c.restart(missing)
    r = c.cli("admin", "safemode", "wait", "--timeout", "30", timeout=60)
    assert r.returncode == 0 and r.stdout == b"Safe mode is OFF\n", r.stderr
    check_all(c, files)


def test_a_datanode_late_after_a_namenode_restart_is_waited_for_not_copied_and_trimmed(make_cluster):
    """Namenode and one datanode restarted together, the datanode 2 s late (the dead-node
    timeout is 20 s): its replicas were copied elsewhere within 1.5 s of the restart, then
    its own deleted as surplus when it reported. Now nothing moves."""
    c = make_cluster(datanodes=4, dead_timeout=20.0)
    files = {f"/f{i}": os.urandom(MiB + i) for i in range(3)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    before = {d.name: block_ids_on(d) for d in c.datanodes}
    late = c.datanodes[0]
    c.kill(c.namenode)
    c.kill(late)
    c.restart(c.namenode)
    c.wait_for(lambda: not c.report()["safemode"], 20, "safe mode to end")
    time.sleep(2)             # several monitor rounds with `late` unheard of (not a wait for anything)
    assert {d.name: block_ids_on(d) for d in c.datanodes[1:]} == {k: v for k, v in before.items()
                                                                  if k != late.name}
    c.restart(late)
    c.wait_for_status("HEALTHY", timeout=30)
    assert {d.name: block_ids_on(d) for d in c.datanodes} == before
    check_all(c, files)


def test_a_copy_of_a_live_datanodes_data_dir_is_refused_and_takes_over_once_it_stops(make_cluster):
    """A cloned disk: the copy registered with the same uuid and silently took the live
    node's place. Now it is refused (retrying, saying why) while the node beats; once
    the node is gone, it is that node restarted on another address, and serves."""
    # Heartbeats every second: the original is live (it would be stale after 2 s of
    # silence, and the copy then let in) however loaded the machine.
    c = make_cluster(datanodes=3, heartbeat=1.0, dead_timeout=10.0)
    files = {f"/f{i}": os.urandom(300_000 + i) for i in range(3)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    original = c.datanodes[0]
    clone = c.add_datanode("/rack2", start=False)
    shutil.copytree(original.data_dir, clone.data_dir, ignore=shutil.ignore_patterns(LOCK_NAME))
    c._spawn(clone)
    c.wait_for(lambda: "in use by the live datanode" in log_text(clone), 20, "the clone to be refused")
    assert clone.alive
    assert sorted(n["address"] for n in c.report()["live"]) == sorted(d.address for d in c.datanodes[:3])
    c.kill(original)
    wait_state(c, clone, "live", timeout=20)
    for d in c.datanodes[1:3]:
        c.kill(d)
    check_all(c, files)                  # from the clone alone


def test_a_namenode_restored_from_an_older_backup_deletes_no_newer_replicas(make_cluster):
    """Its datanodes report replicas of blocks its metadata has never heard of, with ids
    above any it reserved: they were deleted as unknown, and with them every file written
    since the backup. Now they are kept (and logged); put the newer metadata back and the
    files are there."""
    c = make_cluster(datanodes=3)
    old, new = os.urandom(MiB), os.urandom(2 * MiB)
    put_bytes(c, "/old", old)
    nn = c.namenode.data_dir
    c.kill(c.namenode, signal.SIGTERM)
    shutil.copytree(nn, nn + ".backup", ignore=shutil.ignore_patterns(LOCK_NAME))
    c.restart(c.namenode)
    put_bytes(c, "/new", new)
    c.wait_for_status("HEALTHY")
    held = {d.name: block_ids_on(d) for d in c.datanodes}
    c.kill(c.namenode, signal.SIGTERM)
    os.rename(nn, nn + ".newer")
    os.rename(nn + ".backup", nn)
    c.restart(c.namenode)
    c.wait_for_datanodes(3)          # registered and reported
    check_all(c, {"/old": old})
    assert c.cli("test", "-e", "/new").returncode == 1
    time.sleep(1.5)                 # heartbeats that would carry the deletions (not a wait for anything)
    assert {d.name: block_ids_on(d) for d in c.datanodes} == held
    assert "never made" in log_text(c.namenode)
    c.kill(c.namenode, signal.SIGTERM)
    shutil.rmtree(nn)
    os.rename(nn + ".newer", nn)
    c.restart(c.namenode)
    check_all(c, {"/old": old, "/new": new})


def test_a_decommission_is_cancelled_with_cancel(make_cluster):
    """A decommission by mistake was for good (remembered by the node's uuid across
    restarts, with no way back): --cancel puts the node back in service."""
    c = make_cluster(datanodes=3, replication=2, heartbeat=1.0, dead_timeout=10.0)   # never stale here
    put_bytes(c, "/a", os.urandom(MiB))
    node = c.datanodes[0]
    r = c.cli("admin", "decommission", node.address)
    assert r.returncode == 0 and r.stderr == b"", r.stderr    # 2 nodes left for replication 2: no warning
    wait_state(c, node, "decommissioned", timeout=20)
    r = c.cli("admin", "decommission", "--cancel", node.address)
    assert r.returncode == 0 and r.stdout.decode() == f"{node.address} is back in service\n", r.stderr
    c.restart(c.namenode)                 # and it stays so
    wait_state(c, node, "live", timeout=20)
    data = os.urandom(2 * MiB)
    # Written from its host: every block's first replica goes there, now that it is in service.
    c.cli("put", "-", "/b", input=data, env={"DFS_CLIENT_HOST": node.address.rpartition(":")[0]}, check=True)
    assert all(node.address in b["names"] for b in locations(c, "/b"))
    r = c.cli("admin", "decommission", "--cancel", "127.0.0.1:1")
    assert r.returncode == 1 and re.fullmatch(
        r"dfs: admin decommission: 127\.0\.0\.1:1: no such datanode: none has registered at this address since "
        r"the namenode started \d+ s ago \(dfs admin report lists those that have\)\n", r.stderr.decode()), r.stderr
    r = c.cli("admin", "decommission", node.address, env={"DFS_USER": "bob"})   # SPEC §3: the node is the subject
    assert r.returncode == 1 and r.stderr.decode().splitlines() == [
        f"dfs: admin decommission: {node.address}: Permission denied: decommission needs the superuser"], r.stderr
    check_all(c, {"/b": data})


def test_replicas_span_both_racks_and_repair_keeps_them_so(make_cluster):
    """Racks of 3 and 2 datanodes: every block is on both; when a node of the small rack
    dies, each block it held gets its new replica where the spread survives."""
    c = make_cluster(datanodes=5, racks=["/a", "/a", "/a", "/b", "/b"], block_size="256KiB")
    data = os.urandom(6 * 256 * 1024 + 1)
    put_bytes(c, "/r", data)
    c.wait_for_status("HEALTHY")
    assert all(sorted(set(b["racks"])) == ["/a", "/b"] for b in locations(c, "/r"))
    victim = max(c.datanodes[3:], key=lambda d: len(block_ids_on(d)))
    c.kill(victim)
    wait_state(c, victim, "dead", timeout=20)
    c.wait_for_status("HEALTHY", timeout=30)
    blocks = locations(c, "/r")
    assert all(len(b["names"]) == 3 and victim.address not in b["names"] for b in blocks)
    assert all(sorted(set(b["racks"])) == ["/a", "/b"] for b in blocks), blocks
    check_all(c, {"/r": data})
