"""File commands: put, get, cat, ls, mkdir, rm, mv, cp, stat, du, touch, setrep, test,
chmod, chown. The parsers of all of them are here; the commands that move file
contents (put, get, cat, cp) are in transfer.py."""

from __future__ import annotations

import argparse
import json
import sys
import time

from dfs import errors
from dfs.cli import args as cli_args
from dfs.cli.common import (
    PER_ITEM,
    STOPS_ALL,
    basename,
    check_many,
    each,
    human,
    mode_string,
    names_shown_on,
    report,
    resolve,
    stat_or_none,
    target_for,
    walk,
)
from dfs.cli.mode import apply_mode, compile_mode, parse_mode
from dfs.cli.transfer import PUT_THREADS, cmd_cat, cmd_cp, cmd_get, cmd_put
from dfs.config import setting


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def add_parsers(sub) -> None:
    p = sub.add_parser("put", help="copy local files (or - for stdin) into dfs")
    p.add_argument("-f", action="store_true", dest="force", help="overwrite an existing destination")
    p.add_argument("-r", action="store_true", dest="recursive", help="copy directories recursively")
    p.add_argument("--replication", type=cli_args.replication, default=0, metavar="N",
                   help="replicas of each block, 1..512 (default: the cluster's)")
    p.add_argument("--block-size", type=cli_args.block_size, default=0, metavar="SIZE")
    p.add_argument("-t", "--threads", type=_at_least_one, default=PUT_THREADS, metavar="N",
                   help=f"files uploaded at once when there are several (default {PUT_THREADS})")
    p.add_argument("sources", nargs="+", metavar="LOCAL")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("get", help="copy files out of dfs")
    p.add_argument("-f", action="store_true", dest="force")
    p.add_argument("-t", "--threads", type=_at_least_one, default=PUT_THREADS, metavar="N",
                   help=f"files of a directory downloaded at once (default {PUT_THREADS})")
    p.add_argument("sources", nargs="+", metavar="SRC")
    p.add_argument("dest", metavar="LOCALDEST")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("cat", help="print files to stdout")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("ls", help="list directories", add_help=False)
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("-R", action="store_true", dest="recursive")
    p.add_argument("-h", action="store_true", dest="human")
    p.add_argument("--json", action="store_true")
    p.add_argument("paths", nargs="*", default=["/"], metavar="PATH")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("mkdir", help="create directories")
    p.add_argument("-p", action="store_true", dest="parents")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_mkdir)

    p = sub.add_parser("rm", help="remove files or directories")
    p.add_argument("-r", "-R", action="store_true", dest="recursive")
    p.add_argument("-f", action="store_true", dest="force", help="ignore missing paths")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("mv", help="move or rename (atomic)")
    p.add_argument("sources", nargs="+", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=cmd_mv)

    p = sub.add_parser("cp", help="copy within dfs")
    p.add_argument("-f", action="store_true", dest="force")
    p.add_argument("-r", "-R", action="store_true", dest="recursive", help="copy directories recursively")
    p.add_argument("-t", "--threads", type=_at_least_one, default=PUT_THREADS, metavar="N",
                   help=f"files copied at once when there are several (default {PUT_THREADS})")
    p.add_argument("sources", nargs="+", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("stat", help="show a file's status")
    p.add_argument("--json", action="store_true")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("du", help="space used", add_help=False)
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("-s", action="store_true", dest="summary")
    p.add_argument("-h", action="store_true", dest="human")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_du)

    p = sub.add_parser("touch", help="create an empty file or update its mtime")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_touch)

    p = sub.add_parser("setrep", help="change the replication factor")
    p.add_argument("-w", action="store_true", dest="wait", help="wait until it is reached")
    p.add_argument("replication", type=cli_args.replication, metavar="N")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_setrep)

    p = sub.add_parser("test", help="exit 0 if the test holds")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-e", action="store_const", const="e", dest="test")
    g.add_argument("-d", action="store_const", const="d", dest="test")
    g.add_argument("-f", action="store_const", const="f", dest="test")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("chmod", help="change permission bits (octal or u+x style)")
    p.add_argument("-R", action="store_true", dest="recursive", help="the whole tree under PATH")
    p.add_argument("mode", type=_mode_arg, metavar="MODE")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_chmod)

    p = sub.add_parser("chown", help="change owner and group")
    p.add_argument("-R", action="store_true", dest="recursive", help="the whole tree under PATH")
    p.add_argument("owner", type=_owner_arg, metavar="OWNER[:GROUP]")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_chown)


