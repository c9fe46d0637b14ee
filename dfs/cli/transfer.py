"""Commands that move file contents: put, get, cat and cp (within dfs or between
clusters), with the runner that copies several files at once."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from dfs import config, errors
from dfs.cli.common import (
    PER_ITEM,
    STOPS_ALL,
    Progress,
    basename,
    check_many,
    each,
    join,
    report,
    resolve,
    stat_or_none,
    target_for,
    walk,
)
from dfs.directio import DirectFile

# Large downloads bypass the page cache: see dfs/directio.py.
DIRECT_IO_MIN = 64 << 20
# Files a put of several files (-r, or many sources) uploads at once, and a get of a
# directory downloads at once. A small file's copy is a chain of round trips (create,
# pipeline, complete; or locate, read); overlapping a few of them keeps both the
# client's and the cluster's cores busy (HDFS's put -t).
PUT_THREADS = 4


def cmd_put(args) -> int:
    client, dest = resolve(args, args.dest)
    many = len(args.sources) > 1
    kw = dict(overwrite=args.force, replication=args.replication, block_size=args.block_size, create_parent=False)
    check_many(client, dest, many)
    files: list[tuple[str, str]] = []   # (local, target): uploaded once every source is checked
    failed: list[tuple[tuple, BaseException]] = []

    def plan(src: str) -> None:
        nonlocal files
        if src == "-":
            failed.extend(_upload_all(client, files, args.force, kw, args.threads))
            files = []
            target = target_for(client, dest, "", many)
            if target.endswith("/"):
                raise errors.DfsIsADirectoryError(path=dest)
            _check_free(client, target, args.force)
            client.upload(sys.stdin.buffer, target, progress=Progress("-", None), **kw)
            return
        if not os.path.exists(src):
            raise errors.DfsFileNotFoundError(path=src)
        target = target_for(client, dest, os.path.basename(os.path.normpath(src)), many)
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
    # A dfs error without a path (safe mode, no datanodes) is about the target; a local
    # one names its file itself.
    return status | _report_all(args, failed, subject=1)


def _check_free(client, target: str, force: bool) -> None:
    st = stat_or_none(client, target)
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
    st = stat_or_none(client, target)
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
            if stat_or_none(client, join(base, d)) is None:
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
            unlisted: list[tuple[tuple, BaseException]] = []
            files = _plan_local_tree(client, path, target, unlisted)
            failed.extend(_download_all(client, files, args.force, args.threads) + unlisted)
        else:
            _get_file(client, path, target, st.size, args.force)
    status = each(args, args.sources, get)   # a failed file is reported, the others still come
    return status | _report_all(args, failed)


def _get_file(client, path: str, target: str, size: int, force: bool, *,
              progress: Progress | None = None) -> None:
    """Download ``path`` to ``target`` with a progress bar of its own, or ``progress``."""
    if os.path.isdir(target):
        raise errors.DfsIsADirectoryError(path=target)
    if os.path.lexists(target) and not force:
        raise errors.DfsFileExistsError(path=target)
    named = target
    if os.path.islink(target):   # as cp: the link stays; the file it names gets the bytes
        target = os.path.realpath(target)
    try:
        special = not stat.S_ISREG(os.stat(target).st_mode)
    except FileNotFoundError:
        special = False
    except OSError as e:
        raise OSError(e.errno, e.strerror, named) from None
    own = progress is None
    if own:
        progress = Progress(basename(path), size)
    try:
        if special:   # a device or FIFO (/dev/null, a pipe's reader): written into, never replaced
            try:
                with open(target, "wb") as f:
                    client.download(path, f, progress=progress)
            except OSError as e:
                if isinstance(e, errors.DfsError):
                    raise
                raise OSError(e.errno, e.strerror, named) from None
        else:
            _download_beside(client, path, target, named, size, progress)
    finally:
        if own:
            progress.close()


def _temp_prefix(target: str) -> str:
    """The temporary file's prefix: its name (with mkstemp's 8 characters and the
    suffix) must fit NAME_MAX as the target's did."""
    prefix = "." + os.path.basename(target) + "."
    return prefix if len(os.fsencode(prefix)) + 8 + len(".dfs-part") <= 255 else ".dfs-get."


