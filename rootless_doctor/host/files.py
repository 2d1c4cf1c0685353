"""Bounded, never-raising file reads on a (possibly fake) root, and the one helper that turns
a parser's error into a note naming the file or command."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from ..model import DoctorError

T = TypeVar("T")


def read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


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
