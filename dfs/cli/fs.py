"""File commands: put, get, cat, ls, mkdir, rm, mv, cp, stat, du, touch, setrep, test, chmod, chown."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from dfs import errors
from dfs.cli import args as cli_args
from dfs.cli.args import UsageError
from dfs.cli.common import PER_ITEM, STOPS_ALL, Progress, basename, each, human, join, mode_string, report, resolve
from dfs.directio import DirectFile

# Large downloads bypass the page cache: see dfs/directio.py.
DIRECT_IO_MIN = 64 << 20
# Files a put of several files (-r, or many sources) uploads at once, and a get of a
# directory downloads at once. A small file's copy is a chain of round trips (create,
# pipeline, complete; or locate, read); overlapping a few of them keeps both the
# client's and the cluster's cores busy (HDFS's put -t).
PUT_THREADS = 4


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


# -- helpers ------------------------------------------------------------------
def _stat_or_none(client, path):
    try:
        return client.stat(path)
    except errors.DfsFileNotFoundError:
        return None


def _target(client, dest: str, name: str, many: bool):
    """Where SRC named ``name`` lands for DEST (cp semantics)."""
    st = _stat_or_none(client, dest)
    if st is not None and st.is_dir:
        return join(dest, name)
    if many:
        raise errors.DfsNotADirectoryError(path=dest) if st is not None else errors.DfsFileNotFoundError(path=dest)
    if dest.endswith("/") and dest != "/":
        raise errors.DfsNotADirectoryError(path=dest) if st is not None else errors.DfsFileNotFoundError(path=dest)
    return dest


def _check_many(client, dest: str, many: bool) -> None:
    """Several sources need DEST to be a directory: checked once, before any source,
    so that the failure is one line about DEST (cp: target 'x' is not a directory)."""
    if many:
        _target(client, dest, "", True)


# -- put / get / cat ------------------------------------------------------------
def cmd_put(args) -> int:
    client, dest = resolve(args, args.dest)
    many = len(args.sources) > 1
    kw = dict(overwrite=args.force, replication=args.replication, block_size=args.block_size, create_parent=False)
    _check_many(client, dest, many)
    files: list[tuple[str, str]] = []   # (local, target): uploaded once every source is checked
    failed: list[tuple[tuple, BaseException]] = []

    def plan(src: str) -> None:
        nonlocal files
        if src == "-":
            failed.extend(_upload_all(client, files, args.force, kw, args.threads))
            files = []
            target = _target(client, dest, "", many)
            if target.endswith("/"):
                raise errors.DfsIsADirectoryError(path=dest)
            _check_free(client, target, args.force)
            client.upload(sys.stdin.buffer, target, progress=Progress("-", None), **kw)
            return
        if not os.path.exists(src):
            raise errors.DfsFileNotFoundError(path=src)
        target = _target(client, dest, os.path.basename(os.path.normpath(src)), many)
        if os.path.isdir(src):
            if not args.recursive:
                raise errors.DfsIsADirectoryError("Is a directory (use -r)", src)
            files += _plan_tree(client, src, target)
        else:
            files.append((src, target))
    # A bad source is reported and the others still go (as cp does): exit 1 at the end.
    # So does a file whose upload fails: the namenode drops it (nothing appears), the
    # others are still uploaded, its line is printed and the exit status is 1.
    status = each(args, args.sources, plan)
    failed.extend(_upload_all(client, files, args.force, kw, args.threads))
    return status | _report_all(args, failed)


def _check_free(client, target: str, force: bool) -> None:
    st = _stat_or_none(client, target)
    if st is not None and (st.is_dir or not force):
        raise errors.DfsIsADirectoryError(path=target) if st.is_dir else errors.DfsFileExistsError(path=target)


def _put_file(client, src: str, target: str, force: bool, kw: dict) -> None:
    _check_free(client, target, force)
    size = os.path.getsize(src)
    progress = Progress(os.path.basename(src), size)
    try:
        with open(src, "rb") as f:
            client.upload(f, target, progress=progress, **kw)
    finally:
        progress.close()   # ends the bar's line before any error is printed


def _make_dir(client, target: str) -> None:
    """``target`` as a directory: made if missing, refused if a file."""
    st = _stat_or_none(client, target)
    if st is not None and not st.is_dir:
        raise errors.DfsNotADirectoryError(path=target)
    if st is None:
        client.mkdir(target)


def _plan_tree(client, src: str, target: str) -> list[tuple[str, str]]:
    """Make ``target`` and the tree's directories; -> the (local, target) files to upload."""
    _make_dir(client, target)
    out = []
    # Symbolic links are followed, to directories too (dfs has no links; a link's
    # target is what it stands for), each real directory once (no cycles).
    seen = {os.path.realpath(src)}
    for root, dirs, files in os.walk(src, followlinks=True):
        for d in list(dirs):
            real = os.path.realpath(os.path.join(root, d))
            if real in seen:
                dirs.remove(d)
            seen.add(real)
        dirs.sort()
        rel = os.path.relpath(root, src)
        base = target if rel == "." else join(target, rel.replace(os.sep, "/"))
        for d in dirs:
            if _stat_or_none(client, join(base, d)) is None:
                client.mkdir(join(base, d))
        out += [(os.path.join(root, name), join(base, name)) for name in sorted(files)]
    return out


