"""Servers on the wrong directory or port, and clean shutdowns (real processes).

A datanode pointed at another cluster's data dir, at a directory of somebody's
files, at a file or at a read-only file system stops with one line and exit
code 1 and touches nothing; a second process on a directory or port in use
is refused; SIGTERM and SIGINT stop both servers at once with exit code 0
(a datanode breaks off its repair copies), they start again on the same
directories and addresses, and a put rides through a namenode restart.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from dfs.testing.cluster import free_port
from dfs.testing.faults import (
    MiB,
    block_ids_on,
    check_all,
    error_lines,
    locations,
    put_bytes,
    replica_files,
    run_datanode,
    run_server,
    start_put,
    tmp_files,
)


def test_datanode_refuses_a_data_dir_of_another_cluster(make_cluster):
    a = make_cluster(datanodes=1, replication=1)
    b = make_cluster(datanodes=1, replication=1)
    data = os.urandom(3 * MiB)
    put_bytes(a, "/a", data)
    node = a.datanodes[0]
    held = block_ids_on(node)
    a.kill(node, signal.SIGTERM)
    # Before the fix it joined b, and b's namenode deleted a's replicas as unknown blocks.
    r = run_datanode(b, node.data_dir)
    lines = error_lines(r, "datanode")
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"dfs: datanode: {node.data_dir}: belongs to cluster CID-"), lines
    assert block_ids_on(node) == held
    assert [n["address"] for n in b.report()["live"]] == [b.datanodes[0].address]
    a.restart(node)                       # its own cluster still takes it
    a.wait_for(lambda: a.cli("cat", "/a").stdout == data, 20, "/a to be readable again")


def test_datanode_refuses_a_dir_of_other_files_a_file_and_a_read_only_dir(make_cluster, tmp_path):
    c = make_cluster(datanodes=1, replication=1)
    junk = tmp_path / "junk"
    user_files = ["notes.txt", "tmp/important.doc", "current/ab/photo.data", "spare"]
    for name in user_files:
        (junk / name).parent.mkdir(parents=True, exist_ok=True)
        (junk / name).write_text("user data\n")
    # Before the fix it emptied tmp/ and then failed on `spare` (File exists); with
    # other names it adopted the directory and deleted current/ab/photo.data.
    r = run_datanode(c, str(junk))
    lines = error_lines(r, "datanode")
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "not a dfs datanode data dir and not empty (current, notes.txt, spare" in lines[0]
    assert sorted(str(p.relative_to(junk)) for p in junk.rglob("*") if p.is_file()) == sorted(user_files)

    afile = tmp_path / "afile"
    afile.write_text("hello")
    r = run_datanode(c, str(afile))
    assert r.returncode == 1 and error_lines(r, "datanode") == [f"dfs: datanode: {afile}: not a directory"]
    assert afile.read_text() == "hello"

    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=True)
    try:
        r = run_datanode(c, str(ro))
        lines = error_lines(r, "datanode")
        assert r.returncode == 1 and len(lines) == 1 and "Read-only file system" in lines[0], r.stderr
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_datanode_refuses_a_hand_edited_identity_of_the_wrong_shape(make_cluster):
    # {"uuid": 5} was taken: "listening", then a `heartbeat failed` TypeError traceback
    # every beat, for ever. Now one line and exit 1, as a datanode.json that is not JSON.
    c = make_cluster(datanodes=1, replication=1)
    dn = c.datanodes[0]
    c.kill(dn, signal.SIGTERM)
    path = os.path.join(dn.data_dir, "datanode.json")
    os.rename(path, path + ".saved")
    for text, why in [('{"uuid": 5}', '"uuid" is 5'), ('{"uuid": ""}', '"uuid" is ""')]:
        with open(path, "w") as f:
            f.write(text)
        r = run_datanode(c, dn.data_dir)
        assert r.returncode == 1 and error_lines(r, "datanode") == [
            f"dfs: datanode: {path}: damaged datanode identity file "
            f"({why}: a non-empty string of printable characters expected)"], r.stderr
    os.replace(path + ".saved", path)
    c.restart(dn)
    c.wait_for_datanodes(1)


def test_a_second_server_on_a_data_dir_or_address_in_use_is_refused(make_cluster):
    c = make_cluster(datanodes=1, replication=1)
    put_bytes(c, "/x", b"x" * 1000)
    dn = c.datanodes[0]
    host = dn.address.split(":")[0]
    # Before the fix both ran: the second datanode wiped the first one's tmp/ and took
    # its identity; a second namenode served the same namespace.
    r = run_datanode(c, dn.data_dir)
    assert r.returncode == 1 and error_lines(r, "datanode") == [
        f"dfs: datanode: {dn.data_dir}: in use by another datanode (pid {dn.proc.pid})"], r.stderr
    r = run_server(c, "namenode", "--data-dir", c.namenode.data_dir, "--listen", f"{host}:{free_port(host)}")
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: {c.namenode.data_dir}: in use by another namenode (pid {c.namenode.proc.pid})"], r.stderr
    # An address in use: one line, no gRPC traceback.
    r = run_server(c, "namenode", "--data-dir", os.path.join(c.base, "nn2"), "--listen", c.namenode_address)
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: cannot listen on {c.namenode_address}: Address already in use"], r.stderr
    # ... refused before the fresh dir got a namespace and a key
    assert not {"namespace.db", "master.key"} & set(os.listdir(os.path.join(c.base, "nn2")))
    r = run_server(c, "namenode", "--data-dir", os.path.join(c.base, "nn3"), "--listen", "nosuch.invalid:8020")
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        "dfs: namenode: cannot listen on nosuch.invalid:8020: Name or service not known"], r.stderr
    assert b"add_port" not in r.stderr and b"INFO" not in r.stderr   # no gRPC C-core line, no log
    r = run_server(c, "datanode", "--data-dir", os.path.join(c.base, "dn2"), "--namenode", c.namenode_address,
                   "--listen", dn.address)
    assert r.returncode == 1 and error_lines(r, "datanode") == [
        f"dfs: datanode: cannot listen on {dn.address}: Address already in use"], r.stderr
    assert c.fsck()["status"] == "HEALTHY"


def _one_file_namenode_stopped(make_cluster):
    """A 1-datanode cluster holding /f, its namenode stopped -> (cluster, /f's bytes,
    the namenode's data dir)."""
    c = make_cluster(datanodes=1, replication=1)
    data = os.urandom(5000)
    put_bytes(c, "/f", data)
    c.kill(c.namenode, signal.SIGTERM)
    return c, data, c.namenode.data_dir


def test_a_namenode_refuses_a_namespace_without_its_master_key(make_cluster):
    # It made a new key when master.key was missing (a namespace.db restored from a
    # backup without it): fsck said HEALTHY and every file was unreadable.
    c, data, nn = _one_file_namenode_stopped(make_cluster)
    key = os.path.join(nn, "master.key")
    os.rename(key, key + ".saved")
    host = c.namenode_address.rpartition(":")[0]
    argv = ("namenode", "--data-dir", nn, "--listen", f"{host}:{free_port(host)}")
    r = run_server(c, *argv)
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: {key}: missing, and {nn}/namespace.db holds files encrypted under it: "
        "restore that key (a new one would leave every file unreadable)"], r.stderr
    assert not os.path.exists(key)
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:   # another namenode's key
        f.write(os.urandom(32))
    r = run_server(c, *argv)
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: {key}: not the key the files of {nn}/namespace.db were encrypted under: "
        "restore the right one"], r.stderr
    os.replace(key + ".saved", key)
    c.restart(c.namenode)
    c.wait_for_datanodes(1)
    check_all(c, {"/f": data})


