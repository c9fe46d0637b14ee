"""compose.yaml stays in step with the CLI (SPEC §2, §3).

The demo cluster is never started by the tests; these checks only make sure
every `dfs ...` command in it parses with the real argument parser and that
the wiring (volumes, addresses) is consistent.
"""

import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict = COMPOSE["services"]


def dfs_argv(command) -> list[str]:
    """The argv after `dfs` in a service command (plain, list or `sh -c "... exec dfs ..."`)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        script = shlex.split(argv[2])
        assert "exec" in script, f"sh -c script does not exec dfs: {argv[2]!r}"
        argv = script[len(script) - 1 - script[::-1].index("exec") + 1 :]
    assert argv and argv[0] == "dfs", f"not a dfs command: {command!r}"
    return argv[1:]


def option(argv: list[str], name: str) -> str | None:
    """Value of `--name VALUE` / `--name=VALUE` in argv, or None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def role(argv: list[str]) -> str:
    """The subcommand, skipping global flags (`--namenode X`, `--debug`)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1 if argv[i] == "--debug" or "=" in argv[i] else 2
    return argv[i]


ARGV = {name: dfs_argv(svc["command"]) for name, svc in SERVICES.items()}
NODES = {name: argv for name, argv in ARGV.items() if role(argv) in ("namenode", "datanode")}


@pytest.mark.parametrize("service", sorted(ARGV))
def test_command_parses(service):
    from dfs.cli.main import build_parser

    argv = ARGV[service]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse reports usage errors this way
        pytest.fail(f"{service}: `dfs {shlex.join(argv)}` does not parse (exit {exc.code})")


def test_roles():
    roles = sorted(role(argv) for argv in NODES.values())
    assert roles == ["datanode", "datanode", "datanode", "namenode"]
    racks = {option(argv, "--rack") for argv in NODES.values() if role(argv) == "datanode"}
    assert len(racks) >= 2, "datanodes should span at least two racks"


def named_volumes(svc: dict) -> list[str]:
    names = []
    for vol in svc.get("volumes", []):
        source = vol.get("source") if isinstance(vol, dict) else vol.split(":", 1)[0]
        if isinstance(vol, dict) and vol.get("type", "volume") != "volume":
            continue
        if source and not source.startswith((".", "/", "~", "$")):
            names.append(source)
    return names


def test_named_volumes_declared_and_per_node():
    declared = set(COMPOSE.get("volumes") or {})
    owners: dict[str, str] = {}
    for name, svc in SERVICES.items():
        for vol in named_volumes(svc):
            assert vol in declared, f"{name}: volume {vol!r} is not declared under volumes:"
            assert vol not in owners, f"volume {vol!r} is shared by {owners[vol]} and {name}"
            owners[vol] = name
    for name, argv in NODES.items():
        data_dir = option(argv, "--data-dir")
        assert data_dir, f"{name}: no --data-dir"
        mounted = {
            (v.split(":")[1] if isinstance(v, str) else v.get("target"))
            for v in SERVICES[name]["volumes"]
            if (v.split(":", 1)[0] if isinstance(v, str) else v.get("source")) in owners
        }
        assert data_dir in mounted, f"{name}: --data-dir {data_dir} is not on its own named volume"


def test_addresses():
    (nn_argv,) = [argv for argv in NODES.values() if role(argv) == "namenode"]
    nn = option(nn_argv, "--listen")
    assert nn, "namenode has no --listen"
    listens = [option(argv, "--listen") for argv in NODES.values()]
    assert None not in listens, "every node should say --listen explicitly"
    assert len(set(listens)) == len(listens), f"duplicate --listen addresses: {listens}"
    for name, argv in ARGV.items():
        if name in NODES and role(argv) == "namenode":
            continue
        assert option(argv, "--namenode") == nn, f"{name}: --namenode should be {nn}"
        host = nn.rsplit(":", 1)[0]
        assert host in SERVICES or host in {s.get("hostname") for s in SERVICES.values()}
