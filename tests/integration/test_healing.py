"""Self-healing under real faults (SPEC §6): datanodes SIGKILLed before, during
and after writes, SIGSTOPped (stale), bytes flipped, block files truncated or
deleted, disks full; decommissioning. Every test ends by reading all its data
back byte-identical."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from dfs.datanode.transfer import IDLE_THREADS
from dfs.testing.faults import (
    MiB,
    all_blocks,
    block_ids_on,
    busiest,
    check_all,
    exactly_n_on_disk,
    locations,
    log_text,
    node_state,
    put_bytes,
    replica_files,
    start_put,
    tmp_files,
    wait_for_tmp,
    wait_state,
)

# -- liveness: dead, back, stale ----------------------------------------------------------


def test_dead_datanode_is_repaired_and_its_return_is_trimmed(make_cluster):
    c = make_cluster(datanodes=4)
    files = {"/a": os.urandom(5 * MiB + 1), "/b": os.urandom(3 * MiB), "/c": os.urandom(100)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    victim = busiest(c)
    held = block_ids_on(victim)
    assert held
    c.kill(victim, signal.SIGKILL)
    wait_state(c, victim, "dead")
    rep = c.report()
    assert [n["address"] for n in rep["dead"]] == [victim.address]
    c.wait_for_status("HEALTHY", timeout=30)
    blocks = all_blocks(c, files)
    assert all(len(b["names"]) == 3 and victim.address not in b["names"] for b in blocks)
    rep = c.report()
    assert (rep["under_replicated"], rep["missing"], rep["corrupt"]) == (0, 0, 0)
    check_all(c, files)

    # The node comes back with its old replicas: it re-registers, reports them,
    # and the surplus is trimmed back to exactly 3 -- on disk too.
    c.restart(victim)
    wait_state(c, victim, "live")
    ids = [b["block_id"] for b in blocks]
    c.wait_for(lambda: exactly_n_on_disk(c, ids, 3), 30, "surplus replicas to be deleted")
    assert all(len(b["names"]) == 3 for b in all_blocks(c, files))
    assert c.fsck()["status"] == "HEALTHY"
    check_all(c, files)


def test_stopped_datanode_is_stale_skipped_for_writes_and_last_for_reads(make_cluster):
    c = make_cluster(datanodes=4, dead_timeout=20.0)
    files = {"/before": os.urandom(4 * MiB)}
    put_bytes(c, "/before", files["/before"])
    c.wait_for_status("HEALTHY")
    victim = busiest(c)
    c.pause(victim)                                   # SIGSTOP: alive, but silent
    try:
        wait_state(c, victim, "stale", timeout=10)
        files["/during"] = os.urandom(4 * MiB)
        put_bytes(c, "/during", files["/during"])
        assert all(victim.address not in b["names"] for b in locations(c, "/during"))
        for b in locations(c, "/before"):
            if victim.address in b["names"]:
                assert b["names"][-1] == victim.address      # last choice for reads
        check_all(c, files)                                   # reads do not wait on it
    finally:
        c.resume(victim)
    wait_state(c, victim, "live")
    c.wait_for_status("HEALTHY")
    check_all(c, files)


def _set_flag(argv: list[str], flag: str, value: float) -> None:
    argv[argv.index(flag) + 1] = str(value)


def test_datanodes_beat_at_the_namenodes_shorter_interval_also_after_its_restart(make_cluster):
    # Each datanode kept its own --heartbeat-interval (3 s by default) whatever the
    # namenode's (RegisterReply.heartbeat_interval was never read): against a namenode
    # at 1 s / dead after 3 s, healthy nodes were declared dead over and over, and their
    # blocks copied each time (5 deaths and 56 copies in 50 s, 4 datanodes).
    c = make_cluster(datanodes=2, replication=2, heartbeat=1.0, dead_timeout=3.5, datanode_heartbeat=5.0)
    files = {"/f": os.urandom(MiB)}
    put_bytes(c, "/f", files["/f"])
    time.sleep(8)
    assert "declared dead" not in log_text(c.namenode)
    assert all(node_state(c, d.address) == "live" for d in c.datanodes)
    assert all("heartbeat every 1 s (namenode" in log_text(d) for d in c.datanodes)

    # Restarted with a shorter interval, the namenode is heeded at re-registration:
    # at the 1 s taken from the first one, both would be dead within 1.2 s.
    c.kill(c.namenode, signal.SIGTERM)
    _set_flag(c.namenode.argv, "--heartbeat-interval", 0.3)
    _set_flag(c.namenode.argv, "--dead-node-timeout", 1.2)
    c.restart(c.namenode)
    c.wait_for_datanodes(2)
    time.sleep(5)
    assert "declared dead" not in log_text(c.namenode)
    assert all(node_state(c, d.address) == "live" for d in c.datanodes)
    assert all("heartbeat every 0.3 s (namenode" in log_text(d) for d in c.datanodes)
    check_all(c, files)


def test_datanode_killed_before_and_after_writes(make_cluster):
    """With 3 nodes and replication 3 a dead node leaves every block short:
    writes still succeed (2 replicas, DEGRADED) and heal when it is back."""
    c = make_cluster(datanodes=3)
    files = {"/old": os.urandom(3 * MiB)}
    put_bytes(c, "/old", files["/old"])
    victim = c.datanodes[1]
    c.kill(victim, signal.SIGKILL)
    wait_state(c, victim, "dead")
    files["/new"] = os.urandom(3 * MiB)
    r = c.cli("put", "-", "/new", input=files["/new"])
    assert r.returncode == 0, r.stderr
    f = c.fsck()
    assert f["status"] == "DEGRADED" and f["under_replicated"] == 6
    r = c.cli("fsck", "/")
    assert r.returncode == 1 and b"DEGRADED" in r.stdout
    check_all(c, files)
    c.restart(victim)
    c.wait_for_status("HEALTHY", timeout=30)
    check_all(c, files)


# -- write pipeline recovery ----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["sigkill", "sigstop"])
@pytest.mark.parametrize("where", ["head", "downstream"])
def test_datanode_fails_in_the_middle_of_a_put(make_cluster, sig, where):
    c = make_cluster(datanodes=4, env={"DFS_DATA_TIMEOUT": "2"})
    head = c.datanodes[0]
    # The first replica goes to the writer's own host when a datanode runs there.
    data = os.urandom(20 * MiB)
    p = start_put(c, "/victim.bin", env={"DFS_CLIENT_HOST": head.address.rpartition(":")[0]},
                  args=["--block-size", "3MiB"])
    victim = None
    try:
        # `put -` reads stdin 4 MiB at a time: block 1 is stored, block 2 is half sent
        # and its pipeline waits for more.
        p.stdin.write(data[:6 * MiB])
        p.stdin.flush()
        if where == "head":
            victim = head
            wait_for_tmp(c, [head])
        else:
            victim = c.wait_for(lambda: next((d for d in c.datanodes[1:] if tmp_files(d)), None), 20,
                                "a downstream node receiving a block", interval=0.02)
        c.kill(victim, sig)
        p.stdin.write(data[6 * MiB:])
        p.stdin.close()
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
        if sig == signal.SIGSTOP and victim is not None:
            c.resume(victim)
    check_all(c, {"/victim.bin": data})
    c.wait_for_status("HEALTHY", timeout=40)
    check_all(c, {"/victim.bin": data})


def test_put_fails_with_one_clear_line_when_every_datanode_is_frozen(make_cluster):
    """A frozen node is excluded after DFS_DATA_TIMEOUT; with none left the put fails in
    bounded time, naming the file and why (it said `big: no datanode with room left`)."""
    c = make_cluster(datanodes=1, replication=1, dead_timeout=20.0, env={"DFS_DATA_TIMEOUT": "1.5"})
    node = c.datanodes[0]
    c.cli("mkdir", "/dir", check=True)
    p = start_put(c, "/dir/frozen.bin", args=["--block-size", "3MiB"])
    try:
        p.stdin.write(os.urandom(6 * MiB))     # read 4 MiB at a time: block 2 half sent
        p.stdin.flush()
        wait_for_tmp(c, [node])
        c.pause(node)
        t = time.monotonic()
        p.stdin.write(os.urandom(MiB))
        p.stdin.close()
        assert p.wait(timeout=30) == 1
        assert time.monotonic() - t < 15
        err = p.stderr.read().decode()
        assert re.fullmatch(f"dfs: put: /dir/frozen.bin: no datanode left for the block: every live one failed "
                            f"this write and none has restarted since: {re.escape(node.address)} "
                            r"\(no heartbeat for \d+\.\d s\)\n", err), err
    finally:
        if p.poll() is None:
            p.kill()
        c.resume(node)
    assert c.cli("test", "-e", "/dir/frozen.bin").returncode == 1


def test_datanode_killed_during_a_parallel_put_of_many_files(make_cluster, tmp_path):
    """`put -r -t 4`: each upload recovers from the dead node on its own; nothing is lost."""
    c = make_cluster(datanodes=4, env={"DFS_DATA_TIMEOUT": "2"})
    src = tmp_path / "tree"
    files = {}
    for i in range(400):
        sub = src / f"d{i % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        data = os.urandom(3 * MiB + i if i % 40 == 0 else 4096 + i)   # a few multi-block files
        (sub / f"f{i:03d}").write_bytes(data)
        files[f"/tree/d{i % 5}/f{i:03d}"] = data
    p = subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, "put", "-r",
                          "-t", "4", "--block-size", "1MiB", str(src), "/tree"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env)
    try:
        client = c.client()
        c.wait_for(lambda: sum(len(client.listdir(f"/tree/d{k}")) for k in range(5)
                               if client.exists(f"/tree/d{k}")) >= 30, 60, "30 files uploaded",
                   interval=0.05)
        assert p.poll() is None, "the put ended before the datanode could be killed"
        c.kill(c.datanodes[1])
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    finally:
        if p.poll() is None:
            p.kill()
    check_all(c, files)


# -- corrupt replicas -------------------------------------------------------------------------


def test_flipped_bytes_found_by_the_scanner_are_replaced_then_deleted(make_cluster):
    c = make_cluster(datanodes=4, scan_interval=0.5)
    files = {"/f": os.urandom(3 * MiB)}
    put_bytes(c, "/f", files["/f"])
    c.wait_for_status("HEALTHY")
    block = locations(c, "/f")[1]
    bid = block["block_id"]
    bad_node = next(d for d in c.datanodes if d.address == block["names"][0])
    c.corrupt_replica(bid, bad_node)
    # Never served again, a good copy made elsewhere, then the bad one deleted.
    c.wait_for(lambda: bid not in block_ids_on(bad_node), 30, "the corrupt replica to be deleted")
    c.wait_for_status("HEALTHY", timeout=30)
    assert exactly_n_on_disk(c, [bid], 3)
    assert "corrupt" in log_text(bad_node)
    check_all(c, files)


def test_reader_reports_bad_replicas_and_they_are_replaced(make_cluster):
    c = make_cluster(datanodes=3)
    data = os.urandom(2 * MiB)
    put_bytes(c, "/r", data)
    bid = locations(c, "/r")[0]["block_id"]
    holders = [d for d in c.datanodes if bid in block_ids_on(d)]
    for d in holders[:2]:
        c.corrupt_replica(bid, d)                      # only one good copy left
    r = c.cli("get", "/r", "-")
    assert r.returncode == 0 and r.stdout == data        # read went on from the good replica
    for _ in range(3):    # reads start at a random replica: make sure both bad ones get reported
        c.cli("cat", "/r")
    c.wait_for(lambda: c.fsck()["status"] == "HEALTHY" and exactly_n_on_disk(c, [bid], 3), 30,
               "the bad replicas to be replaced")
    # the new copies are good: every replica now passes a read
    for d in c.datanodes:
        assert bid in block_ids_on(d)
    check_all(c, {"/r": data})


def test_truncated_and_deleted_block_files_are_repaired(make_cluster):
    c = make_cluster(datanodes=4, scan_interval=0.5)
    files = {"/t": os.urandom(2 * MiB + 5), "/d": os.urandom(2 * MiB)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    t_bid = locations(c, "/t")[0]["block_id"]
    d_bid = locations(c, "/d")[1]["block_id"]
    t_node, t_path = c.replica_files(t_bid)[0]
    with open(t_path, "r+b") as f:
        f.truncate(os.path.getsize(t_path) // 2)
    d_node, d_path = c.replica_files(d_bid)[-1]
    os.unlink(d_path)                                  # data file gone
    # and its index - unless the datanode's scanner (every 0.5 s here) saw the data
    # gone in between and removed the rest of the replica itself
    with contextlib.suppress(FileNotFoundError):
        os.unlink(d_path[:-5] + ".meta")
    c.wait_for(lambda: exactly_n_on_disk(c, [t_bid, d_bid], 3) and c.fsck()["status"] == "HEALTHY",
               30, "the damaged replicas to be replaced")
    for _node, path in c.replica_files(t_bid):
        assert os.path.getsize(path) > 0
    check_all(c, files)


def test_all_replicas_corrupt_is_never_served(make_cluster, tmp_path):
    c = make_cluster(datanodes=3)
    good, bad = os.urandom(MiB), os.urandom(2 * MiB)
    put_bytes(c, "/good", good)
    put_bytes(c, "/bad", bad)
    bid = locations(c, "/bad")[1]["block_id"]
    for d in c.datanodes:
        c.corrupt_replica(bid, d)
    out = tmp_path / "out"
    r = c.cli("get", "/bad", str(out))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.strip().splitlines()[-1].startswith("dfs: get: /bad: "), err
    assert "replica" in err.strip().splitlines()[-1] and "Traceback" not in err
    # it is not in the output: nothing of the bad block was written out as data
    assert not out.exists() or bad[MiB:] not in out.read_bytes()
    r = c.cli("fsck", "/")
    assert r.returncode == 1 and b"CORRUPT" in r.stdout
    f = c.fsck()
    assert f["status"] == "CORRUPT" and f["corrupt"] == 1 and f["missing"] == 0
    assert c.fsck("/good")["status"] == "HEALTHY"
    assert c.report()["corrupt"] == 1
    assert locations(c, "/bad")[1]["names"] == []
    # the corrupt replicas are kept (evidence, and the namenode waits a while for more
    # reports before it deletes a bad copy to make room), nothing is made from them
    time.sleep(2.5)
    assert len(c.replica_files(bid)) == 3
    assert c.fsck()["status"] == "CORRUPT"
    check_all(c, {"/good": good})
    r = c.cli("cat", "/bad")
    assert r.returncode == 1 and bad[MiB:] not in r.stdout


def test_datanodes_out_of_descriptors_mark_nothing_corrupt(make_cluster):
    # Every datanode's descriptors run out (a low limit, idle client connections holding
    # the rest) while its scanner runs. Its scanner used to take EMFILE for damage: every
    # healthy replica was marked corrupt, for good, and every file became unreadable.
    # The limit leaves room for the idle transfer threads: each one waiting in accept()
    # holds a descriptor number (Linux reserves it before it waits), up to IDLE_THREADS.
    c = make_cluster(datanodes=3, scan_interval=0.5)
    files = {f"/f{i}": os.urandom(300_000) for i in range(4)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    socks = []
    try:
        for dn in c.datanodes:
            limit = len(os.listdir(f"/proc/{dn.proc.pid}/fd")) + IDLE_THREADS + 8
            subprocess.run(["prlimit", f"--pid={dn.proc.pid}", f"--nofile={limit}:{limit}"], check=True)
            host, port = dn.address.rsplit(":", 1)
            socks += [socket.create_connection((host, int(port))) for _ in range(limit + 10)]
        c.wait_for(lambda: all("could not be checked" in log_text(d) or "is corrupt" in log_text(d)
                               for d in c.datanodes), 30, "a scan of every datanode out of descriptors")
    finally:
        for s in socks:
            s.close()
    marked = [d.address for d in c.datanodes if "is corrupt" in log_text(d)]
    assert not marked, f"healthy replicas marked corrupt on {marked}"
    c.wait_for_status("HEALTHY", timeout=30)
    check_all(c, files)


def test_a_datanodes_own_corrupt_mark_goes_when_it_lists_the_replica_again(make_cluster):
    # Every replica of a block found bad by its own datanode's scanner, then mended (here:
    # the flipped bytes flipped back) and that datanode restarted: its full report lists the
    # replica as healthy again, and the namenode takes its word. The mark used to stay for
    # good: the block CORRUPT, unreadable, with a good replica on disk.
    c = make_cluster(datanodes=3, scan_interval=0.5)
    data = os.urandom(MiB)
    put_bytes(c, "/x", data)
    c.wait_for_status("HEALTHY")
    bid = locations(c, "/x")[0]["block_id"]
    for d in c.datanodes:
        c.corrupt_replica(bid, d)
    c.wait_for(lambda: c.fsck()["status"] == "CORRUPT", 30, "the scanners to find every replica bad")
    for d in c.datanodes:
        c.corrupt_replica(bid, d)     # the same bytes flipped back
    c.restart(c.datanodes[0])
    # the others' marks stay (their scanners do not look at a replica again once it is
    # marked); they are replaced from the mended one, then deleted
    c.wait_for(lambda: c.fsck()["status"] == "HEALTHY" and exactly_n_on_disk(c, [bid], 3), 30,
               "the block to be readable and repaired")
    check_all(c, {"/x": data})


# -- decommissioning and replication changes -----------------------------------------------


def test_decommission_drains_a_node(make_cluster):
    c = make_cluster(datanodes=4)
    files = {"/x": os.urandom(4 * MiB), "/y": os.urandom(2 * MiB)}
    for p, d in files.items():
        put_bytes(c, p, d)
    c.wait_for_status("HEALTHY")
    leaving = busiest(c)
    held = block_ids_on(leaving)
    r = c.cli("admin", "decommission", leaving.address)
    assert r.returncode == 0, r.stderr
    assert node_state(c, leaving.address) in ("decommissioning", "decommissioned")
    wait_state(c, leaving, "decommissioned", timeout=30)
    others = [d for d in c.datanodes if d is not leaving]
    for b in all_blocks(c, files):
        assert leaving.address not in b["names"] and len(b["names"]) == 3
        assert sum(b["block_id"] in block_ids_on(d) for d in others) == 3
    assert block_ids_on(leaving) == held               # it keeps its copies; it can be switched off
    # new blocks avoid it
    files["/z"] = os.urandom(2 * MiB)
    put_bytes(c, "/z", files["/z"])
    assert all(leaving.address not in b["names"] for b in locations(c, "/z"))
    c.kill(leaving, signal.SIGKILL)
    c.wait_for_status("HEALTHY")
    check_all(c, files)


def test_decommission_waits_for_a_file_being_written_on_the_node(make_cluster):
    """Blocks a writer has stored on the node but not yet committed cannot be copied: the
    node stays decommissioning until they are (it was declared decommissioned at once, and
    stopping it lost them)."""
    c = make_cluster(datanodes=3, replication=1)
    leaving = c.datanodes[0]
    data = os.urandom(8 * MiB)
    # The writer's host runs `leaving`: every block's one replica goes there.
    p = start_put(c, "/open.bin", env={"DFS_CLIENT_HOST": leaving.address.rpartition(":")[0]},
                  args=["--block-size", "1MiB"])
    try:
        p.stdin.write(data[:5 * MiB])         # read 4 MiB at a time: the writer then waits
        p.stdin.flush()
        c.wait_for(lambda: len(replica_files(leaving)) >= 4, 20, "blocks on the node", interval=0.05)
        assert c.cli("admin", "decommission", leaving.address).returncode == 0
        time.sleep(1.5)                       # several monitor rounds
        assert node_state(c, leaving.address) == "decommissioning"
        p.stdin.write(data[5 * MiB:])
        p.stdin.close()
        assert p.wait(timeout=30) == 0, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
    wait_state(c, leaving, "decommissioned", timeout=20)
    c.kill(leaving, signal.SIGKILL)
    check_all(c, {"/open.bin": data})
    assert c.fsck()["status"] == "HEALTHY"


def test_setrep_w_waits_until_reached(make_cluster):
    c = make_cluster(datanodes=4)
    data = os.urandom(3 * MiB)
    put_bytes(c, "/s", data)
    r = c.cli("setrep", "-w", "2", "/s", timeout=60)
    assert r.returncode == 0, r.stderr
    assert all(len(b["names"]) == 2 for b in locations(c, "/s"))
    ids = [b["block_id"] for b in locations(c, "/s")]
    c.wait_for(lambda: exactly_n_on_disk(c, ids, 2), 20, "the surplus to leave the disks")
    r = c.cli("setrep", "-w", "4", "/s", timeout=60)
    assert r.returncode == 0, r.stderr
    assert all(len(b["names"]) == 4 for b in locations(c, "/s"))
    assert c.fsck("/s")["status"] == "HEALTHY"
    check_all(c, {"/s": data})


def test_setrep_w_after_a_datanode_dies_returns_in_bounded_time(make_cluster):
    c = make_cluster(datanodes=4)
    data = os.urandom(3 * MiB)
    put_bytes(c, "/s", data)
    assert c.cli("setrep", "-w", "4", "/s", timeout=30).returncode == 0
    victim = c.datanodes[1]
    c.kill(victim, signal.SIGKILL)
    t = time.monotonic()
    r = c.cli("setrep", "-w", "2", "/s", timeout=30)
    assert r.returncode == 0 and time.monotonic() - t < 10, r.stderr
    wait_state(c, victim, "dead")
    # If the trim kept the dead node's copy, the block is repaired back to 2.
    c.wait_for(lambda: all(len(b["names"]) == 2 and victim.address not in b["names"]
                           for b in locations(c, "/s")), 20, "2 live replicas of each block")
    assert c.fsck("/s")["status"] == "HEALTHY"
    # 4 cannot be reached with 3 datanodes: one line now, not after DFS_SETREP_TIMEOUT (600 s)
    r = c.cli("setrep", "-w", "4", "/s", timeout=30)
    assert r.returncode == 1 and r.stderr.decode().splitlines() == [
        "dfs: setrep: /s: replication 4 cannot be reached: 3 datanodes in service "
        "(the target is set; not waiting)"], r.stderr
    check_all(c, {"/s": data})


# -- full disks -------------------------------------------------------------------------------


def _tmpfs(path: str, size: str) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)


def _umount(path: str) -> None:
    subprocess.run(["umount", "-l", path], check=False)


def test_full_datanode_disk_sends_writes_elsewhere(make_cluster):
    c = make_cluster(datanodes=4, start=False)
    small = c.datanodes[0]
    _tmpfs(small.data_dir, "8m")
    try:
        c.start()
        files = {f"/fill{i}": os.urandom(6 * MiB + i) for i in range(4)}
        for p, d in files.items():
            r = c.cli("put", "-", p, input=d)
            assert r.returncode == 0, r.stderr
        c.wait_for_status("HEALTHY", timeout=30)
        blocks = all_blocks(c, files)
        assert all(len(b["names"]) == 3 for b in blocks)
        # It took what fit (its share of 3 x 24 MiB over 4 nodes would be 18 MiB); the rest
        # went elsewhere. Sizes, not a count: a file's last block is a few bytes.
        assert sum(os.path.getsize(f) for f in replica_files(small)) <= 8 * MiB
        check_all(c, files)
    finally:
        c.stop()
        _umount(small.data_dir)


def test_no_room_anywhere_fails_with_a_clear_error(make_cluster):
    c = make_cluster(datanodes=2, replication=2, start=False)
    for d in c.datanodes:
        _tmpfs(d.data_dir, "4m")
    try:
        c.start()
        first = os.urandom(MiB)
        r = c.cli("put", "-", "/first", input=first)
        assert r.returncode == 0, r.stderr
        r = c.cli("put", "-", "/huge", input=os.urandom(12 * MiB))
        assert r.returncode == 1
        err = r.stderr.decode().strip().splitlines()[-1]
        assert err.startswith("dfs: put: /huge: ") and ("full" in err or "space" in err), r.stderr
        assert c.cli("test", "-e", "/huge").returncode == 1     # no half-written file
        check_all(c, {"/first": first})
    finally:
        c.stop()
        for d in c.datanodes:
            _umount(d.data_dir)


# -- visibility -------------------------------------------------------------------------------


def test_admin_report_shows_states_counts_and_eta(make_cluster):
    c = make_cluster(datanodes=4, dead_timeout=4.0)
    data = os.urandom(6 * MiB)
    put_bytes(c, "/v", data)
    rep = c.report()
    for key in ("safemode", "live", "dead", "under_replicated", "missing", "corrupt",
                "pending_repair_bytes", "repair_rate", "eta_seconds"):
        assert key in rep
    assert {n["state"] for n in rep["live"]} == {"live"} and rep["dead"] == []
    for n in rep["live"]:
        for key in ("address", "rack", "capacity", "used", "blocks", "last_heartbeat"):
            assert key in n
    stale = c.datanodes[3]
    c.pause(stale)
    try:
        wait_state(c, stale, "stale", timeout=10)
    finally:
        c.resume(stale)
    victim = busiest(c, c.datanodes[:3])
    c.kill(victim, signal.SIGKILL)
    wait_state(c, victim, "dead")
    c.wait_for_status("HEALTHY", timeout=30)
    rep = c.report()
    assert [n["address"] for n in rep["dead"]] == [victim.address]
    assert rep["pending_repair_bytes"] == 0 and rep["under_replicated"] == 0
    assert isinstance(rep["pending_repair_bytes"], int)   # bytes: a whole number in the JSON
    text = c.cli("admin", "report").stdout.decode()
    assert "dead" in text and victim.address in text
    check_all(c, {"/v": data})


def test_a_throttled_repair_shows_what_is_left_and_a_fair_eta_until_it_is_done(make_cluster):
    """Datanodes capped at 1 MiB/s: the pending bytes were 0 (ETA 0 s) with a third of the
    blocks still to copy, and the rate 25 times the caps early on (copies counted before
    their wait for bandwidth, a 4 MiB burst, a rate over the first fraction of a second)."""
    cap = MiB
    c = make_cluster(datanodes=4, start=False)        # 1 MiB blocks: a record each
    for d in c.datanodes:
        d.argv += ["--repair-bandwidth", str(cap)]
    c.start()
    data = os.urandom(24 * MiB)
    put_bytes(c, "/slow", data)
    victim = busiest(c)
    c.kill(victim, signal.SIGKILL)
    wait_state(c, victim, "dead")
    seen = []
    while True:
        rep = c.report()
        seen.append((time.monotonic(), rep))
        if rep["under_replicated"] == 0:
            break
        assert time.monotonic() - seen[0][0] < 30, seen[-1]
        time.sleep(0.2)
    done = seen[-1][0]
    etas = []
    for t, rep in seen[:-1]:
        # under-replicated blocks remain, so something is still to copy (the last MiB
        # of a copy stays pending until its receiver confirms it)
        assert rep["pending_repair_bytes"] >= MiB, rep
        assert rep["repair_rate"] < 2 * 3 * cap, rep              # three sources at 1 MiB/s each
        if rep["eta_seconds"] is not None and done - t > 1.5:
            etas.append((rep["eta_seconds"], done - t))
    assert etas, seen
    # The time left stretches when a busy runner starves the nodes, which no ETA can
    # foresee (under a parallel suite one reading was off 6x): the typical one is fair.
    ratios = sorted(eta / left for eta, left in etas)
    assert 1 / 3 < ratios[len(ratios) // 2] < 3, etas
    assert all(eta > 0 for eta, _ in etas), etas
    assert seen[-1][1]["pending_repair_bytes"] == 0
    check_all(c, {"/slow": data})