def test_a_namenode_refuses_a_master_key_others_may_read(make_cluster):
    # A key of 0644 was taken silently (docs say 0600; it decrypts every file). As ssh
    # with a private key: refused, with the command that fixes it.
    c, data, nn = _one_file_namenode_stopped(make_cluster)
    key = os.path.join(nn, "master.key")
    assert os.stat(key).st_mode & 0o777 == 0o600   # as made
    host = c.namenode_address.rpartition(":")[0]
    for mode in (0o644, 0o640, 0o602):
        os.chmod(key, mode)
        r = run_server(c, "namenode", "--data-dir", nn, "--listen", f"{host}:{free_port(host)}")
        assert r.returncode == 1 and error_lines(r, "namenode") == [
            f"dfs: namenode: {key}: permissions {mode:04o} are too open (the key decrypts every file): "
            f"chmod 600 {key}"], r.stderr
    os.chmod(key, 0o400)
    c.restart(c.namenode)
    c.wait_for_datanodes(1)
    check_all(c, {"/f": data})


def test_a_namenode_refuses_a_master_key_without_its_namespace(make_cluster):
    # It started an empty namespace with a new cluster id, and every datanode stopped,
    # told its data dir was another cluster's: "start the datanode on an empty directory".
    c, data, nn = _one_file_namenode_stopped(make_cluster)
    db = os.path.join(nn, "namespace.db")
    saved = {}
    for name in os.listdir(nn):
        if name.startswith("namespace.db"):
            saved[name] = os.path.join(nn, name + ".saved")
            os.rename(os.path.join(nn, name), saved[name])
    host = c.namenode_address.rpartition(":")[0]
    argv = ("namenode", "--data-dir", nn, "--listen", f"{host}:{free_port(host)}")
    r = run_server(c, *argv)
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: {db}: missing beside master.key: restore it from a backup (to start a "
        "new, empty cluster here, remove master.key too)"], r.stderr
    assert not os.path.exists(db)
    # An empty file (a truncating copy, a full disk) or a database of no namespace was
    # taken for a first start: a new empty namespace under a new cluster id, as above.
    for what, make in [("empty (0 bytes)", lambda: open(db, "wb").close()),
                       ("holds no namespace (no dfs tables)",
                        lambda: sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close())]:
        make()
        before = os.path.getsize(db)
        r = run_server(c, *argv)
        assert r.returncode == 1 and error_lines(r, "namenode") == [
            f"dfs: namenode: {db}: {what} beside master.key: restore it from a backup (to start a "
            "new, empty cluster here, remove master.key too)"], r.stderr
        assert os.path.getsize(db) == before
        os.remove(db)
    for name, path in saved.items():
        os.rename(path, os.path.join(nn, name))
    c.restart(c.namenode)
    c.wait_for_datanodes(1)
    check_all(c, {"/f": data})