# -- listing ------------------------------------------------------------------
def _ls_line(st, human_sizes: bool) -> str:
    size = human(st.size) if human_sizes else str(st.size)
    repl = "-" if st.is_dir else str(st.replication)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime))
    return f"{mode_string(st.is_dir, st.mode)} {repl:>3} {st.owner} {st.group} {size:>10} {when} {st.path}"


def cmd_ls(args) -> int:
    everything = []
    shown = names_shown_on(sys.stdout)

    unlisted: list[tuple[str, BaseException]] = []   # subdirectories ls -R could not read

    def ls(arg: str) -> None:
        client, path = resolve(args, arg)
        st = client.stat(path)
        if not st.is_dir:
            entries = [st]
        elif args.recursive:
            entries = list(walk(client, path, on_error=lambda d, e: unlisted.append((d, e))))
        else:
            entries = client.listdir(path)
        if args.json:
            everything.extend(e.to_json() for e in entries)
            return
        if st.is_dir and not args.recursive:
            print(f"Found {len(entries)} items")
        for e in entries:
            print(shown(_ls_line(e, args.human)))
    status = each(args, args.paths, ls)
    if args.json:
        print(json.dumps(everything, indent=None))
    for d, e in unlisted:   # what could be listed is; each unreadable directory, one line
        report(args, e, d)
    return status | bool(unlisted)


def cmd_stat(args) -> int:
    """One path: its status (an object with --json). Several: each in turn (with
    --json one object per line)."""
    shown = names_shown_on(sys.stdout)

    def stat(arg: str) -> None:
        client, path = resolve(args, arg)
        st = client.stat(path)
        if args.json:
            print(json.dumps(st.to_json()))
        else:
            for k, v in st.to_json().items():
                print(shown(f"{k}: {v}"))
    return each(args, args.paths, stat)


def cmd_du(args) -> int:
    client, path = resolve(args, args.path)
    st = client.stat(path)
    fmt = human if args.human else str
    shown = names_shown_on(sys.stdout)
    if args.summary or not st.is_dir:
        s = client.content_summary(path)
        print(shown(f"{fmt(s['length'])}  {fmt(s['space_consumed'])}  {path}"))
        return 0
    status = 0
    for e in client.listdir(path):
        if not e.is_dir:   # the listing has its size: no call per file
            print(shown(f"{fmt(e.size)}  {fmt(e.size * e.replication)}  {e.path}"))
            continue
        try:
            s = client.content_summary(e.path)
        except errors.DfsFileNotFoundError:
            continue   # removed since the listing, as GNU du
        except STOPS_ALL:
            raise
        except PER_ITEM as err:   # e.g. a subdirectory it may not read: the rest go on
            report(args, err, e.path)
            status = 1
            continue
        print(shown(f"{fmt(s['length'])}  {fmt(s['space_consumed'])}  {e.path}"))
    return status


# -- namespace changes --------------------------------------------------------
def cmd_mkdir(args) -> int:
    def mkdir(arg: str) -> None:
        client, path = resolve(args, arg)
        try:
            client.mkdir(path, parents=args.parents)
        except errors.DfsFileNotFoundError:   # the namenode names the missing parent;
            raise errors.DfsFileNotFoundError(path=path) from None   # mkdir(1) the argument
    return each(args, args.paths, mkdir)


