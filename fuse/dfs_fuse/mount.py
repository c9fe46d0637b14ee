"""`dfs mount`: serve a cluster as a FUSE file system, here or in a background process.

``mount()`` is what the CLI calls. In the foreground it serves in this
process until unmounted; SIGINT, SIGTERM or SIGHUP commit dirty files and
unmount (lazily, so a busy mount point detaches; the process exits 0 when the
last open file is closed). A second signal commits what it can and exits 1.
In the background it starts ``python -m dfs_fuse`` in a new session and
returns 0 only once the mount point answers a stat; otherwise it stops the
child and fails with the reason from the child's log.

Signals: libfuse installs handlers that only set a flag, and a flag set on one
of our Python threads would never wake libfuse's loop. So ``serve`` blocks
the three signals before any thread exists (every thread inherits the mask)
and one thread takes them with sigwait.

Options (``-o a,b=c``; unknown ones go to libfuse as they are):

    ro               read-only mount
    strict           zero attribute/entry cache timeouts (conformance runs)
    attr_timeout=S, entry_timeout=S   kernel and mount cache timeouts (1 s)
    cache_size=SIZE  block cache (128MiB)     readahead=SIZE  per reader (32MiB)
    read_ahead_kb=N  the kernel's read-ahead for the mount (4096; 0 leaves it)
    direct_read=SIZE files this big opened read-only bypass the kernel's page
                     cache (32MiB; see docs/fuse.md); write-only handles always do
    page_cache       never bypass it
    write_buffer=SIZE  staged pages in memory before spilling (256MiB)
    cache_dir=DIR    spill files and the background mount's log: made 0700, and
                     refused unless a real directory of ours no one else can write
                     (cachedir.py)
    nostream         stage whole files until close, never stream (diagnostics)
    writeback        commit after close in the background (see writeback.py)
    allow_other      let other users in (default when mounted by root)
    debug            libfuse debug output and debug logs
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from dfs import errors
from dfs.cli import args as cli_args
from dfs.cli.args import UsageError
from dfs_fuse import cachedir
from dfs_fuse.logline import escape_logs

log = logging.getLogger(__name__)
READY_TIMEOUT = 30.0
SECOND_SIGNAL_GRACE = 10.0  # a second SIGINT/SIGTERM: how long commits may still take
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@dataclass
class MountOptions:
    """The parsed ``-o`` options (module docstring); built once by ``parse``."""

    readonly: bool = False
    attr_timeout: float = 1.0
    entry_timeout: float = 1.0
    cache_size: int = 128 << 20
    readahead: int = 32 << 20
    read_ahead_kb: int = 4096
    direct_read: int = 32 << 20
    write_buffer: int = 256 << 20
    cache_dir: str = ""
    streaming: bool = True
    writeback: bool = False
    allow_other: bool = False
    debug: bool = False
    fuse: dict = field(default_factory=dict)  # passed to libfuse untouched

    @classmethod
    def parse(cls, opts: dict | None) -> MountOptions:
        """The options given as {key: value or True}. A bad value, a value given to a
        flag or a missing one is a UsageError (one line, exit 2), found before the
        mount point is looked at or any RPC is made."""
        o = cls(allow_other=os.geteuid() == 0)
        for key, value in (opts or {}).items():
            if not key:
                raise UsageError(f"empty mount option name (={value})")
            if key in _FLAGS:
                if value is not True:
                    raise UsageError(f"mount option {key} takes no value (got {key}={value})")
                _FLAGS[key](o)
            elif key in _VALUES:
                if value is True or value == "":
                    raise UsageError(f"mount option {key} needs a value ({key}=...)")
                convert, what = _VALUES[key]
                try:
                    setattr(o, key, convert(value))
                except (ValueError, argparse.ArgumentTypeError):
                    raise UsageError(f"invalid mount option {key}={value} ({what})") from None
            else:
                o.fuse[key] = value
        if not o.cache_dir:
            o.cache_dir = os.path.join(tempfile.gettempdir(), f"dfs-fuse-{os.geteuid()}")
        return o


def _timeout(text: str) -> float:
    x = float(text)
    if not 0 <= x < 1e9:          # also refuses nan and inf
        raise ValueError(text)
    return x


def _directory(text: str) -> str:
    """A directory, or a path one can be made at: neither a file nor under one. Such a
    cache_dir made `dfs mount` fail with only "File exists" (os.makedirs), naming
    neither the option nor the problem, and a foreground mount failed at its first spill."""
    p = os.path.abspath(text)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if not os.path.isdir(p):
        raise ValueError(text)
    return text


def _set(**fields):
    def apply(o: MountOptions) -> None:
        for k, v in fields.items():
            setattr(o, k, v)
    return apply


_FLAGS = {
    "ro": _set(readonly=True), "rw": _set(readonly=False),
    "strict": _set(attr_timeout=0.0, entry_timeout=0.0), "page_cache": _set(direct_read=0),
    "nostream": _set(streaming=False), "writeback": _set(writeback=True),
    "allow_other": _set(allow_other=True), "debug": _set(debug=True),
}
_SECONDS = "a number of seconds >= 0"
_VALUES = {
    "attr_timeout": (_timeout, _SECONDS), "entry_timeout": (_timeout, _SECONDS),
    "cache_size": (cli_args.size, cli_args.SIZE_FORMS), "readahead": (cli_args.size, cli_args.SIZE_FORMS),
    "write_buffer": (cli_args.size, cli_args.SIZE_FORMS), "direct_read": (cli_args.size, cli_args.SIZE_FORMS),
    "read_ahead_kb": (cli_args.count, "a whole number >= 0"), "cache_dir": (_directory, "not a directory"),
}


def option_string(opts: dict) -> str:
    return ",".join(k if v is True else f"{k}={v}" for k, v in opts.items())


def parse_option_strings(groups: list[str]) -> dict:
    out: dict = {}
    for group in groups:
        for item in group.split(","):
            if item.strip():
                k, _, v = item.partition("=")
                out[k.strip()] = v or True
    return out


def mount(client, mountpoint: str, *, foreground: bool = False, options: dict | None = None) -> int:
    opts = MountOptions.parse(options)   # a usage error comes before anything else
    mnt = os.path.abspath(mountpoint)
    try:
        st = os.stat(mnt)
    except FileNotFoundError:
        raise errors.DfsFileNotFoundError(path=mnt) from None
    except OSError as e:   # ENOTCONN: a mount whose process died
        raise errors.DfsError(f"{e.strerror} (a stale mount? dfs umount {mnt})", mnt) from None
    if not stat.S_ISDIR(st.st_mode):
        raise errors.DfsNotADirectoryError(path=mnt)
    if os.path.ismount(mnt):
        try:
            with os.scandir(mnt) as it:  # cached attributes can hide a dead mount; a listing not
                next(it, None)
        except OSError as e:
            raise errors.DfsError(f"{e.strerror} (a stale mount? dfs umount {mnt})", mnt) from None
        raise errors.DfsError("already a mount point", mnt)
    cachedir.ensure(opts.cache_dir)   # a local refusal, before the namenode is called
    if foreground:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # before ping() starts gRPC's threads
    client.ping()  # a clear "cannot reach namenode" now rather than a dead mount later
    if foreground:
        return serve(client.namenode, mnt, opts, user=client.nn.caller.user)
    return _background(client.namenode, mnt, options or {}, opts)


def _background(namenode: str, mnt: str, raw: dict, opts: MountOptions) -> int:
    log_path = os.path.join(opts.cache_dir, "mount-" + mnt.strip("/").replace("/", "_") + ".log")
    cmd = [sys.executable, "-m", "dfs_fuse", "--namenode", namenode]
    if raw:
        cmd += ["-o", option_string(raw)]
    cmd.append(mnt)
    with open(cachedir.open_log(log_path), "ab") as logf:
        logged_before = logf.seek(0, os.SEEK_END)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT
    problem = f"no answer within {READY_TIMEOUT:.0f} s"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            problem = _failure(log_path, mnt, logged_before) or f"mount process exited with status {proc.returncode}"
            break
        if os.path.ismount(mnt):
            try:
                os.stat(mnt)
                return 0
            except OSError as e:
                problem = f"mounted but not answering: {e.strerror}"
                break
        time.sleep(0.05)
    _unmount(mnt)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    raise errors.DfsError(f"{problem} (log: {log_path})", mnt)


def _failure(path: str, mnt: str, start: int) -> str:
    """Why the mount process ended, from its log: libfuse's or fusermount's own line
    when one was written (``fuse: unknown option(s): `-o bogus'``, ``fusermount3: user
    has no write access to mountpoint M``: the process's last line then says only
    "FUSE failed (3)"), else the last line, without our own prefix (it is said once,
    by the caller)."""
    try:
        with open(path, errors="replace") as f:
            f.seek(start)   # this attempt's lines only: the log is appended to
            lines = [ln.strip() for ln in f.readlines()[-20:] if ln.strip()]
    except OSError:
        return ""
    fuse_says = [ln for ln in lines if ln.startswith(("fuse:", "fusermount3:", "fusermount:"))]
    line = fuse_says[-1] if fuse_says else lines[-1] if lines else ""
    return line.removeprefix(f"dfs: mount: {mnt}: ")


def _unmount(mnt: str, timeout: float = 30) -> None:
    for tool in (["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]):
        try:
            if subprocess.run([*tool, mnt], capture_output=True, timeout=timeout).returncode == 0:
                return
        except (FileNotFoundError, subprocess.TimeoutExpired):
            continue


def serve(namenode: str, mountpoint: str, opts: MountOptions, *, user: str | None = None) -> int:
    """Serve the mount in this process until it is unmounted. Returns an exit code."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # before any thread: see the docstring
    escape_logs()
    from dfs.client import DfsClient
    try:
        from dfs_fuse._binding import DfsFUSE, fuse_version_major, fuse_version_minor
    except ImportError as e:   # no mfusepy or no libfuse: one line saying what to install
        print(f"dfs: mount: {mountpoint}: {e}", file=sys.stderr)
        return 1
    from dfs_fuse.cache import BlockCache
    from dfs_fuse.files import MountContext
    from dfs_fuse.meta import Ids, MetaCache
    from dfs_fuse.operations import DfsOperations
    from dfs_fuse.staging import PageBudget

    client = DfsClient(namenode, user=user)
    ttl = opts.attr_timeout
    ctx = MountContext(
        client=client,
        meta=MetaCache(client, ttl),
        cache=BlockCache(opts.cache_size),
        budget=PageBudget(opts.write_buffer, opts.cache_dir),
        ids=Ids(client.nn.caller.user),
        readahead=opts.readahead,
        direct_read=opts.direct_read,
        streaming=opts.streaming,
        readonly=opts.readonly,
        writeback=opts.writeback,
    )
    ops = DfsOperations(ctx, attr_timeout=opts.attr_timeout, entry_timeout=opts.entry_timeout)
    threading.Thread(
        target=_on_signal, args=(ops, mountpoint), name="dfs-fuse-signals", daemon=True
    ).start()
    if opts.read_ahead_kb:
        threading.Thread(
            target=_tune_readahead,
            args=(mountpoint, opts.read_ahead_kb),
            name="dfs-fuse-bdi",
            daemon=True,
        ).start()
    kwargs = dict(opts.fuse)
    kwargs.update(fsname=f"dfs:{namenode}", subtype="dfs", default_permissions=True)
    if (fuse_version_major, fuse_version_minor) >= (3, 12):
        kwargs.setdefault("max_threads", 16)  # libfuse's default is 10
    if opts.allow_other:
        kwargs["allow_other"] = True
    if opts.readonly:
        kwargs["ro"] = True
    log.info("serving dfs://%s on %s", namenode, mountpoint)
    try:
        DfsFUSE(ops, mountpoint, raw_fi=True, foreground=True, nothreads=False, debug=opts.debug,
                **kwargs)
    except RuntimeError as e:
        if not ops.mounted or _listed(mountpoint):
            print(f"dfs: mount: {mountpoint}: FUSE failed ({e})", file=sys.stderr)
            return 1
        # Unmounted (on a signal, or by fusermount): the loop ended as it should,
        # whatever it returned. When a lazily unmounted mount's last file closes,
        # the kernel tears the connection down; a worker caught taking a request
        # (the RELEASE) off the queue meanwhile reads ECONNABORTED, which libfuse
        # reports as a failure. The dropped RELEASE loses nothing: destroy()
        # commits every file still open.
        log.info("%s unmounted; FUSE's loop ended with status %s", mountpoint, e)
    finally:
        if ops.committer is not None:
            ops.committer.close()
        ctx.cache.close()
        client.close()
    return 0


def _listed(mountpoint: str) -> bool:
    """Whether the kernel still lists ``mountpoint`` as mounted. Unlike os.path.ismount,
    true for a mount whose connection was aborted (its stat fails with ENOTCONN)."""
    want = os.fsencode(os.path.realpath(mountpoint))
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:   # field 5, with space, tab, newline and backslash as \ooo
                point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]),
                               line.split(b" ")[4])
                if point == want:
                    return True
    except OSError:
        return True   # cannot tell: keep the failure
    return False


def _tune_readahead(mountpoint: str, kb: int) -> None:
    """Raise the kernel's read-ahead for this mount (root only).

    The kernel caps a FUSE mount's read-ahead at its bdi's read_ahead_kb,
    128 KiB by default, and libfuse can only lower it: sequential reads then
    arrive as 128 KiB requests, eight Python calls per MiB. With a larger
    window they arrive as 1 MiB requests (libfuse3's max_pages)."""
    parent = os.stat(os.path.dirname(mountpoint) or "/").st_dev
    for _ in range(200):
        try:
            st = os.stat(mountpoint)
        except OSError:
            return
        if st.st_dev != parent:
            path = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
            try:
                with open(path, "w") as f:
                    f.write(str(kb))
            except OSError as e:
                log.info("cannot raise read-ahead (%s): %s", path, e.strerror)
            return
        time.sleep(0.05)


def _on_signal(ops, mountpoint: str) -> None:
    """The first signal commits and detaches the mount; the process then exits when the
    last open file is closed. A second one does not wait for that: it commits what it
    can within SECOND_SIGNAL_GRACE and exits 1 (open files then see ENOTCONN)."""
    sig = signal.sigwait(_SIGNALS)
    log.info("%s: unmounting %s", signal.Signals(sig).name, mountpoint)

    def first() -> None:
        ops.flush_all()
        _unmount(mountpoint)

    # On its own thread: a commit that waits on a dead namenode must not keep the
    # second signal from being taken.
    threading.Thread(target=first, name="dfs-fuse-unmount", daemon=True).start()
    sig = signal.sigwait(_SIGNALS)
    log.warning("%s again: committing open files (at most %.0f s) and exiting",
                signal.Signals(sig).name, SECOND_SIGNAL_GRACE)
    done = threading.Thread(target=ops.flush_all, name="dfs-fuse-last-commit", daemon=True)
    done.start()
    done.join(SECOND_SIGNAL_GRACE)
    if done.is_alive():
        log.error("commits still running after %.0f s: exiting without them", SECOND_SIGNAL_GRACE)
    _unmount(mountpoint, timeout=5)
    logging.shutdown()
    os._exit(1)   # libfuse's loop waits for the last open file; nothing else would end it
