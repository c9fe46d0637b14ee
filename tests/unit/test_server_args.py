"""`dfs namenode` / `dfs datanode` / `dfs cluster up` flags are checked by the parser
(SPEC §2): a bad value is one line on stderr and exit 2, before any port is bound."""

from __future__ import annotations

import argparse

import pytest

from dfs import config
from dfs.cli.main import build_parser
from dfs.cli.servers import datanode_port

NN = ["namenode", "--data-dir", "/tmp/nn"]
DN = ["datanode", "--data-dir", "/tmp/dn", "--namenode", "127.0.0.1:8020"]


def usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err   # one line, no usage block
    assert "Traceback" not in err
    return err


def test_defaults_are_spec_defaults():
    nn = build_parser().parse_args(NN)
    assert (nn.listen, nn.replication, nn.block_size) == ("127.0.0.1:8020", 3, 64 << 20)
    assert (nn.heartbeat_interval, nn.dead_node_timeout) == (3.0, 30.0)
    dn = build_parser().parse_args(DN)
    assert (dn.listen, dn.nn_address, dn.rack) == ("127.0.0.1:9866", "127.0.0.1:8020", "/default-rack")
    up = build_parser().parse_args(["cluster", "up"])
    assert (up.port, up.datanodes, up.replication, up.block_size) == (8020, 3, None, None)


def test_good_values_are_taken():
    nn = build_parser().parse_args(NN + ["--listen", "10.0.0.1:9000", "--replication", "2", "--block-size",
                                         "64KiB", "--heartbeat-interval", "0.5", "--dead-node-timeout", "2.5"])
    assert (nn.listen, nn.replication, nn.block_size, nn.heartbeat_interval, nn.dead_node_timeout) == \
        ("10.0.0.1:9000", 2, 65536, 0.5, 2.5)
    dn = build_parser().parse_args(["datanode", "--data-dir", "d", "--namenode", "nn1", "--rack", "/dc1/r3/",
                                    "--listen", "[::1]:9866", "--scan-interval", "60", "--repair-bandwidth", "10M"])
    assert (dn.nn_address, dn.rack, dn.listen, dn.scan_interval, dn.repair_bandwidth) == \
        ("nn1:8020", "/dc1/r3", "[::1]:9866", 60.0, 10 << 20)
    up = build_parser().parse_args(["cluster", "up", "--port", "9020", "--datanodes", "5", "--block-size", "1MiB"])
    assert (up.port, up.datanodes, up.block_size) == (9020, 5, 1 << 20)


@pytest.mark.parametrize("argv, words", [
    (NN + ["--heartbeat-interval", "0"], "--heartbeat-interval: invalid interval '0'"),
    (NN + ["--heartbeat-interval", "-1"], "invalid interval '-1'"),
    (NN + ["--heartbeat-interval", "inf"], "invalid interval 'inf'"),
    (NN + ["--heartbeat-interval", "nan"], "invalid interval 'nan'"),
    (NN + ["--dead-node-timeout", "0"], "--dead-node-timeout: invalid interval '0'"),
    (NN + ["--dead-node-timeout", "soon"], "invalid interval 'soon'"),
    (NN + ["--heartbeat-interval", "1e12"], "invalid interval '1e12' (a number of seconds > 0 and < 1e9)"),
    (NN + ["--heartbeat-interval", "1e9"], "invalid interval '1e9' (a number of seconds > 0 and < 1e9)"),
    (NN + ["--replication", "0"], "--replication: invalid replication '0'"),
    (NN + ["--replication", "513"], "invalid replication '513'"),
    (NN + ["--block-size", "12Q"], "--block-size: invalid size '12Q'"),
    (NN + ["--block-size", "1K"], "invalid block size '1K'"),
    (NN + ["--block-size", "65537"], "invalid block size '65537'"),
    (NN + ["--block-size", "8388608T"], "invalid block size '8388608T'"),   # 2^63: every create failed
    (NN + ["--block-size", "3G"], "invalid block size '3G' (a multiple of 16KiB from 64KiB to 2GiB)"),
    (NN + ["--listen", "127.0.0.1"], "--listen: invalid address '127.0.0.1'"),
    (NN + ["--listen", "host:0"], "invalid address 'host:0'"),
    (NN + ["--listen", "host:70000"], "invalid address 'host:70000'"),
    (NN + ["--listen", ":8020"], "invalid address ':8020'"),
    (NN + ["--data-dir", ""], "--data-dir: invalid data dir"),
    (["namenode"], "the following arguments are required: --data-dir"),
    (DN + ["--listen", "0.0.0.0:9866"], "--listen: wildcard address '0.0.0.0:9866'"),
    (DN + ["--listen", "[::]:9866"], "--listen: wildcard address '[::]:9866'"),
    (DN + ["--rack", "rack1"], "--rack: invalid rack 'rack1'"),
    (DN + ["--rack", "/"], "invalid rack '/'"),
    (DN + ["--rack", "/a b"], "invalid rack '/a b'"),
    (DN + ["--scan-interval", "0"], "--scan-interval: invalid interval '0'"),
    (DN + ["--replica-check-interval", "-5"], "--replica-check-interval: invalid interval '-5'"),
    (DN + ["--heartbeat-interval", "0"], "--heartbeat-interval: invalid interval '0'"),
    (DN + ["--scan-interval", "1e300"],
     "--scan-interval: invalid interval '1e300' (a number of seconds > 0 and < 1e9)"),
    (DN + ["--scan-rate", "0"], "--scan-rate: invalid rate '0'"),
    (DN + ["--scan-rate", "1x"], "--scan-rate: invalid size '1x'"),
    (DN + ["--repair-bandwidth", "fast"], "--repair-bandwidth: invalid size 'fast'"),
    (["datanode", "--data-dir", "d", "--namenode", "nn:port"], "--namenode: invalid namenode address 'nn:port'"),
    (["cluster", "up", "--port", "0"], "--port: invalid port '0'"),
    (["cluster", "up", "--port", "65536"], "invalid port '65536'"),
    (["cluster", "up", "--datanodes", "-1"], "--datanodes: invalid number '-1'"),
    (["cluster", "up", "--datanodes", "0"], "--datanodes: invalid number '0' (a whole number >= 1"),
    (["cluster", "up", "--replication", "0"], "--replication: invalid replication '0'"),
    (["cluster", "up", "--block-size", "1x"], "--block-size: invalid size '1x'"),
])
def test_bad_values_are_one_line_usage_errors(capsys, argv, words):
    err = usage_error(capsys, argv)
    assert err.startswith(f"dfs: {argv[0]}"), err
    assert words in err, err