def _upload_all(client, files: list[tuple[str, str]], force: bool, kw: dict,
                threads: int) -> list[tuple[tuple, BaseException]]:
    """Upload ``files`` (local, target), ``threads`` at a time; -> the failed ones with
    their errors. An existing target fails its own create (overwrite=``force``) on the
    namenode: no stat per file."""
    if len(files) <= 1 or threads == 1:
        return _one_by_one(lambda src, target: _put_file(client, src, target, force, kw), files)
    progress = Progress(f"{len(files)} files", sum(_local_size(src) for src, _ in files))

    def upload(src: str, target: str) -> None:
        with open(src, "rb") as f:
            client.upload(f, target, progress=progress, **kw)
    return _in_parallel(upload, files, threads, progress)


def _local_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0    # its upload fails and says why


def _one_by_one(fn, jobs: list[tuple]) -> list[tuple[tuple, BaseException]]:
    """``fn(*job)`` for every job in turn; -> the failed jobs with their errors (see
    ``_in_parallel``)."""
    failed = []
    for job in jobs:
        try:
            fn(*job)
        except STOPS_ALL:
            raise
        except PER_ITEM as e:
            failed.append((job, e))
    return failed


def _in_parallel(fn, jobs: list[tuple], threads: int, progress: Progress) -> list[tuple[tuple, BaseException]]:
    """``fn(*job)`` for every job, ``threads`` at a time, under one progress bar;
    -> the failed jobs with their errors, in job order.

    A job's own failure (PER_ITEM: the target exists, a local file is unreadable, no
    datanode took a block) does not stop the others, as cp and `hdfs dfs -put` go on
    past a bad file. A failure that would fail every job (STOPS_ALL: the namenode
    unreachable), or anything unexpected, stops new jobs; those under way finish,
    then it is raised."""
    fatal: BaseException | None = None
    failed: dict[int, tuple[tuple, BaseException]] = {}
    todo = iter(enumerate(jobs))
    running: dict = {}
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="dfs-copy") as pool:
            try:
                while True:
                    while fatal is None and len(running) < 2 * threads:
                        item = next(todo, None)
                        if item is None:
                            break
                        running[pool.submit(fn, *item[1])] = item
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in done:
                        i, job = running.pop(f)
                        e = f.exception()
                        if e is None:
                            continue
                        if isinstance(e, PER_ITEM) and not isinstance(e, STOPS_ALL):
                            failed[i] = (job, e)
                        elif fatal is None:
                            fatal = e
            except BaseException:   # Ctrl-C: queued jobs never start
                for f in running:
                    f.cancel()
                raise
    finally:
        progress.close()   # ends the bar's line before any error is printed
    if fatal is not None:
        raise fatal
    return [failed[i] for i in sorted(failed)]


def _report_all(args, failed: list[tuple[tuple, BaseException]], subject: int = 0) -> int:
    """One line per failed copy (``job[subject]`` names it when its error does not);
    -> the exit status (1 if any failed)."""
    for job, e in failed:
        if getattr(args, "debug", False):
            raise e
        report(args, e, str(job[subject]))
    return 1 if failed else 0


def cmd_get(args) -> int:
    many = len(args.sources) > 1
    dest = args.dest
    if (many or dest.endswith(os.sep)) and dest != "-" and not os.path.isdir(dest):
        # cp: "cannot create regular file 'new/': Not a directory"
        raise errors.DfsNotADirectoryError(path=dest)
    failed: list[tuple[tuple, BaseException]] = []

    def get(src: str) -> None:
        client, path = resolve(args, src)
        st = client.stat(path)
        if dest == "-":
            client.download(path, sys.stdout.buffer)
            return
        target = os.path.join(dest, basename(path)) if os.path.isdir(dest) else dest
        if st.is_dir:
            failed.extend(_download_all(client, _plan_local_tree(client, path, target), args.force, args.threads))
        else:
            _get_file(client, path, target, st.size, args.force)
    status = each(args, args.sources, get)   # a failed file is reported, the others still come
    return status | _report_all(args, failed)