def _download_beside(client, path: str, target: str, named: str, size: int, progress) -> None:
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        if os.path.exists(parent):   # cp: "Not a directory"
            raise errors.DfsNotADirectoryError(path=named)
        raise errors.DfsFileNotFoundError(path=named)
    # Write beside the target and rename: a half-copied file never has its name.
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".dfs-part", dir=parent)
    except OSError as e:   # say it of the target the user named, not of our temporary name
        raise OSError(e.errno, e.strerror, named) from None
    try:
        try:
            if size >= DIRECT_IO_MIN:
                os.close(fd)
                with DirectFile(tmp) as f:
                    client.download(path, f, progress=progress)
            else:
                with os.fdopen(fd, "wb") as f:
                    client.download(path, f, progress=progress)
        except OSError as e:   # writing our temporary file (a full disk): say it of the target
            if isinstance(e, errors.DfsError):
                raise
            raise OSError(e.errno, e.strerror, named) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


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


def _plan_local_tree(client, path: str, target: str,
                     unlisted: list[tuple[tuple, BaseException]]) -> list[tuple[str, str, int]]:
    """Make ``target`` and the tree's local directories; -> the (remote, local, size)
    files to download. A subdirectory that cannot be listed goes to ``unlisted``
    and the rest is still copied, as cp -r does."""
    if os.path.exists(target) and not os.path.isdir(target):
        raise errors.DfsNotADirectoryError(path=target)
    os.makedirs(target, exist_ok=True)
    out = []
    base = path.rstrip("/")
    for st in walk(client, path, on_error=lambda d, e: unlisted.append(((d,), e))):
        local = os.path.join(target, *st.path[len(base):].strip("/").split("/"))
        if st.is_dir:
            os.makedirs(local, exist_ok=True)
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
        client.download(path, out)   # a failed write to it is a StdoutError (main.py)
        out.flush()
    return each(args, args.paths, cat)


def cmd_cp(args) -> int:
    many = len(args.sources) > 1
    client, dest = resolve(args, args.dest)
    check_many(client, dest, many)
    files: list[tuple] = []   # (source's client, source, target, source's status)
    unlisted: list[tuple[tuple, BaseException]] = []   # subdirectories that could not be read

    def plan(src: str) -> None:
        sclient, spath = resolve(args, src)
        st = sclient.stat(spath)
        target = target_for(client, dest, basename(spath), many)
        if st.is_dir:
            if not args.recursive:
                raise errors.DfsIsADirectoryError("Is a directory (not copied; -r copies it)", spath)
            if sclient.namenode == client.namenode and (target + "/").startswith(spath.rstrip("/") + "/"):
                raise errors.InvalidArgumentError("cannot copy a directory into itself", target)
            files.extend((sclient, *f) for f in _plan_copy_tree(sclient, client, spath, target, unlisted))
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
    return status | _report_all(args, unlisted + failed, subject=1)


def _plan_copy_tree(sclient, client, src: str, target: str,
                    unlisted: list[tuple[tuple, BaseException]]) -> list[tuple[str, str, object]]:
    """Make ``target`` and the directories under it as in ``src``; -> the files to copy.
    A subdirectory that cannot be listed goes to ``unlisted`` (the rest is copied)."""
    _make_dir(client, target)
    out = []
    base = src.rstrip("/")
    for e in walk(sclient, src, on_error=lambda d, err: unlisted.append(((None, d), err))):
        dst = target.rstrip("/") + e.path[len(base):]
        if e.is_dir:
            if stat_or_none(client, dst) is None:
                client.mkdir(dst)
        else:
            out.append((e.path, dst, e))
    return out


def _copy_file(client, sclient, spath: str, target: str, st, *, force: bool, progress=None) -> None:
    """Copy one file, with a progress bar of its own or ``progress``; an existing
    ``target`` fails its create unless ``force``."""
    own = progress is None
    if own:
        progress = Progress(basename(spath), st.size)
    try:
        client.write_pieces(sclient.open_read(spath).iter_range(), target, progress=progress, overwrite=force,
                            replication=st.replication, block_size=config.block_size_of_copy(st.block_size),
                            create_parent=False)
    finally:
        if own:
            progress.close()   # ends the bar's line before any error is printed
