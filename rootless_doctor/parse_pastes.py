"""What real bug-report pastes carry around an output, and the listings without PIDs (pure).

- The author's elisions, alone on a line: ``...``, ``…``, ``|...|``, ``[...]``, ``(...)``,
  ``[snip]``, ``<snip>``, ``--snip--``: dropped, each listed in the notes.
- A log prefix on each line (``[2024-04-02T17:00:08.992Z] `` of VS Code's Dev Containers log, an
  ISO time stamp): removed. A journal line keeps its ``host unit[pid]:`` (parse.py reads those).
- ``pstree`` without ``-a``/``-p``: process names only (``rootlesskit─┬─exe─┬─containerd``).
- A Quadlet ``.container`` unit: its ``Network=`` and ``PublishPort=``.
Patterns are linear (no nested unbounded repeats): pasted text is untrusted input.
"""

from __future__ import annotations

import itertools
import re

from . import parse
from .model import Proc, QuadletFacts, RootlessKitFacts

_ELISION = re.compile(
    r"[ \t│|]*(?:\.{3,}|…+|\|[ \t]*\.{3}[ \t]*\||\[[ \t]*(?:\.{3}|…|snip(?:ped)?)[ \t]*\]"
    r"|\([ \t]*(?:\.{3}|…)[ \t]*\)|<[ \t]*snip(?:ped)?[ \t]*>|-{2,}[ \t]*snip(?:ped)?[ \t]*-{2,}"
    r"|#[ \t]*\.{3})[ \t]*",
    re.IGNORECASE,
)
_TS = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
_LOG_PREFIX = re.compile(rf"\[{_TS}\][ \t]?")


_ELISION_LINE = re.compile(rf"(?m)^(?:{_ELISION.pattern})\r?(?:\n|$)", re.IGNORECASE)
_PREFIXED = re.compile(rf"(?m)^{_LOG_PREFIX.pattern}")
MAX_NOTES = 20  # elisions listed one by one; past that, counted


def clean(text: str) -> tuple[str, list[str]]:
    """``text`` without elision lines and bracketed log time prefixes; notes say what went.
    Whole-text regex passes (no per-line Python loop: a paste may be megabytes)."""
    notes: list[str] = []
    found = [m.group(0).strip() for m in itertools.islice(_ELISION_LINE.finditer(text), MAX_NOTES)]
    if found:
        text, n = _ELISION_LINE.subn("", text)
        notes += [f"the author's elision {e!r} skipped" for e in found[:MAX_NOTES]]
        if n > MAX_NOTES:
            notes.append(f"{n - MAX_NOTES} more elision line(s) skipped")
    text, prefixed = _PREFIXED.subn("", text)
    if prefixed:
        notes.append(f"{prefixed} line(s): a log time prefix removed")
    return text, notes


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


def quadlet(name: str, text: str) -> QuadletFacts:
    """A Quadlet ``.container`` unit → its last ``Network=`` (as ``podman run --network``
    takes it; ``%%`` is systemd's escaped ``%``) and ``PublishPort=`` lines
    (podman-systemd.unit(5))."""
    network: str | None = None
    ports: list[str] = []
    image = ""
    for section, line in parse._unit_lines(text):
        if section != "Container" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().replace("%%", "%")
        if key == "Network":
            network = value or None
        elif key == "PublishPort":
            ports.append(value)
        elif key in ("Image", "Rootfs"):
            image = value
    return QuadletFacts(
        name=name.rsplit("/", 1)[-1],
        network=network,
        ports=parse._compose_ports(ports),
        image=image,
    )


_PS_CMD = ("COMMAND", "CMD", "ARGS", "COMMAND_LINE")
_KNOWN = re.compile(
    r"(?:\S*/)?(?:rootlesskit|slirp4netns|pasta(?:\.avx2)?|passt|dockerd|dockerd-rootless\.sh|"
    r"containerd|containerd-rootless\.sh|containerd-shim[\w-]{0,32}|conmon|rootlessport|"
    r"rootlesskit-docker-proxy|docker-proxy|vpnkit|podman|catatonit)"
)
_ART = re.compile(r"[ \t|`\\_]*")
MAX_PS_LINES = 50_000  # a whole machine's ps listing is a few thousand lines


