"""chmod's MODE, applied to a current mode as GNU chmod(1) applies it (coreutils 9).

Octal (``755``, ``1777``, ``00755``) or comma-separated symbolic clauses: who
letters ``[ugoa]*``, then one or more actions, each an operator ``+ - =`` and
either permission letters ``[rwxXst]*`` or one class to copy (``g=u``); a clause
may also be an operator and octal digits alone (``=755``, ``-6000``).

Two GNU rules that surprise. A directory keeps its set-user-ID and set-group-ID
bits unless the mode names them: ``a=rx`` and ``755`` leave a 2755 directory
setgid; ``g-s``, ``2755``, ``00755`` (five digits) and ``=755`` name the bit.
And ``s``/``t`` act only for the class that owns the bit: ``u+s`` setuid, ``g+s``
setgid, ``o+t`` or ``+t`` sticky; ``u+t`` and ``o+s`` do nothing. One difference:
no who letters means ``a``, as ``hdfs dfs -chmod`` takes it; GNU leaves out the
bits set in the local umask, which says nothing about files on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dfs import errors

SETUID, SETGID, STICKY = 0o4000, 0o2000, 0o1000
ALL = 0o7777
_SET_IDS = SETUID | SETGID
_CLASS_BITS = {"u": SETUID | 0o700, "g": SETGID | 0o070, "o": STICKY | 0o007, "a": ALL}
_COPIED = {"u": 0o700, "g": 0o070, "o": 0o007}   # a copy takes rwx only, never s or t
_LETTER_BITS = {"r": 0o444, "w": 0o222, "x": 0o111, "X": 0, "s": _SET_IDS, "t": STICKY}

_OCTAL = re.compile(r"[0-7]+")
_OCTAL_CLAUSE = re.compile(r"[-+=][0-7]+")
_SYMBOLIC_CLAUSE = re.compile(r"[ugoa]*(?:[-+=](?:[ugo]|[rwxXst]*))+")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")


@dataclass(frozen=True)
class Change:
    """One operator of a MODE, compiled."""
    op: str            # "+", "-" or "="
    who: int           # the bits its clause's who letters cover (none given: all)
    value: int         # the bits its letters name; for a copy, the rwx of the class copied
    mentioned: int     # the bits the mode names: a directory's set-ID bits outside it stay
    copy: bool = False
    x_if_executable: bool = False   # X


def compile_mode(text: str) -> list[Change]:
    """MODE -> its changes, in order; InvalidArgumentError when it is not one."""
    if text[:1].isdigit():
        if not _OCTAL.fullmatch(text) or int(text, 8) > ALL:
            raise errors.InvalidArgumentError(f"invalid mode: {text}")
        value = int(text, 8)
        # up to 4 digits names rwx, sticky and whichever set-ID bits it sets (GNU)
        mentioned = ALL if len(text) >= 5 else (value & _SET_IDS) | STICKY | 0o777
        return [Change("=", ALL, value, mentioned)]
    changes = []
    for clause in text.split(","):
        if _OCTAL_CLAUSE.fullmatch(clause) and int(clause[1:], 8) <= ALL:
            changes.append(Change(clause[0], ALL, int(clause[1:], 8), ALL))
            continue
        if not _SYMBOLIC_CLAUSE.fullmatch(clause):
            raise errors.InvalidArgumentError(f"invalid mode: {text}")
        letters = clause[:len(clause) - len(clause.lstrip("ugoa"))]
        who = 0
        for c in letters:
            who |= _CLASS_BITS[c]
        who = who or ALL
        for op, perms in _ACTION.findall(clause[len(letters):]):
            if perms in _COPIED:
                changes.append(Change(op, who, _COPIED[perms], who & _COPIED[perms], copy=True))
                continue
            value = 0
            for c in perms:
                value |= _LETTER_BITS[c]
            changes.append(Change(op, who, value, who & value, x_if_executable="X" in perms))
    return changes


def apply_mode(changes: list[Change], current: int, is_dir: bool) -> int:
    """The mode ``changes`` make of ``current`` (a directory's if ``is_dir``)."""
    mode = current & ALL
    for ch in changes:
        kept = (_SET_IDS if is_dir else 0) & ~ch.mentioned
        value = ch.value
        if ch.copy:
            value = _spread(value & mode)
        if ch.x_if_executable and (is_dir or mode & 0o111):
            value |= 0o111
        value &= ch.who & ~kept
        if ch.op == "+":
            mode |= value
        elif ch.op == "-":
            mode &= ~value
        else:
            mode = (mode & (~ch.who | kept) & ALL) | value
    return mode


def parse_mode(text: str, current: int, is_dir: bool = False) -> int:
    """A chmod MODE applied to ``current``, as GNU chmod applies it."""
    return apply_mode(compile_mode(text), current, is_dir)


def _spread(rwx: int) -> int:
    """The r, w and x bits among ``rwx`` (one class's) given to all three classes."""
    out = 0
    for one in (0o444, 0o222, 0o111):
        if rwx & one:
            out |= one
    return out
