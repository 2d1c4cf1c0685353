"""The readers of host/system.py that run on every check: /proc on fake trees (the fields a
status file may lack, a command line longer than one read, the size bounds; the live list is
compared with psutil's in tests/test_container_reads.py), and dpkg's status file against
dpkg-query."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rootless_doctor.host import system
from rootless_doctor.model import HostPaths, Proc


def _proc(root: Path, pid: int, cmdline: bytes, status: bytes) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(cmdline)
    (d / "status").write_bytes(status)


def test_status_fields_found_or_left_unknown(tmp_path: Path) -> None:
    _proc(tmp_path, 7, b"conmon\0-c\0abc\0", b"Name:\tconmon\nPPid:\t1\nUid:\t1000\t1000\t0\t0\n")
    _proc(tmp_path, 8, b"x\0", b"Name:\tx\nUid:\t42\t0\t0\t0")  # no PPid, no final newline
    _proc(tmp_path, 9, b"y\0", b"Name:\ty\nPPid:\t7\nUid:\tnobody\n")  # not a number
    _proc(tmp_path, 10, b"z\0", b"Name:\tPPid: 3\\nUid: 5\nPPid:\t8\n")  # a name is escaped
    got = {p.pid: p for p in system._proc_dir_processes(tmp_path)}
    assert got[7] == Proc(pid=7, ppid=1, uid=1000, cmdline=("conmon", "-c", "abc"))
    assert (got[8].ppid, got[8].uid) == (0, 42)
    assert (got[9].ppid, got[9].uid) == (7, None)
    assert (got[10].ppid, got[10].uid) == (8, None)
    assert [p.pid for p in system._proc_dir_processes(tmp_path, skip_children_of=7)] == [7, 8, 10]


def test_a_long_command_line_is_read_whole_up_to_its_bound(tmp_path: Path) -> None:
    """More than one read (64 KiB each): every byte up to MAX_CMDLINE, none beyond."""
    words = [b"w%05d" % i for i in range(15000)]  # 105,000 bytes with the NULs
    _proc(tmp_path, 5, b"\0".join(words) + b"\0", b"PPid:\t1\nUid:\t0\n")
    huge = b"a" * (system.MAX_CMDLINE + 5000) + b"\0"
    _proc(tmp_path, 6, huge, b"PPid:\t1\nUid:\t0\n")
    got = {p.pid: p for p in system._proc_dir_processes(tmp_path)}
    assert got[5].cmdline == tuple(w.decode() for w in words)
    assert got[6].cmdline == ("a" * system.MAX_CMDLINE,)  # cut at the bound: no NUL at the end


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="a Debian host's dpkg status file")
def test_dpkg_version_is_dpkg_querys_on_this_host() -> None:
    """The version of an installed package read from /var/lib/dpkg/status (found, not split
    into stanzas) is dpkg-query's; a package not installed has none."""
    wanted = ["passt", "podman", "uidmap", "libc6"]
    for package in wanted:
        cp = subprocess.run(
            ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", package],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        got = system._dpkg_version(HostPaths(), package)
        if cp.returncode == 0 and cp.stdout.startswith("ii "):
            assert got == cp.stdout[3:].strip(), package
        else:
            assert got is None, package
    assert system._dpkg_version(HostPaths(), "no-such-package-rd") is None


def test_dpkg_version_takes_the_installed_stanza(tmp_path: Path) -> None:
    status = (
        "Package: passt\nStatus: deinstall ok config-files\nVersion: 0.1\n\n"
        "Package: passt-extra\nStatus: install ok installed\nVersion: 9\n\n"
        "Package: passt\nStatus: install ok installed\nVersion: 0.0~git20230309.7c7625d-1\n"
    )
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(status)
    paths = HostPaths(root=tmp_path)
    assert system._dpkg_version(paths, "passt") == "0.0~git20230309.7c7625d-1"
    assert system._dpkg_version(paths, "passt-extra") == "9"
    assert system._dpkg_version(paths, "extra") is None