def ps_without_pid(text: str) -> list[Proc] | None:
    """Command lines of a ``ps`` listing with no PID column: a header ending in COMMAND/ARGS/CMD
    (``ps -o user,args``, ``user,stat,etime,args``, ``axo user,comm,args``, ``--forest``), or no
    header (``ps -o args=``, ``user=,args=``, a grep of such a listing). PIDs are 0 (unknown);
    with ``--forest`` the tree gives each line its parent. None when it is not such a listing."""
    first = text.lstrip().split("\n", 1)[0].split()
    if not first:
        return None
    header = first[-1] in _PS_CMD and "PID" not in first
    if not header and not any(_KNOWN.fullmatch(w) for w in first[:2]):
        return None  # neither a header nor a known process first: not such a listing
    lines = [ln for ln in text.splitlines()[:MAX_PS_LINES] if ln.strip()]
    head = lines[0].split()
    rows: list[tuple[int, tuple[str, ...]]] = []  # (depth, argv)
    if head and head[-1] in _PS_CMD and "PID" not in head:
        for ln in lines[1:]:
            parts = ln.split(None, len(head) - 1)
            if len(parts) == len(head):
                cmd = _ART.match(parts[-1])
                depth = (cmd.end() + 1) // 4 if cmd else 0
                rows.append((depth, tuple(parts[-1][cmd.end() if cmd else 0 :].split())))
    else:
        for ln in lines:
            words = ln.split()
            if not _KNOWN.fullmatch(words[0]) and len(words) > 1 and _KNOWN.fullmatch(words[1]):
                words = words[1:]  # a user column before the command
            rows.append((0, tuple(words)))
        if not any(_KNOWN.fullmatch(argv[0]) for _, argv in rows if argv):
            return None
    procs: list[Proc] = []
    stack: list[tuple[int, int]] = []  # (depth, synthetic id) of the open ancestors
    for i, (depth, row) in enumerate(rows, 1):
        argv = tuple(w for w in row if w not in ("...", "…"))  # the author's cuts
        if not argv:
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        # synthetic ids only carry the forest's parent links (negative: never a real PID)
        parent = stack[-1][1] if stack and depth else 0
        pid = -i if any(d > 0 for d, _ in rows) else 0
        stack.append((depth, pid))
        procs.append(Proc(pid=pid, ppid=parent, uid=None, cmdline=argv))
    return procs or None


_LONE_KIT = re.compile(r"(?m)^[ \t]*rootlesskit:[ \t]*\n(?:[ \t]+\w+:[^\n]*\n?){1,8}")


def lone_rootlesskit_block(text: str) -> tuple[RootlessKitFacts, bool] | None:
    """The ``rootlesskit:`` component cut out of a ``docker version``/``nerdctl version`` (no
    Server header, maybe no ApiVersion): its facts, and whether it is tab-separated (nerdctl
    prints ``Key:\\tvalue``, Docker aligns with spaces). None when there is none."""
    m = _LONE_KIT.search(text)
    if not m or re.search(r"(?m)^(Client|Server)\b.*:\s*$", text):
        return None
    fields: dict[str, str] = {}
    for line in m.group(0).splitlines()[1:]:
        key, _, value = line.strip().partition(":")
        fields[key.strip().lower()] = value.strip()
    if "version" not in fields:
        return None
    return parse._kit_from_text(fields), "\t" in m.group(0)


# dockerd's own fatal line, as `journalctl | grep` leaves it (no journal prefix).
_DOCKERD_FATAL = re.compile(
    r"(?m)^(?:time=\"[^\"]{0,64}\" level=fatal msg=\")?failed to start daemon: .{0,2000}$"
)


def dockerd_fatal(text: str) -> str | None:
    m = _DOCKERD_FATAL.search(text)
    return m.group(0) if m else None