def _get_file(client, path: str, target: str, size: int, force: bool, *,
              progress: Progress | None = None) -> None:
    """Download ``path`` to ``target`` with a progress bar of its own, or ``progress``."""
    if os.path.isdir(target):
        raise errors.DfsIsADirectoryError(path=target)
    if os.path.exists(target) and not force:
        raise errors.DfsFileExistsError(path=target)
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise errors.DfsFileNotFoundError(path=target)
    # Write beside the target and rename: a half-copied file never has its name.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".dfs-part", dir=parent)
    own = progress is None
    if own:
        progress = Progress(basename(path), size)
    try:
        if size >= DIRECT_IO_MIN:
            os.close(fd)
            with DirectFile(tmp) as f:
                client.download(path, f, progress=progress)
        else:
            with os.fdopen(fd, "wb") as f:
                client.download(path, f, progress=progress)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        if own:
            progress.close()


def _download_all(client, files: list[tuple[str, str, int]], force: bool,
                  threads: int) -> list[tuple[tuple, BaseException]]:
    """Download ``files`` (remote, local, size), ``threads`` at a time; -> the failed
    ones with their errors (a failed one leaves no file under its name)."""
    if len(files) <= 1 or threads == 1:
        return _one_by_one(lambda remote, local, size: _get_file(client, remote, local, size, force), files)
    progress = Progress(f"{len(files)} files", sum(size for _, _, size in files))

    def download(remote: str, local: str, size: int) -> None:
        _get_file(client, remote, local, size, force, progress=progress)
    return _in_parallel(download, files, threads, progress)


def _plan_local_tree(client, path: str, target: str) -> list[tuple[str, str, int]]:
    """Make ``target`` and the tree's local directories; -> the (remote, local, size)
    files to download."""
    if os.path.exists(target) and not os.path.isdir(target):
        raise errors.DfsNotADirectoryError(path=target)
    os.makedirs(target, exist_ok=True)
    out = []
    for st in client.listdir(path):
        local = os.path.join(target, basename(st.path))
        if st.is_dir:
            out += _plan_local_tree(client, st.path, local)
        else:
            out.append((st.path, local, st.size))
    return out


def cmd_cat(args) -> int:
    out = sys.stdout.buffer

    def cat(arg: str) -> None:
        client, path = resolve(args, arg)
        st = client.stat(path)
        if st.is_dir:
            raise errors.DfsIsADirectoryError(path=path)
        client.download(path, out)
        out.flush()
    return each(args, args.paths, cat)


# -- listing ------------------------------------------------------------------
def _ls_line(st, human_sizes: bool) -> str:
    size = human(st.size) if human_sizes else str(st.size)
    repl = "-" if st.is_dir else str(st.replication)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.mtime))
    return f"{mode_string(st.is_dir, st.mode)} {repl:>3} {st.owner} {st.group} {size:>10} {when} {st.path}"


def _walk(client, path):
    for st in client.listdir(path):
        yield st
        if st.is_dir:
            yield from _walk(client, st.path)


def cmd_ls(args) -> int:
    everything = []

    def ls(arg: str) -> None:
        client, path = resolve(args, arg)
        st = client.stat(path)
        if not st.is_dir:
            entries = [st]
        elif args.recursive:
            entries = list(_walk(client, path))
        else:
            entries = client.listdir(path)
        if args.json:
            everything.extend(e.to_json() for e in entries)
            return
        if st.is_dir and not args.recursive:
            print(f"Found {len(entries)} items")
        for e in entries:
            print(_ls_line(e, args.human))
    status = each(args, args.paths, ls)
    if args.json:
        print(json.dumps(everything, indent=None))
    return status


def cmd_stat(args) -> int:
    """One path: its status (an object with --json). Several: each in turn (with
    --json one object per line)."""
    def stat(arg: str) -> None:
        client, path = resolve(args, arg)
        st = client.stat(path)
        if args.json:
            print(json.dumps(st.to_json()))
        else:
            for k, v in st.to_json().items():
                print(f"{k}: {v}")
    return each(args, args.paths, stat)


def cmd_du(args) -> int:
    client, path = resolve(args, args.path)
    st = client.stat(path)
    fmt = human if args.human else str
    if args.summary or not st.is_dir:
        s = client.content_summary(path)
        print(f"{fmt(s['length'])}  {fmt(s['space_consumed'])}  {path}")
        return 0
    for e in client.listdir(path):
        s = client.content_summary(e.path)
        print(f"{fmt(s['length'])}  {fmt(s['space_consumed'])}  {e.path}")
    return 0


