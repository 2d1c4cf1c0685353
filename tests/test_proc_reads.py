"""The /proc reader of host/system.py on fake /proc trees: the fields a status file may lack, a
command line longer than one read, and the reads' size bounds (the live list is compared with
psutil's in tests/test_container_reads.py)."""

from __future__ import annotations

from pathlib import Path

from rootless_doctor.host import system
from rootless_doctor.model import Proc


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
