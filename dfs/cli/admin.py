"""Cluster commands: locate, fsck, admin report/safemode/decommission, mount/umount."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from dfs import errors
from dfs.cli import args as cli_args
from dfs.cli.common import human, names_shown_on, resolve
from dfs.rpc.convert import datanode_json


def add_parsers(sub) -> None:
    p = sub.add_parser("locate", help="block locations of a file (locality hints)")
    p.add_argument("--json", action="store_true")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_locate)

    p = sub.add_parser("fsck", help="check the health of files' blocks")
    p.add_argument("--json", action="store_true")
    p.add_argument("--files", action="store_true")
    p.add_argument("--blocks", action="store_true")
    p.add_argument("--locations", action="store_true")
    p.add_argument("path", nargs="?", default="/", metavar="PATH")
    p.set_defaults(func=cmd_fsck)

    admin = sub.add_parser("admin", help="cluster administration")
    asub = admin.add_subparsers(dest="admin_command", metavar="ADMIN_COMMAND", required=True)
    p = asub.add_parser("report", help="datanodes and block health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)
    p = asub.add_parser("safemode", help="get, enter, leave or wait for safe mode")
    p.add_argument("action", choices=["get", "enter", "leave", "wait"])
    p.add_argument("--timeout", type=cli_args.seconds, default=None, metavar="SECS",
                   help="wait: give up after SECS (exit 1, saying why safe mode is on); default: no limit")
    p.set_defaults(func=cmd_safemode)
    p = asub.add_parser("decommission", help="drain a datanode")
    p.add_argument("--cancel", action="store_true",
                   help="put a decommissioning or decommissioned datanode back in service")
    p.add_argument("address", type=cli_args.listen_address, metavar="HOST:PORT")
    p.set_defaults(func=cmd_decommission)

    p = sub.add_parser("mount", help="mount dfs with FUSE")
    p.add_argument("--foreground", action="store_true")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    p.set_defaults(func=cmd_mount)
    p = sub.add_parser("umount", help="unmount a dfs FUSE mount")
    p.add_argument("-l", "--lazy", action="store_true",
                   help="detach now even if busy; the mount goes when its last file is closed")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    p.set_defaults(func=cmd_umount)


def cmd_locate(args) -> int:
    client, path = resolve(args, args.path)
    locs = client.block_locations(path)
    if args.json:
        print(json.dumps([b.to_json() for b in locs]))
        return 0
    for b in locs:
        where = ", ".join(f"{n} ({r})" for n, r in zip(b.names, b.racks, strict=True)) or "NO LIVE REPLICA"
        print(f"block {b.block_id} offset {b.offset} length {b.length}: {where}")
    return 0


def cmd_fsck(args) -> int:
    client, path = resolve(args, args.path)
    listed = bool(args.files or args.blocks or args.locations)
    r = client.fsck(path, files=listed)
    if args.json:
        out = {"status": r.status, "path": path, "files": r.files, "directories": r.directories,
               "blocks": r.blocks, "total_size": r.total_size, "under_replicated": r.under_replicated,
               "missing": r.missing, "corrupt": r.corrupt,
               "decommissioning_replicas": r.decommissioning_replicas,
               "decommissioned_replicas": r.decommissioned_replicas,
               "safemode": r.safemode, "unreported": r.unreported}
        if args.files or args.blocks or args.locations:
            out["details"] = [_file_json(f, args) for f in r.details]
        print(json.dumps(out))
    else:
        shown = names_shown_on(sys.stdout)
        if not listed:
            # the files that are not HEALTHY, one line each (as HDFS's fsck): the summary
            # alone said "Corrupt blocks: 1" without naming the file
            for f in r.details:
                print(shown(f"{f.path}: {f.status}"))
        else:
            for f in r.details:
                print(shown(f"{f.path} {f.length} bytes, replication {f.replication}, "
                            f"{len(f.blocks)} block(s): {f.status}"))
                if args.blocks or args.locations:
                    for b in f.blocks:
                        live, leaving = _replica_counts(b)
                        line = f"  blk_{b.block.block_id} len={b.block.length} live_repl={live}"
                        if leaving:
                            line += f" decommissioning_repl={leaving}"
                        if args.locations:
                            line += " [" + ", ".join(
                                f"{d.address}{d.rack}" + (f" ({d.state})" if d.state in _LEAVING else "")
                                for d in b.locations) + "]"
                        print(line)
        if r.safemode:
            why = f" ({r.safemode_reason})" if r.safemode_reason else ""
            print(f"The namenode is in safe mode{why}"
                  + (f": {r.unreported} block(s) not reported by any datanode yet, "
                     "not counted as missing" if r.unreported else ""))
        print(f"Status: {r.status}")
        print(f" Total size:\t{r.total_size} B")
        print(f" Total dirs:\t{r.directories}")
        print(f" Total files:\t{r.files}")
        print(f" Total blocks:\t{r.blocks}")
        print(f" Under-replicated blocks:\t{r.under_replicated}")
        print(f" Missing blocks:\t{r.missing}")
        print(f" Corrupt blocks:\t{r.corrupt}")
        if r.safemode:
            print(f" Blocks not reported yet:\t{r.unreported}")
        print(f" Decommissioning replicas:\t{r.decommissioning_replicas}")
        print(f" Decommissioned replicas:\t{r.decommissioned_replicas}")
        print(shown(f"The filesystem under path '{path}' is {r.status}")
              + (" (namenode in safe mode: waiting for block reports)" if r.unreported else ""))
    return 0 if r.status == "HEALTHY" else 1


_LEAVING = ("decommissioning", "decommissioned")


def _replica_counts(b) -> tuple[int, int]:
    """(live replicas on nodes in service, on decommissioning/decommissioned ones): only the
    first count toward the target, as HDFS's fsck; the others still serve reads."""
    leaving = sum(1 for d in b.locations if d.state in _LEAVING)
    return len(b.locations) - leaving, leaving


