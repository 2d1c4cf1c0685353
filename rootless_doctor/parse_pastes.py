"""What real bug-report pastes carry around an output, and the listings without PIDs (pure).

- The author's elisions, alone on a line: ``...``, ``…``, ``|...|``, ``[...]``, ``(...)``,
  ``[snip]``, ``<snip>``, ``--snip--``: dropped, each listed in the notes.
- A log prefix on each line (``[2024-04-02T17:00:08.992Z] `` of VS Code's Dev Containers log, an
  ISO time stamp): removed. A journal line keeps its ``host unit[pid]:`` (parse.py reads those).
- ``pstree`` without ``-a``/``-p``: process names only (``rootlesskit─┬─exe─┬─containerd``).
Patterns are linear (no nested unbounded repeats): pasted text is untrusted input.
"""

from __future__ import annotations

import re

_ELISION = re.compile(
    r"[ \t│|]*(?:\.{3,}|…+|\|[ \t]*\.{3}[ \t]*\||\[[ \t]*(?:\.{3}|…|snip(?:ped)?)[ \t]*\]"
    r"|\([ \t]*(?:\.{3}|…)[ \t]*\)|<[ \t]*snip(?:ped)?[ \t]*>|-{2,}[ \t]*snip(?:ped)?[ \t]*-{2,}"
    r"|#[ \t]*\.{3})[ \t]*",
    re.IGNORECASE,
)
_TS = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
_LOG_PREFIX = re.compile(rf"\[{_TS}\][ \t]?")


def clean(text: str) -> tuple[str, list[str]]:
    """``text`` without elision lines and bracketed log time prefixes; notes say what went."""
    notes: list[str] = []
    out: list[str] = []
    prefixed = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        body = line.rstrip("\r\n")
        if _ELISION.fullmatch(body):
            notes.append(f"line {n}: the author's elision {body.strip()!r} skipped")
            continue
        m = _LOG_PREFIX.match(line)
        if m:
            prefixed += 1
            line = line[m.end() :]
        out.append(line)
    if prefixed:
        notes.append(f"{prefixed} line(s): a log time prefix removed")
    return "".join(out), notes


_PSTREE_JOINS = re.compile(r"[─┬├└│┼┴]+")
_PSTREE_NAME = re.compile(r"(?:(\d{1,6})\*\[)?([A-Za-z0-9_.(][\w.+:()-]*|\{[^}]{0,64}\})\]?")


def pstree_names(text: str) -> list[str] | None:
    """The process names of a plain ``pstree`` (threads ``{x}`` left out, ``N*[x]`` counted N
    times), or None when ``text`` has no box-drawing joins."""
    if "─" not in text:
        return None
    names: list[str] = []
    for line in text.splitlines():
        if "─" not in line:
            continue
        for part in _PSTREE_JOINS.split(line):
            m = _PSTREE_NAME.fullmatch(part.strip(" \t|`+-"))
            if m and not m.group(2).startswith("{"):
                names.extend([m.group(2)] * min(int(m.group(1) or 1), 1000))
    return names or None