def cmd_rm(args) -> int:
    def rm(arg: str) -> None:
        client, path = resolve(args, arg)
        try:
            # No stat first: it does not see a file still being written (its first
            # version), which the namenode's delete removes, as HDFS's -rm does.
            client.delete(path, recursive=args.recursive, files_only=not args.recursive)
        except errors.DfsFileNotFoundError:
            if not args.force:
                raise
    return each(args, args.paths, rm)


def cmd_mv(args) -> int:
    many = len(args.sources) > 1
    client, dest = resolve(args, args.dest)
    check_many(client, dest, many)

    def mv(src: str) -> None:
        sclient, spath = resolve(args, src)
        if sclient.namenode != client.namenode:
            raise errors.InvalidArgumentError("cannot move between clusters", src)
        if sclient is not client:   # a rename is one request, made as one user
            raise errors.InvalidArgumentError(
                f"source and destination name different users ({sclient.nn.caller.user}, "
                f"{client.nn.caller.user}): a rename is made as one user", src)
        target = target_for(client, dest, basename(spath), many)
        if target.rstrip("/") == spath.rstrip("/"):
            raise errors.InvalidArgumentError(f"'{spath}' and '{target}' are the same file", spath)
        client.rename(spath, target)
    return each(args, args.sources, mv)


def cmd_touch(args) -> int:
    client, path = resolve(args, args.path)
    st = stat_or_none(client, path)
    if st is None and path.endswith("/"):
        raise errors.DfsFileNotFoundError(path=args.path)   # `touch new/` names a directory (coreutils)
    if st is None:
        try:
            client.create(path, create_parent=False).close()
            return 0
        except errors.DfsFileExistsError:
            pass   # another client made it since the stat: touch it, as if it had been there
    client.set_times(path, time.time())
    return 0


SETREP_TIMEOUT = 600.0   # seconds `setrep -w` waits at most ($DFS_SETREP_TIMEOUT)


def setrep_timeout() -> float:
    return setting("DFS_SETREP_TIMEOUT", SETREP_TIMEOUT)


def cmd_setrep(args) -> int:
    """Set the target; with -w wait until every block of every file has exactly N live
    replicas. A wait that cannot end (fewer datanodes in service than N) or does not
    end in time is a failure (exit 1) that says so; the target stays set and the
    namenode goes on working towards it, as in HDFS."""
    timeout = setrep_timeout() if args.wait else 0.0
    client, path = resolve(args, args.path)
    entries, status = _tree(args, client, path)
    files = [f for f in entries if not f.is_dir]
    done = []
    for f in files:
        try:
            client.set_replication(f.path, args.replication)
            done.append(f)
        except STOPS_ALL:
            raise
        except PER_ITEM as e:   # one line each; the other files go on (hdfs dfs -setrep)
            report(args, e, f.path)
            status = 1
    if not args.wait:
        return status
    n = args.replication
    deadline = time.monotonic() + timeout
    for f in done:
        while True:
            located = client.block_locations(f.path)
            counts = [len(b.names) for b in located]
            if all(c == n for c in counts):
                break
            lost = next((b for b in located if b.corrupt), None)
            if lost is not None:   # nothing to copy from: no wait would end
                raise errors.DfsError(f"replication {n} cannot be reached: block {lost.block_id} has no "
                                      "readable replica (the target is set; not waiting)", f.path)
            # (a node with a dead data dir can hold no replica: not in service for this)
            why = unreachable_replication(n, [d.state for d in client.report().datanodes if not d.storage_failed])
            if why:
                raise errors.DfsError(f"{why} (the target is set; not waiting)", f.path)
            if time.monotonic() > deadline:
                worst = max(counts, key=lambda c: abs(c - n))
                raise errors.DfsError(f"replication {n} not reached within {timeout:g} s (a block has {worst} "
                                      f"live replica{'s' * (worst != 1)}; the target is set and the namenode "
                                      "keeps working on it)", f.path)
            time.sleep(0.5)
    return status