def _file_json(f, args) -> dict:
    d = {"path": f.path, "length": f.length, "replication": f.replication, "status": f.status}
    if args.blocks or args.locations:
        d["blocks"] = [{"block_id": b.block.block_id, "length": b.block.length,
                        "live_replicas": _replica_counts(b)[0],
                        "decommissioning_replicas": _replica_counts(b)[1],
                        **({"locations": [x.address for x in b.locations]} if args.locations else {})}
                       for b in f.blocks]
    return d


def cmd_report(args) -> int:
    client, _ = resolve(args, "/")
    r = client.report()
    nodes = [datanode_json(d) for d in r.datanodes]
    live = [n for n in nodes if n["state"] != "dead"]
    dead = [n for n in nodes if n["state"] == "dead"]
    # Beating, but with a dead data dir: its disk needs replacing (HDFS: volume failures).
    failed = [n for n in live if n["storage_failed"]]
    older = [n for n in live if n["outdated"]]   # mid rolling upgrade (docs/healing.md, Upgrading)
    eta = r.pending_repair_bytes / r.repair_rate if r.repair_rate > 0 else None
    if args.json:
        print(json.dumps({"safemode": r.safemode, "live": live, "dead": dead,
                          "under_replicated": r.under_replicated, "missing": r.missing, "corrupt": r.corrupt,
                          "blocks": r.blocks, "files": r.files, "pending_repair_bytes": int(r.pending_repair_bytes),
                          "repair_rate": r.repair_rate, "eta_seconds": eta, "unreported": r.unreported,
                          "storage_failed_nodes": len(failed), "outdated_nodes": len(older)}))
        return 0
    cap = sum(n["capacity"] for n in live)
    used = sum(n["used"] for n in live)
    print(f"Safe mode: {'ON' if r.safemode else 'off'}")
    print(f"Configured capacity: {human(cap)}B   DFS used: {human(used)}B")
    print(f"Files: {r.files}   Blocks: {r.blocks}")
    print(f"Under-replicated: {r.under_replicated}   Missing: {r.missing}   Corrupt: {r.corrupt}"
          + (f"   Not reported yet: {r.unreported}" if r.safemode else ""))
    if r.pending_repair_bytes:
        rate = f" at {human(r.repair_rate)}B/s, about {eta:.0f} s" if eta else ""
        print(f"To copy: {human(r.pending_repair_bytes)}B{rate}")
    print(f"\nDatanodes: {len(live)} live, {len(dead)} dead"
          + (f", {len(failed)} with a dead data dir (replace the disk, restart the datanode)" if failed else "")
          + (f", {len(older)} running an older dfs (upgrade {'them' if len(older) > 1 else 'it'})"
             if older else ""))
    for n in nodes:
        age = time.time() - n["last_heartbeat"]
        print(f"  {n['address']:22} {n['rack']:14} {n['state']:16} blocks={n['blocks']:<6} "
              f"used={human(n['used'])}B free={human(n['remaining'])}B protocol={n['protocol']} "
              f"last heartbeat {age:.1f}s ago"
              + _node_note(n))
    return 0


def _node_note(n: dict) -> str:
    """Why a datanode takes no new blocks, when it does not."""
    if n["storage_failed"]:
        # Said even of a node gone silent since: its disk still needs replacing.
        ago = max(0.0, time.time() - n["storage_failed_at"]) if n["storage_failed_at"] else 0.0
        return (f" DATA DIR DEAD for {ago:.0f}s ({n['storage_failed']}): holds and takes no blocks "
                "until its disk is replaced and it restarts")
    if n["state"] != "dead" and not n["remaining"]:
        return " (takes no new blocks: disk full or refusing writes)"
    if n["outdated"]:
        return " runs an older dfs: upgrade it (writes go to upgraded datanodes; it serves reads and repairs)"
    return ""


