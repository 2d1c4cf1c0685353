"""Minimal systemd unit-file text editing shared by the docker drop-in and Quadlet planners.

systemd unit syntax (systemd.syntax(7)): ``[Section]`` headers, ``Key=Value`` lines, comments
starting with ``#`` or ``;``, blank lines, and a trailing backslash continuing a line. Edits splice
lines so everything not touched stays byte-for-byte.

parse.py reads units too (``unit_environment``: what systemd will use). This reader differs on
purpose: it keeps each entry's line span for splicing, refuses what it could not splice safely
(lines outside a section, unbalanced quotes), and keeps words in their written form (``%%``, C
escapes) so a word it writes back means what it meant before.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..model import DoctorError

_KEY = re.compile(r"^[A-Za-z0-9_.@-]+$")


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One logical ``Key=Value`` line (``first``..``last`` inclusive, 0-based line numbers)."""

    section: str
    key: str
    value: str
    first: int
    last: int


@dataclass(frozen=True, kw_only=True)
class Unit:
    lines: list[str]  # with their line endings
    entries: list[Entry]
    headers: list[tuple[str, int]]  # (section name, line number)


def parse(text: str, name: str) -> Unit:
    """Split ``text`` into entries; malformed lines raise DoctorError naming ``name``:line."""
    lines = text.splitlines(keepends=True)
    entries: list[Entry] = []
    headers: list[tuple[str, int]] = []
    section = ""
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r\n")
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            i += 1
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                raise DoctorError(f"{name}:{i + 1}: bad section header {stripped!r}; fix it first")
            section = stripped[1:-1]
            headers.append((section, i))
            i += 1
            continue
        key, sep, value = raw.partition("=")
        if not sep or not _KEY.match(key.strip()):
            raise DoctorError(
                f"{name}:{i + 1}: not a Key=Value line: {stripped[:60]!r}; fix it first"
            )
        if not section:
            raise DoctorError(f"{name}:{i + 1}: {key.strip()}= before any [Section]; fix it first")
        first = i
        parts = [value]
        while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            parts[-1] = parts[-1].rstrip()[:-1]
            i += 1
            parts.append(lines[i].rstrip("\r\n"))
        entries.append(
            Entry(
                section=section, key=key.strip(), value=" ".join(parts).strip(), first=first, last=i
            )
        )
        i += 1
    return Unit(lines=lines, entries=entries, headers=headers)


def env_words(value: str, where: str) -> list[str]:
    """The ``NAME=VALUE`` words of an ``Environment=`` value (quotes as systemd reads them)."""
    try:
        words = shlex.split(value, posix=True)
    except ValueError:
        raise DoctorError(
            f"{where}: unbalanced quotes in Environment={value}; fix it first"
        ) from None
    for w in words:
        if "=" not in w:
            raise DoctorError(f"{where}: Environment= word {w!r} is not NAME=VALUE; fix it first")
    return words


def env_line(name: str, value: str) -> str:
    """``Environment="NAME=VALUE"`` the way Docker's docs write it."""
    return f'Environment="{name}={value}"\n'


def section_end(unit: Unit, header_line: int) -> int:
    """Line index after which to append to the section starting at ``header_line``: after its
    last key line (so comments introducing the next section stay with it)."""
    last = header_line
    for e in unit.entries:
        if e.first > header_line:
            nxt = [h for _, h in unit.headers if h > header_line]
            if nxt and e.first > nxt[0]:
                break
            last = e.last
    return last


def newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _append_section(text: str, want: dict[str, str], section: str) -> str:
    nl = newline_of(text) if text else "\n"
    out = text
    if out and not out.endswith(("\n", "\r\n")):
        out += nl
    if out.strip():
        out += nl
    out += f"[{section}]" + nl
    for k, v in want.items():
        out += env_line(k, v).replace("\n", nl)
    return out


def set_environment(text: str, want: dict[str, str], name: str, section: str = "Service") -> str:
    """Make the [Service] environment end up with ``want``; touch nothing else.

    An assignment alone on its line is rewritten in place (or dropped when a later one wins); a
    line assigning several variables loses just ours; missing ones go after the last key line of
    the last [Service] section. An empty ``Environment=`` (systemd's reset) before that point is
    respected by appending after it.
    """
    unit = parse(text, name)
    nl = newline_of(text)
    env = [e for e in unit.entries if e.section == section and e.key == "Environment"]
    effective: dict[str, str] = {}
    for e in env:
        words = env_words(e.value, f"{name}:{e.first + 1}")
        if not words:
            effective.clear()
        for w in words:
            k, _, v = w.partition("=")
            effective[k] = v
    todo = {k: v for k, v in want.items() if effective.get(k) != v}
    if not todo:
        return text

    lines = list(unit.lines)
    replaced: set[str] = set()
    resets = [e.first for e in env if not e.value.strip()]
    # Walk backwards so line numbers of earlier entries stay valid while we edit.
    for e in reversed(env):
        words = env_words(e.value, f"{name}:{e.first + 1}")
        ours = [w for w in words if w.partition("=")[0] in todo]
        if not ours:
            continue
        keep = [w for w in words if w.partition("=")[0] not in todo]
        later_reset = any(r > e.first for r in resets)
        key = ours[-1].partition("=")[0]
        if (
            len(words) == 1
            and key not in replaced
            and not later_reset
            and _last_setter(env, key, e, name)
        ):
            quoted = '"' in lines[e.first]
            new = (
                env_line(key, todo[key]) if quoted else f"Environment={key}={todo[key]}\n"
            ).replace("\n", nl)
            lines[e.first : e.last + 1] = [new]
            replaced.add(key)
        elif keep:
            quoted = '"' in lines[e.first]
            lines[e.first : e.last + 1] = [
                "Environment=" + " ".join(_quote(w, quoted) for w in keep) + nl
            ]
        else:
            del lines[e.first : e.last + 1]
    rest = {k: v for k, v in todo.items() if k not in replaced}
    if not rest:
        return "".join(lines)
    new_text = "".join(lines)
    unit = parse(new_text, name)
    services = [h for s, h in unit.headers if s == section]
    if not services:
        return _append_section(new_text, rest, section)
    at = section_end(unit, services[-1])
    add = [env_line(k, v).replace("\n", nl) for k, v in rest.items()]
    out = list(unit.lines)
    if at < len(out) and not out[at].endswith(("\n", "\r")):
        out[at] += nl
    out[at + 1 : at + 1] = add
    return "".join(out)


def _last_setter(env: list[Entry], key: str, entry: Entry, name: str) -> bool:
    """Whether ``entry`` is the last line that sets ``key`` (so rewriting it in place is right)."""
    for e in env:
        if e.first > entry.first:
            words = env_words(e.value, f"{name}:{e.first + 1}")
            if any(w.partition("=")[0] == key for w in words):
                return False
    return True


def _quote(word: str, force: bool = False) -> str:
    if not force and re.fullmatch(r"[A-Za-z0-9_./:,=@+-]+", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