def unreachable_replication(n: int, states: list[str]) -> str:
    """Why ``n`` replicas cannot be reached now ("" if they may be): fewer datanodes in
    service than ``n``. A silent node counts until it is declared dead, so `setrep -w`
    fails within the dead-node timeout instead of waiting out DFS_SETREP_TIMEOUT."""
    in_service = sum(1 for s in states if s in ("live", "stale"))
    if in_service >= n:
        return ""
    return f"replication {n} cannot be reached: {in_service} datanode{'s' * (in_service != 1)} in service"


def cmd_test(args) -> int:
    try:
        client, path = resolve(args, args.path)   # a file with a trailing slash, '': false
        st = stat_or_none(client, path)
    except (errors.DfsFileNotFoundError, errors.DfsNotADirectoryError, errors.DfsPermissionError):
        st = None   # as test(1) and hdfs dfs -test: a path that cannot be there is false, silently
    ok = st is not None and (args.test == "e" or (args.test == "d") == st.is_dir)
    return 0 if ok else 1


def _mode_arg(text: str) -> str:
    """MODE as chmod takes it: octal, or clauses like u+x,go-w,g+s (dfs/cli/mode.py); checked
    when the command line is parsed (a bad one is a usage error)."""
    try:
        parse_mode(text, 0)
    except errors.InvalidArgumentError:
        raise argparse.ArgumentTypeError(f"invalid mode: {text!r}") from None
    return text


def _owner_arg(text: str) -> str:
    """OWNER, OWNER:GROUP or :GROUP; names without spaces or further colons."""
    owner, _, group = text.partition(":")
    if not (owner or group) or ":" in group or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"invalid owner {text!r} (OWNER, OWNER:GROUP or :GROUP)")
    return text


def _tree(args, client, path: str) -> tuple[list, int]:
    """``path``'s status, then every entry under it -> (entries, 1 if a directory could
    not be listed: reported on its own line, the walk goes on). setrep's: it changes
    files only, so listing all before changing any loses nothing."""
    st = client.stat(path)
    unlisted = []
    entries = [st] + (list(walk(client, path, on_error=lambda d, e: unlisted.append(e)))
                      if st.is_dir else [])
    for e in unlisted:
        report(args, e)
    return entries, int(bool(unlisted))


def _each_entry(args, path: str, fn) -> int:
    """``fn(client, status)`` for ``path`` and, with -R, everything under it, each
    directory before it is listed (pre-order, as GNU chmod -R and hdfs dfs -chmod -R:
    ``chmod -R 755`` opens up a tree its owner could not read). A failure, to change an
    entry or to list a directory, prints its line and the rest go on (exit 1)."""
    client, path = resolve(args, path)
    top = client.stat(path)
    status = _apply(args, fn, client, top)
    if not (args.recursive and top.is_dir):
        return status
    unlisted = []

    def unreadable(d, e) -> None:
        report(args, e)
        unlisted.append(d)
    try:
        # lazily: walk lists each directory only once this loop has changed it
        for st in walk(client, path, on_error=unreadable):
            status |= _apply(args, fn, client, st)
    except STOPS_ALL:
        raise
    except PER_ITEM as e:   # the listing of ``path`` itself (walk reports the others)
        report(args, e)
        status = 1
    return status | bool(unlisted)


def _apply(args, fn, client, st) -> int:
    """``fn(client, st)`` -> 0, or 1 once its failure is reported."""
    try:
        fn(client, st)
    except STOPS_ALL:
        raise
    except PER_ITEM as e:
        report(args, e, st.path)
        return 1
    return 0


def cmd_chmod(args) -> int:
    changes = compile_mode(args.mode)

    def chmod(client, st) -> None:
        client.chmod(st.path, apply_mode(changes, st.mode, st.is_dir))
    return _each_entry(args, args.path, chmod)


def cmd_chown(args) -> int:
    owner, _, group = args.owner.partition(":")
    return _each_entry(args, args.path, lambda client, st: client.chown(st.path, owner, group))