def _stop(node, sig) -> float:
    t = time.monotonic()
    node.proc.send_signal(sig)
    assert node.proc.wait(timeout=5) == 0
    return time.monotonic() - t


def test_sigterm_and_sigint_stop_promptly_and_restart_in_place(make_cluster):
    c = make_cluster(datanodes=2, replication=2)
    files = {"/a": os.urandom(2 * MiB + 5)}
    put_bytes(c, "/a", files["/a"])
    for sig in (signal.SIGTERM, signal.SIGINT):
        dn = c.datanodes[0]
        assert _stop(dn, sig) < 3 and _stop(c.namenode, sig) < 3
        c.restart(c.namenode)           # same data dirs, same addresses: no lock or port left over
        c.restart(dn)
        c.wait_for_datanodes(2)
        files[f"/after{sig}"] = os.urandom(MiB + 1)
        put_bytes(c, f"/after{sig}", files[f"/after{sig}"])
        check_all(c, files)
    assert all(replica_files(d) for d in c.datanodes)
    for n in [c.namenode, *c.datanodes]:
        with open(n.log_path, errors="replace") as f:
            assert "Traceback" not in f.read(), n.name


def test_sigterm_breaks_off_a_running_repair_copy(make_cluster):
    """A datanode sending a slow repair copy (bandwidth cap) stops at once: it waited
    for the copy to end (the interpreter joins the copy threads at exit)."""
    c = make_cluster(datanodes=3, replication=2, block_size="8MiB", start=False)
    for d in c.datanodes:
        d.argv += ["--repair-bandwidth", "512KiB"]   # ~16 s for the block
    c.start()
    put_bytes(c, "/a", os.urandom(8 * MiB))
    holders = [d for d in c.datanodes if d.address in locations(c, "/a")[0]["names"]]
    target = next(d for d in c.datanodes if d not in holders)
    assert c.cli("setrep", "3", "/a").returncode == 0
    c.wait_for(lambda: tmp_files(target), 10, "the copy to start", interval=0.05)
    for d in holders:
        d.proc.send_signal(signal.SIGTERM)
    t = time.monotonic()
    assert [d.proc.wait(timeout=15) for d in holders] == [0, 0]
    assert time.monotonic() - t < 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_put_rides_through_a_namenode_restart(make_cluster, sig):
    """The writer retries while the namenode is down; the restarted namenode has no
    datanode yet when the writer's AddBlock arrives, and told it `no live datanodes`
    (the put failed) instead of to retry until they register."""
    c = make_cluster(datanodes=3)
    data = os.urandom(10 * MiB)
    p = start_put(c, "/p", args=["--block-size", "3MiB"])
    try:
        p.stdin.write(data[:6 * MiB])          # read 4 MiB at a time: block 2 is half sent
        p.stdin.flush()
        c.wait_for(lambda: any(tmp_files(d) for d in c.datanodes), 20, "block 2 on its way", interval=0.02)
        assert _stop(c.namenode, sig) < 3
        for d in c.datanodes:                  # they register only after the writer's call
            c.pause(d)
        c.restart(c.namenode)
        p.stdin.write(data[6 * MiB:])
        p.stdin.close()
        time.sleep(2)
        for d in c.datanodes:
            c.resume(d)
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
    check_all(c, {"/p": data})
