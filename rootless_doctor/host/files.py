"""File reads: never-raising reads on a (possibly fake) root for :func:`gather`, the one helper
that turns a parser's error into a note naming the file or command, and :func:`read_pasted`,
the reader of the files a user hands ``check --from`` (bounded; bad input is one DoctorError)."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from ..model import DoctorError

T = TypeVar("T")


# The largest host file read whole (/var/lib/dpkg/status is a few MiB on a big system).
MAX_HOST_FILE = 16 << 20


def read(path: Path) -> str | None:
    """The text of a host file, or None: missing, unreadable, not a regular file (a config
    file that is a FIFO or a link to /dev/zero would block or never end) or over the cap."""
    try:
        data = read_regular(path, MAX_HOST_FILE)
    except (OSError, NotRegular, TooLarge):
        return None
    return data.decode("utf-8", errors="replace")


def read_all(files: Iterable[Path], notes: list[str]) -> list[tuple[str, str]]:
    """(name, text) of each readable file, in order; a note for each unreadable one."""
    texts = []
    for f in files:
        text = read(f)
        if text is None:
            notes.append(f"{f}: not readable")
        else:
            texts.append((str(f), text))
    return texts


def read_int(path: Path) -> int | None:
    text = read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def exists(p: Path) -> bool:
    try:
        p.lstat()
    except OSError:
        return False
    return True


def is_socket(p: Path) -> bool:
    try:
        return stat.S_ISSOCK(p.stat().st_mode)
    except (OSError, ValueError):
        return False


# Path.is_file()/is_dir() raise PermissionError on Python < 3.12 (a dir we may not search).
def is_file(p: Path) -> bool:
    try:
        return stat.S_ISREG(p.stat().st_mode)
    except (OSError, ValueError):
        return False


def is_dir(p: Path) -> bool:
    try:
        return stat.S_ISDIR(p.stat().st_mode)
    except (OSError, ValueError):
        return False


def parsed(fn: Callable[[], T], what: str, notes: list[str]) -> T | None:
    """Call a parser; a ParseError becomes a note naming ``what`` (file or command)."""
    try:
        return fn()
    except (DoctorError, ValueError) as e:
        notes.append(f"{what}: {e}")
        return None


# A pasted output or copied config file is a few KiB; a bigger file is not one of them. The cap
# also bounds the worst case: recognising 4 MiB of text that matches nothing takes ~5 s here and
# a 4 MiB ps listing ~40 MB (bench/hostile.py; at 16 MiB it was ~20 s and ~140 MB).
MAX_PASTED = 4 << 20
STDIN = "-"  # `check --from -`: the paste comes on standard input


class NotRegular(Exception):
    """The path is a FIFO, a device, a socket or a directory: never read (a FIFO blocks until
    someone writes, /dev/zero and /dev/urandom never end)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind}, not a regular file")
        self.kind = kind


class TooLarge(Exception):
    """More bytes than the caller's cap."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _read_capped(fd: int, cap: int) -> bytes:
    chunks: list[bytes] = []
    n = 0
    while n <= cap:
        chunk = os.read(fd, min(1 << 20, cap + 1 - n))
        if not chunk:
            break
        chunks.append(chunk)
        n += len(chunk)
    if n > cap:
        raise TooLarge(f"more than {cap} bytes")
    return b"".join(chunks)


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of ``path`` when it is a regular file (symlinks followed) of at most ``cap``
    bytes. Anything else is never read: checked before opening, and again on the opened file
    (opened non-blocking, so a FIFO swapped in meanwhile does not wait for a writer).
    Raises FileNotFoundError/OSError, :class:`NotRegular` or :class:`TooLarge`."""
    fd = _open_regular(path, cap)
    try:
        return _read_capped(fd, cap)
    finally:
        os.close(fd)


def _open_regular(path: Path, cap: int) -> int:
    """A blocking read descriptor of ``path``, a regular file of at most ``cap`` bytes."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(_kind(st.st_mode))
    if st.st_size > cap:
        raise TooLarge(f"{st.st_size} bytes")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegular(_kind(st.st_mode))
    os.set_blocking(fd, True)
    return fd


def read_pasted(path: Path) -> str:
    """The text of a file given to ``check --from`` (``-``: standard input): a regular file,
    UTF-8, no NUL bytes, not empty, at most :data:`MAX_PASTED` bytes, a leading BOM dropped.
    Anything else is a one-line DoctorError naming the file and what to do (exit code 2)."""
    name = "stdin" if str(path) == STDIN else str(path)
    try:
        if str(path) == STDIN:
            data = _read_capped(sys.stdin.fileno(), MAX_PASTED)
        else:
            data = read_regular(path, MAX_PASTED)
    except NotRegular as e:
        what = "the files in it" if e.kind == "a directory" else "a file holding the output"
        raise DoctorError(
            f"{name} is {e.kind}, not a regular file; pass {what}", exit_code=2
        ) from None
    except TooLarge:
        raise DoctorError(
            f"{name}: larger than {MAX_PASTED >> 20} MiB, not a pasted output or config file; "
            "pass the command's output only",
            exit_code=2,
        ) from None
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise DoctorError(
            f"{name}: cannot read ({why}); check the path and permissions", exit_code=2
        ) from None
    if b"\0" in data:
        raise DoctorError(
            f"{name}: binary data, not text; pass the text output of the command", exit_code=2
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DoctorError(
            f"{name}: not UTF-8 text (bad byte at offset {e.start}); save it as UTF-8",
            exit_code=2,
        ) from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise DoctorError(f"{name}: empty file; paste the command's output into it", exit_code=2)
    return text


# A `rootless-doctor collect` archive is a few hundred KiB; the bound keeps a wrong file cheap.
MAX_ARCHIVE = 32 << 20


def read_archive(path: Path) -> bytes | None:
    """The bytes of a `collect` archive given to ``check --from``, or None when the file is not
    an archive (its first bytes are neither gzip's magic nor tar's ``ustar`` mark). At most
    :data:`MAX_ARCHIVE` bytes; an unreadable file is None here (:func:`read_pasted` says why)."""
    if str(path) == STDIN:
        return None
    try:
        fd = _open_regular(path, 1 << 62)  # only a regular file (no FIFO, no device)
    except (OSError, NotRegular, TooLarge):
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            head = f.read(512)
            if head[:2] != b"\x1f\x8b" and head[257:262] != b"ustar":
                return None
            data = head + f.read(MAX_ARCHIVE + 1 - len(head))
    except OSError:
        return None
    if len(data) > MAX_ARCHIVE:
        raise DoctorError(
            f"{path}: larger than {MAX_ARCHIVE >> 20} MiB, not a collect archive", exit_code=2
        )
    return data