def cmd_safemode(args) -> int:
    client, _ = resolve(args, "/")
    if args.action == "wait":
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        while (r := _safemode_within(client, deadline)).on:
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.DfsError(f"safe mode still ON after {args.timeout:g}s ({r.reason})")
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
        print("Safe mode is OFF")
        return 0
    r = client.safemode(args.action)
    print(f"Safe mode is {'ON' if r.on else 'OFF'}" + (f" ({r.reason})" if r.on and r.reason else ""))
    return 0


def _safemode_within(client, deadline: float | None):
    """Ask for the safe mode state, no later than ``deadline`` (a namenode that does
    not answer must not stretch ``wait --timeout`` by its own RPC deadline)."""
    if deadline is None:
        return client.safemode("get")
    return client.safemode("get", budget=max(0.05, deadline - time.monotonic()))


def cmd_decommission(args) -> int:
    client, _ = resolve(args, "/")
    r = client.decommission(args.address, cancel=args.cancel)
    if r.stuck_blocks:
        # Accepted (as HDFS's), but it cannot finish: say so here, not only in the namenode's log.
        print(f"dfs: admin decommission: {args.address}: warning: {r.stuck_blocks} of its blocks have "
              f"replication up to {r.max_replication} but only {r.in_service} other datanode"
              f"{'s' * (r.in_service != 1)} in service: it stays decommissioning until more join "
              f"or the replication is lowered", file=sys.stderr)
    print(f"{args.address} is back in service" if args.cancel else f"Decommissioning {args.address}")
    return 0


def cmd_mount(args) -> int:
    try:
        from dfs_fuse.mount import mount
    except ImportError as e:
        raise errors.DfsError(f"FUSE support is not available ({e}); "
                              "pip install -e '.[fuse]' in dfs's checkout") from None
    client, _ = resolve(args, "/")
    opts = {}
    for group in args.options:
        for o in group.split(","):
            k, _, v = o.partition("=")
            opts[k.strip()] = v or True
    return mount(client, args.mountpoint, foreground=args.foreground, options=opts)


def cmd_umount(args) -> int:
    """Unmount a dfs mount, after checking in /proc/self/mountinfo that it is one: the
    tools' own refusals ("not found in /etc/mtab", "Device or resource busy") say
    little, and fusermount as root would unmount whatever is there."""
    mnt = args.mountpoint
    target = os.path.abspath(mnt)
    target = os.path.join(os.path.realpath(os.path.dirname(target)), os.path.basename(target))
    info = mount_info(target)
    if info is None:
        if not os.path.lexists(target):
            raise errors.DfsFileNotFoundError(path=mnt)
        raise errors.DfsError("not a mount point", mnt)
    fstype, source, options = info
    if not (fstype == "fuse.dfs" or (fstype.startswith("fuse") and source.startswith("dfs:"))):
        raise errors.DfsError(f"not a dfs mount (a {fstype} file system)", mnt)
    owner = mounted_by(options)
    if owner is not None and os.geteuid() not in (0, owner):
        # fusermount would say "entry for M not found in /etc/mtab": it looks for the
        # caller's own mounts only.
        raise errors.DfsError(f"mounted by another user (uid {owner}); only they or root can unmount it",
                              mnt)
    lazy = ["-z"] if args.lazy else []
    for tool in (["fusermount3", "-u", *lazy], ["fusermount", "-u", *lazy],
                 ["umount", *(["-l"] if args.lazy else [])]):
        try:
            r = subprocess.run([*tool, target], capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            continue
        except subprocess.TimeoutExpired:
            raise errors.DfsError(f"{tool[0]} did not finish within 30 s", mnt) from None
        if r.returncode == 0:
            return 0
        msg = (r.stderr.strip().splitlines() or ["unmount failed"])[-1]
        if "busy" in msg.lower():
            raise errors.DfsError(
                f"busy: files or directories in it are in use (close them, or detach it now "
                f"with: dfs umount -l {mnt})", mnt)
        raise errors.DfsError(msg.split(": ")[-1] or "unmount failed", mnt)
    raise errors.DfsError("no fusermount or umount found", mnt)


MOUNTINFO = "/proc/self/mountinfo"


def mount_info(path: str) -> tuple[str, str, str] | None:
    """(file system type, source, super options) of the mount on exactly ``path``, from
    /proc/self/mountinfo (the topmost one when mounts are stacked); None if none is."""
    found = None
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                try:
                    sep = fields.index("-", 6)
                except ValueError:
                    continue
                if _unescape(fields[4]) == path and len(fields) > sep + 2:
                    found = (fields[sep + 1], _unescape(fields[sep + 2]), " ".join(fields[sep + 3:]))
    except OSError as e:
        raise errors.DfsError(f"cannot read {MOUNTINFO}: {e.strerror}") from None
    return found


def mounted_by(super_options: str) -> int | None:
    """The uid that made a FUSE mount (its ``user_id=`` super option); None if not said."""
    m = re.search(r"(?:^|,)user_id=(\d+)(?:,|$)", super_options)
    return int(m[1]) if m else None


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in names as \\ooo octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