# -- namespace changes --------------------------------------------------------
def cmd_mkdir(args) -> int:
    def mkdir(arg: str) -> None:
        client, path = resolve(args, arg)
        client.mkdir(path, parents=args.parents)
    return each(args, args.paths, mkdir)


def cmd_rm(args) -> int:
    def rm(arg: str) -> None:
        client, path = resolve(args, arg)
        try:
            st = client.stat(path)
            if st.is_dir and not args.recursive:
                raise errors.DfsIsADirectoryError(path=path)
            client.delete(path, recursive=args.recursive)
        except errors.DfsFileNotFoundError:
            if not args.force:
                raise
    return each(args, args.paths, rm)


def cmd_mv(args) -> int:
    many = len(args.sources) > 1
    client, dest = resolve(args, args.dest)
    _check_many(client, dest, many)

    def mv(src: str) -> None:
        sclient, spath = resolve(args, src)
        if sclient is not client:
            raise errors.InvalidArgumentError("cannot move between clusters", src)
        target = _target(client, dest, basename(spath), many)
        if target.rstrip("/") == spath.rstrip("/"):
            raise errors.InvalidArgumentError(f"'{spath}' and '{target}' are the same file", spath)
        client.rename(spath, target)
    return each(args, args.sources, mv)


def cmd_cp(args) -> int:
    many = len(args.sources) > 1
    client, dest = resolve(args, args.dest)
    _check_many(client, dest, many)
    files: list[tuple] = []   # (source's client, source, target, source's status)

    def plan(src: str) -> None:
        sclient, spath = resolve(args, src)
        st = sclient.stat(spath)
        target = _target(client, dest, basename(spath), many)
        if st.is_dir:
            if not args.recursive:
                raise errors.DfsIsADirectoryError("Is a directory (not copied; -r copies it)", spath)
            if sclient.namenode == client.namenode and (target + "/").startswith(spath.rstrip("/") + "/"):
                raise errors.InvalidArgumentError("cannot copy a directory into itself", target)
            files.extend((sclient, *f) for f in _plan_copy_tree(sclient, client, spath, target))
        else:
            if sclient.namenode == client.namenode and target.rstrip("/") == spath.rstrip("/"):
                # -f would drop the blocks being read (coreutils: "are the same file")
                raise errors.InvalidArgumentError(f"'{spath}' and '{target}' are the same file", spath)
            _check_free(client, target, args.force)
            files.append((sclient, spath, target, st))
    # A bad source is reported and the others still go (as cp does): exit 1 at the end.
    # So does a file whose copy fails (nothing appears under its target).
    status = each(args, args.sources, plan)
    if len(files) <= 1 or args.threads == 1:
        failed = _one_by_one(lambda *job: _copy_file(client, *job, force=args.force), files)
    else:
        progress = Progress(f"{len(files)} files", sum(job[3].size for job in files))
        failed = _in_parallel(lambda *job: _copy_file(client, *job, force=args.force, progress=progress),
                              files, args.threads, progress)
    return status | _report_all(args, failed, subject=1)


def _plan_copy_tree(sclient, client, src: str, target: str) -> list[tuple[str, str, object]]:
    """Make ``target`` and the directories under it as in ``src``; -> the files to copy."""
    _make_dir(client, target)
    out = []
    base = src.rstrip("/")
    for e in _walk(sclient, src):
        dst = target.rstrip("/") + e.path[len(base):]
        if e.is_dir:
            if _stat_or_none(client, dst) is None:
                client.mkdir(dst)
        else:
            out.append((e.path, dst, e))
    return out


def _copy_file(client, sclient, spath: str, target: str, st, *, force: bool, progress=None) -> None:
    """Copy one file; an existing ``target`` fails its create unless ``force``."""
    client.write_pieces(sclient.open_read(spath).iter_range(), target, progress=progress, overwrite=force,
                        replication=st.replication, block_size=st.block_size, create_parent=False)


def cmd_touch(args) -> int:
    client, path = resolve(args, args.path)
    st = _stat_or_none(client, path)
    if st is None and path.endswith("/"):
        raise errors.DfsFileNotFoundError(path=args.path)   # `touch new/` names a directory (coreutils)
    if st is None:
        client.create(path, create_parent=False).close()
    else:
        client.set_times(path, time.time())
    return 0