def test_datanode_port_is_9866_for_the_default_and_never_shared_between_clusters():
    assert datanode_port(8020) == 9866
    ports = [datanode_port(p) for p in range(1, 65536)]
    assert all(1024 <= p < 65536 for p in ports[1023:])   # unprivileged stays unprivileged
    assert len(set(ports)) == len(ports)       # one-to-one: distinct --port, distinct datanode ports
    assert datanode_port(9020) == 10866


def test_every_seconds_option_shares_one_check():
    # One function, so one message: an option with its own float() check would drift from the rest.
    from dfs.cli import args as a
    parser = build_parser()
    seen = []
    def walk(p, path):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + [name])
            elif action.metavar == "SECS":
                seen.append((" ".join(path), action.dest))
                assert action.type is a.seconds, (path, action.dest)
    walk(parser, [])
    assert ("admin safemode", "timeout") in seen and ("namenode", "heartbeat_interval") in seen, seen


def test_every_server_default_is_a_valid_value():
    # The defaults bypass the type functions: check them the same way.
    from dfs.cli import args as a
    assert a.listen_address(config.DEFAULT_NAMENODE) == config.DEFAULT_NAMENODE
    assert a.listen_address(config.DEFAULT_DATANODE) == config.DEFAULT_DATANODE
    assert a.block_size(str(config.DEFAULT_BLOCK_SIZE)) == config.DEFAULT_BLOCK_SIZE
    assert a.rack("/default-rack") == "/default-rack"


def test_a_dead_node_timeout_under_three_heartbeats_is_a_usage_error(tmp_path):
    """At 1 s against the default 3 s beats, live datanodes flapped dead and writes failed."""
    import subprocess
    import sys
    d = tmp_path / "nn"
    r = subprocess.run([sys.executable, "-m", "dfs", "namenode", "--data-dir", str(d), "--listen",
                        "127.0.0.1:1", "--dead-node-timeout", "1"], capture_output=True, timeout=60)
    assert (r.returncode, r.stderr) == (2, b"dfs: namenode: --dead-node-timeout 1 is under 3 heartbeats "
                                           b"(3 s each): live datanodes would be declared dead\n")
    assert not d.exists()


def test_test_clusters_keep_the_namenodes_dead_timeout_rule(tmp_path):
    # scripts/bench_fuse.py's Cluster(heartbeat=3.0) got the default 6 s: its namenode
    # refused to start once the rule came in.
    from dfs.cli.servers import MIN_DEAD_BEATS
    from dfs.testing.cluster import Cluster
    for hb in (0.3, 0.5, 1.0, 2.0, 3.0, 5.0):
        argv = Cluster(str(tmp_path / str(hb)), heartbeat=hb).namenode.argv
        assert float(argv[argv.index("--dead-node-timeout") + 1]) >= MIN_DEAD_BEATS * hb, hb


def test_a_test_cluster_whose_namenode_cannot_start_says_why_and_leaves_nothing_running(tmp_path):
    # It waited 30 s for datanodes, then raised a timeout and left them running.
    import time

    from dfs.testing.cluster import Cluster
    c = Cluster(str(tmp_path / "c"), datanodes=1, heartbeat=3.0, dead_timeout=1.0)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match=r"the namenode exited \(2\): .*--dead-node-timeout 1"):
        c.start()
    assert time.monotonic() - t < 15
    assert all(node.proc.poll() is not None for node in (c.namenode, *c.datanodes))   # stopped
