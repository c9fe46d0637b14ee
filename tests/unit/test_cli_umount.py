"""`dfs umount` of a mount made by another user (dfs/cli/admin.py): refused with who made
it, before fusermount is run. It ran fusermount3, which said "entry for M not found in
/etc/mtab" of a mount that was there (it looks for the caller's own mounts only)."""

from __future__ import annotations

import argparse

import pytest

from dfs import errors
from dfs.cli import admin


def fake_mountinfo(tmp_path, mnt: str, options: str) -> str:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"98 22 0:55 / {mnt} rw,nosuid,nodev,relatime shared:60 - fuse.dfs dfs:127.0.0.1:8020 {options}\n"
    )
    return str(info)


@pytest.fixture
def no_tools(monkeypatch):
    ran = []
    monkeypatch.setattr(admin.subprocess, "run", lambda cmd, **kw: ran.append(cmd) or pytest.fail(f"ran {cmd}"))
    return ran


@pytest.mark.parametrize("euid", [65534, 1000])
def test_another_users_mount_is_refused_naming_them(tmp_path, monkeypatch, no_tools, euid):
    mnt = tmp_path / "m"
    mnt.mkdir()
    monkeypatch.setattr(admin, "MOUNTINFO", fake_mountinfo(tmp_path, str(mnt), "rw,user_id=0,group_id=0,allow_other"))
    monkeypatch.setattr(admin.os, "geteuid", lambda: euid)
    with pytest.raises(errors.DfsError) as e:
        admin.cmd_umount(argparse.Namespace(mountpoint=str(mnt), lazy=False))
    assert str(e.value) == f"{mnt}: mounted by another user (uid 0); only they or root can unmount it"
    assert no_tools == []


@pytest.mark.parametrize("euid, options", [
    (0, "rw,user_id=1000,group_id=1000"),      # root unmounts anyone's
    (1000, "rw,user_id=1000,group_id=1000"),   # one's own
    (1000, "rw"),                              # not said: let fusermount decide
])
def test_own_mounts_and_roots_go_to_fusermount(tmp_path, monkeypatch, euid, options):
    mnt = tmp_path / "m"
    mnt.mkdir()
    monkeypatch.setattr(admin, "MOUNTINFO", fake_mountinfo(tmp_path, str(mnt), options))
    monkeypatch.setattr(admin.os, "geteuid", lambda: euid)
    ran = []
    monkeypatch.setattr(admin.subprocess, "run",
                        lambda cmd, **kw: ran.append(cmd) or argparse.Namespace(returncode=0, stderr=""))
    assert admin.cmd_umount(argparse.Namespace(mountpoint=str(mnt), lazy=False)) == 0
    assert ran == [["fusermount3", "-u", str(mnt)]]


def test_mounted_by():
    assert admin.mounted_by("rw,user_id=0,group_id=0,allow_other") == 0
    assert admin.mounted_by("user_id=1000") == 1000
    assert admin.mounted_by("rw,xuser_id=5,group_id=0") is None
    assert admin.mounted_by("") is None