SETREP_TIMEOUT = 600.0   # seconds `setrep -w` waits at most ($DFS_SETREP_TIMEOUT)


def setrep_timeout() -> float:
    text = os.environ.get("DFS_SETREP_TIMEOUT", "")
    if not text:
        return SETREP_TIMEOUT
    try:
        return cli_args.seconds(text)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"$DFS_SETREP_TIMEOUT: {e}") from None


def cmd_setrep(args) -> int:
    """Set the target; with -w wait until every block of every file has exactly N live
    replicas. A wait that cannot end (fewer datanodes in service than N) or does not
    end in time is a failure (exit 1) that says so; the target stays set and the
    namenode goes on working towards it, as in HDFS."""
    timeout = setrep_timeout() if args.wait else 0.0
    client, path = resolve(args, args.path)
    st = client.stat(path)
    files = [e for e in _walk(client, path) if not e.is_dir] if st.is_dir else [st]
    for f in files:
        client.set_replication(f.path, args.replication)
    if not args.wait:
        return 0
    n = args.replication
    deadline = time.monotonic() + timeout
    for f in files:
        while True:
            counts = [len(b.names) for b in client.block_locations(f.path)]
            if all(c == n for c in counts):
                break
            why = unreachable_replication(n, [d.state for d in client.report().datanodes])
            if why:
                raise errors.DfsError(f"{why} (the target is set; not waiting)", f.path)
            if time.monotonic() > deadline:
                worst = max(counts, key=lambda c: abs(c - n))
                raise errors.DfsError(f"replication {n} not reached within {timeout:g} s (a block has {worst} "
                                      f"live replica{'s' * (worst != 1)}; the target is set and the namenode "
                                      "keeps working on it)", f.path)
            time.sleep(0.5)
    return 0


def unreachable_replication(n: int, states: list[str]) -> str:
    """Why ``n`` replicas cannot be reached now ("" if they may be): fewer datanodes in
    service than ``n``. A silent node counts until it is declared dead, so `setrep -w`
    fails within the dead-node timeout instead of waiting out DFS_SETREP_TIMEOUT."""
    in_service = sum(1 for s in states if s in ("live", "stale"))
    if in_service >= n:
        return ""
    return f"replication {n} cannot be reached: {in_service} datanode{'s' * (in_service != 1)} in service"


def cmd_test(args) -> int:
    client, path = resolve(args, args.path)
    st = _stat_or_none(client, path)
    ok = st is not None and (args.test == "e" or (args.test == "d") == st.is_dir)
    return 0 if ok else 1


def _mode_arg(text: str) -> str:
    """MODE as chmod takes it: 1-4 octal digits, or clauses like u+x,go-w; checked
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


def parse_mode(text: str, current: int) -> int:
    if text.isdigit():
        if len(text) > 4 or set(text) - set("01234567"):
            raise errors.InvalidArgumentError(f"invalid mode: {text}")
        return int(text, 8)
    mode = current
    for clause in text.split(","):
        who, op, perms = "", "", ""
        i = 0
        while i < len(clause) and clause[i] in "ugoa":
            who += clause[i]
            i += 1
        if i >= len(clause) or clause[i] not in "+-=":
            raise errors.InvalidArgumentError(f"invalid mode: {text}")
        op, perms = clause[i], clause[i + 1:]
        if set(perms) - set("rwxt"):
            raise errors.InvalidArgumentError(f"invalid mode: {text}")
        who = who or "a"
        bits = 0
        for w in ("u", "g", "o"):
            if w in who or "a" in who:
                shift = {"u": 6, "g": 3, "o": 0}[w]
                bits |= sum({"r": 4, "w": 2, "x": 1}.get(c, 0) for c in perms) << shift
        if "t" in perms:
            bits |= 0o1000
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            mask = sum(7 << {"u": 6, "g": 3, "o": 0}[w] for w in "ugo" if w in who or "a" in who)
            mode = (mode & ~mask) | bits
    return mode


def _tree(client, path: str, recursive: bool) -> list:
    """``path``'s status, then with ``recursive`` every entry under it."""
    st = client.stat(path)
    return [st] + (list(_walk(client, path)) if recursive and st.is_dir else [])


def cmd_chmod(args) -> int:
    client, path = resolve(args, args.path)
    for st in _tree(client, path, args.recursive):
        client.chmod(st.path, parse_mode(args.mode, st.mode))
    return 0


def cmd_chown(args) -> int:
    client, path = resolve(args, args.path)
    owner, _, group = args.owner.partition(":")
    for st in _tree(client, path, args.recursive):
        client.chown(st.path, owner, group)
    return 0
