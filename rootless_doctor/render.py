"""Report → text for people (coloured on a terminal, plain otherwise) or JSON for machines.

The JSON shape is the documented, stable schema (README "JSON output"); ``JsonReport`` writes it
down. The colours are a handful of ANSI (ECMA-48 SGR) codes written here, the bytes Rich wrote for
the same styles (tests/test_render.py compares): importing Rich cost ~25 ms of every report shown
on a terminal (bench/check.py measures start-up; entry.py lists the start-up decisions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from typing import IO, Any, TypedDict, cast

from . import __version__
from .model import CheckResult, EngineReport, JsonFix, ProbeResult, Report

SCHEMA_VERSION = 1


class JsonContainer(TypedDict):
    engine: str
    container: str  # the container's name (also in "name", kept for schema 1)
    name: str
    network_mode: str | None
    port_handler: str | None
    source_ip_preserved: bool | None
    reason: str
    seen_address: str  # what a server in the container sees as the client address ("" unknown)


class JsonEngine(TypedDict):
    engine: str
    rootless: bool | None
    version: str | None
    rootlesskit_version: str | None
    network_driver: str | None
    port_driver: str | None
    source_ip_preserved: bool | None
    reason: str
    seen_address: str  # what a server behind a default published port sees ("" unknown)
    containers: list[JsonContainer]


class JsonCheck(TypedDict):
    id: str
    status: str
    title: str
    detail: str
    remedy: str
    engine: str | None  # the engine a result belongs to ("compose" for compose lint)
    container: str | None  # the container a per-container result is about
    commands: list[str]  # the exact commands the remedy asks for, in order


class JsonReport(TypedDict, total=False):
    schema_version: int
    tool_version: str
    engines: list[JsonEngine]
    checks: list[JsonCheck]
    probes: list[dict[str, Any]]  # only with --probe
    notes: list[str]  # host facts that could not be read, and why


def to_json(report: Report) -> JsonReport:
    out: JsonReport = {
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "engines": [_engine(e) for e in report.engines],
        "checks": [check_json(c) for c in report.checks],
    }
    if report.probes:
        out["probes"] = [probe_json(p) for p in report.probes]
    out["notes"] = list(report.notes)
    return out


def check_json(c: CheckResult) -> JsonCheck:
    return {
        "id": c.id,
        "status": c.status,
        "title": c.title,
        "detail": c.detail,
        "remedy": c.remedy,
        "engine": c.engine,
        "container": c.container,
        "commands": list(commands_of(c)),
    }


def _engine(e: EngineReport) -> JsonEngine:
    return {
        "engine": e.engine,
        "rootless": e.rootless,
        "version": e.version,
        "rootlesskit_version": e.rootlesskit_version,
        "network_driver": e.network_driver,
        "port_driver": e.port_driver,
        "source_ip_preserved": e.source_ip_preserved,
        "reason": e.reason,
        "seen_address": e.seen_address,
        "containers": [
            {
                "engine": e.engine,
                "container": c.name,
                "name": c.name,
                "network_mode": c.network_mode,
                "port_handler": c.port_handler,
                "source_ip_preserved": c.source_ip_preserved,
                "reason": c.reason,
                "seen_address": c.seen_address,
            }
            for c in e.containers
        ],
    }


def probe_json(p: ProbeResult) -> dict[str, Any]:
    return {
        "engine": p.engine,
        "ran": p.ran,
        "source": p.source,
        "observed": p.observed,
        "source_ip_preserved": p.preserved,
        "elapsed_ms": round(p.elapsed_ms, 1),
        "used": p.used,
        "error": p.error,
        "expected": p.expected,
    }


PROBE_SCHEMA_VERSION = 1


class JsonProbe(TypedDict):
    """One probe in `probe --json` (``probe_json`` plus what it means)."""

    engine: str
    ran: bool
    source: str
    observed: str
    source_ip_preserved: bool | None
    elapsed_ms: float
    used: str
    error: str
    expected: bool | None
    verdict: str  # preserved | lost | could not run
    agrees_with_check: bool | None
    finding: JsonCheck | None  # the disagreement with check, if any


class JsonProbeRun(TypedDict):
    """`rootless-doctor probe --json`."""

    schema_version: int
    tool_version: str
    probes: list[JsonProbe]
    exit_code: int
    note: str | None


def probe_run_json(results: list[ProbeResult], note: str) -> JsonProbeRun:
    from .checks import probe as found

    out: list[JsonProbe] = []
    for r in results:
        finding = found.disagreement(r)
        item = {
            **probe_json(r),
            "verdict": found.verdict_word(r),
            "agrees_with_check": found.agrees(r),
            "finding": None if finding is None else check_json(finding),
        }
        out.append(cast(JsonProbe, item))
    return {
        "schema_version": PROBE_SCHEMA_VERSION,
        "tool_version": __version__,
        "probes": out,
        "exit_code": found.exit_code(results),
        "note": note or None,
    }


def print_json(data: object, out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- people
#
# Problems first (the `brew doctor` / `flutter doctor` convention): one line per area, details only
# for what is not ok, then a short numbered "Do next" list of exact commands, deduplicated.
# `-v` shows every check. Commands are never wrapped: each stands on a line of its own, and prose
# is wrapped only between words outside backticks, so a command can always be pasted whole.

Line = tuple[str, str]  # (style: words of _SGR, space-separated, or "", text)

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip", "unknown": "??"}
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "unknown": "magenta"}
_RANK = {"fail": 0, "warn": 1, "unknown": 2, "ok": 3, "skip": 4}
_PROBLEM = ("fail", "warn", "unknown")
COMMAND = "cyan"  # the style of a command line (tests find commands by it)
_NBSP = "\u00a0"

# Check IDs by area, for the one-line-per-area summary. Engine checks sit under their engine.
_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Prerequisites", ("NEWUIDMAP", "SUBUID", "SUBGID", "USERNS", "DEV-NET-TUN", "SLIRP4NETNS",
                       "PASTA", "ROOTLESSKIT")),
    ("Session", ("RUN-AS", "SYSTEMD-USER", "LINGER", "XDG-RUNTIME-DIR")),
    ("Ports", ("PRIVILEGED-PORTS",)),
    ("Firewall", ("FIREWALL",)),
)  # fmt: skip
# The first word of a backticked span that is a command to run (not a value or a file name).
_PROGRAMS = frozenset({
    "rootless-doctor", "systemctl", "podman", "docker", "sudo", "sysctl", "modprobe", "loginctl",
    "machinectl", "dockerd-rootless.sh", "dockerd-rootless-setuptool.sh", "rootlessctl", "kill",
    "podman-compose", "su", "ssh", "apt", "apt-get", "dnf", "zypper", "echo", "nohup",
})  # fmt: skip
_BACKTICKED = re.compile(r"`([^`\n]+)`")


def _yes_no(v: bool | None, seen: str | None = None) -> str:
    """A verdict word; "NOT FORWARDED" where no client gets through at all (a port pasta does
    not forward: knowledge.SEEN_REFUSED), which is not a lost address."""
    from .knowledge import SEEN_REFUSED

    if v is False and seen == SEEN_REFUSED:
        return "NOT FORWARDED"
    return {True: "kept", False: "LOST", None: "unknown"}[v]


def want_colour(stream: IO[str]) -> bool:
    """Colours only on a terminal and never with NO_COLOR set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def commands_of(check: CheckResult) -> tuple[str, ...]:
    """The exact commands a check's remedy asks for, in order: its ``steps`` where the check
    gives them, else the backticked spans of its remedy that start with a program."""
    steps = getattr(check, "steps", ())
    if steps:
        return tuple(cmd for step in steps for cmd in step.commands)
    out = []
    for span in _BACKTICKED.findall(check.remedy):
        first = span.split()[0] if span.split() else ""
        if first in _PROGRAMS or (("=" in first) and len(span.split()) > 1):
            out.append(span.strip())
    return tuple(out)


def _wrap(text: str, indent: str, width: int) -> list[str]:
    """Wrap prose at ``width``, never inside a backticked span (a command or a value)."""
    guarded = _BACKTICKED.sub(lambda m: m.group(0).replace(" ", _NBSP), text)
    lines = textwrap.wrap(
        guarded,
        width=max(width, len(indent) + 20),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_NBSP, " ") for line in lines] or [indent.rstrip()]


def _engine_head(e: EngineReport) -> str:
    mode = {True: "rootless", False: "rootful", None: "rootless?"}[e.rootless]
    name = {"docker": "Docker", "podman": "Podman", "rootlesskit": "RootlessKit"}[e.engine]
    return f"{name} {e.version or '(version unknown)'} ({mode})"


def _engine_drivers(e: EngineReport) -> str:
    parts = []
    if e.engine != "podman" and (e.rootlesskit_version or e.rootless):
        parts.append(f"RootlessKit {e.rootlesskit_version or '?'}")
    if e.network_driver or e.port_driver:
        label = "port handler" if e.engine == "podman" else "port driver"
        parts.append(f"{e.network_driver or '?'}, {label} {e.port_driver or '?'}")
    return ", ".join(parts)


def _verdict_status(v: bool | None) -> str:
    return {True: "ok", False: "fail", None: "unknown"}[v]


def _row(status: str, label: str, summary: str, width: int, indent: int = 6) -> list[Line]:
    """``MARK  label: summary``, wrapped; continuation lines are indented under the label."""
    wrapped = _wrap(f"{label}: {summary}", " " * indent, width)
    wrapped[0] = f"{_MARK[status]:>4}  " + wrapped[0][6:]
    return [(_STYLE[status], t) for t in wrapped]


def _area_rows(report: Report, verbose: bool, width: int) -> list[Line]:
    rows: list[Line] = []
    for e in report.engines:
        st = _verdict_status(e.source_ip_preserved)
        verdict = (
            f"client IPs {_yes_no(e.source_ip_preserved, e.seen_address)}{_seen(e.seen_address)}"
        )
        rows += _row(st, _engine_head(e), verdict, width)
        drivers = _engine_drivers(e)
        if drivers:
            rows.extend(("", t) for t in _wrap(drivers, " " * 6, width))
        for ct in e.containers:
            if ct.source_ip_preserved is True and not verbose:
                continue
            cst = _verdict_status(ct.source_ip_preserved)
            mode = f"{ct.network_mode or '?'}, {ct.port_handler or '?'}"
            verdict = (
                f"client IPs {_yes_no(ct.source_ip_preserved, ct.seen_address)} ({mode})"
                f"{_seen(ct.seen_address)}"
            )
            rows += _row(cst, f"container {ct.name}", verdict, width, indent=10)
    if not report.engines:
        rows.append(("bold", "No Docker, Podman or RootlessKit found."))
    by_id = {c.id: c for c in report.checks}
    for area, ids in _AREAS:
        checks = [by_id[i] for i in ids if i in by_id]
        if checks:
            rows += _area_row(area, checks, width)
    compose = [c for c in report.checks if c.id.startswith("COMPOSE-")]
    if compose:
        rows += _area_row("Compose file", compose, width)
    probes = [c for c in report.checks if c.id.startswith("PROBE-")]
    if probes:
        rows += _area_row("Probe", probes, width)
    return rows


def _seen(address: str) -> str:
    return f"; a server there sees {address}" if address else ""


def _area_row(area: str, checks: list[CheckResult], width: int) -> list[Line]:
    worst = min((c.status for c in checks), key=lambda s: _RANK[s])
    if worst in _PROBLEM:
        names = sorted({c.id for c in checks if c.status in _PROBLEM})
        return _row(worst, area, ", ".join(names), width)
    if worst == "skip":
        return _row("skip", area, checks[0].detail if len(checks) == 1 else "does not apply", width)
    n = sum(c.status == "ok" for c in checks)
    return _row("ok", area, f"{n} check{'s' if n != 1 else ''} ok", width)


def _shown_problems(report: Report) -> list[CheckResult]:
    """Failures and warnings, most severe first; "unknown" too on a live host (it says how to
    find out). From pasted files most facts are simply absent: those unknowns are only counted."""
    shown = ("fail", "warn") if report.offline else _PROBLEM
    return sorted((c for c in report.checks if c.status in shown), key=lambda c: _RANK[c.status])


def _problems(report: Report, width: int) -> list[Line]:
    problems = _shown_problems(report)
    lines: list[Line] = []
    for c in problems:
        lines += _row(c.status, c.id, c.title, width)
        if c.detail:
            lines.extend(("", t) for t in _wrap(c.detail, " " * 6, width))
        if c.remedy and not commands_of(c):
            lines.extend(("", t) for t in _wrap(f"fix: {c.remedy}", " " * 6, width))
    return lines


def _remedy_note(check: CheckResult) -> str:
    """What a remedy says besides its commands ("(port_handler=slirp4netns, or pasta ...)")."""
    rest = check.remedy
    for cmd in commands_of(check):
        rest = rest.replace(f"`{cmd}`", " ")
    rest = re.sub(r"\s+", " ", rest).strip(" ,;:.")
    rest = re.sub(r"^(then|and|or)\b\s*|\s*\b(then|and|or)$", "", rest).strip(" ,;:.")
    return rest if len(rest) > 3 else ""


def next_steps(report: Report) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The "Do next" list: (check IDs, commands), most severe first; a command asked for by
    several checks is listed once, under the first of them (DOCKER-SOURCE-IP and
    CONTAINER-SOURCE-IP, PRIVILEGED-PORTS and COMPOSE-PRIVILEGED-PORTS share one remedy)."""
    steps: list[tuple[list[str], list[str]]] = []
    where: dict[str, int] = {}  # command → index of the step listing it
    for c in _shown_problems(report):
        cmds = commands_of(c)
        if not cmds:
            continue
        fresh = [cmd for cmd in cmds if cmd not in where]
        if not fresh:
            ids = steps[where[cmds[0]]][0]
            if c.id not in ids:
                ids.append(c.id)
            continue
        steps.append(([c.id], fresh))
        for cmd in fresh:
            where[cmd] = len(steps) - 1
    return [(tuple(ids), tuple(cmds)) for ids, cmds in steps]


def report_lines(report: Report, verbose: bool = False, width: int = 80) -> list[Line]:
    """The human report as (style, text) lines. Default: problems first; ``verbose``: every
    check with its details as well."""
    lines: list[Line] = []
    if report.offline:
        lines.append(("dim", "Diagnosis of the given files only (not this host)."))
    lines.extend(_area_rows(report, verbose, width))
    if verbose:
        lines.append(("", ""))
        lines.append(("bold", "All checks"))
        for c in report.checks:
            lines += _row(c.status, c.id, c.title, width)
            if c.detail:
                lines.extend(("", t) for t in _wrap(c.detail, " " * 6, width))
    problems = _problems(report, width)
    if problems and not verbose:
        lines.append(("", ""))
        lines.append(("bold", "Problems"))
        lines.extend(problems)
    unjudged = [c.id for c in report.checks if c.status == "unknown"]
    if report.offline and unjudged and not verbose:
        lines.append(
            (
                "dim",
                f"{len(unjudged)} checks need facts the given files do not hold "
                f"({', '.join(unjudged)}; -v shows what each needs)",
            )
        )
    steps = next_steps(report)
    if steps:
        lines.append(("", ""))
        lines.append(("bold", "Do next"))
        by_id = {c.id: c for c in report.checks}
        for n, (ids, cmds) in enumerate(steps, 1):
            head = _wrap(f"for {', '.join(ids)}:", " " * 7, width)
            head[0] = f"{n:>5}. " + head[0][7:]
            lines.extend(("", t) for t in head)
            lines.extend((COMMAND, f"       {cmd}") for cmd in cmds)
            note = _remedy_note(by_id[ids[0]])
            if note:
                lines.extend(("dim", t) for t in _wrap(note, " " * 7, width))
    if report.notes and (verbose or not report.engines):
        lines.append(("", ""))
        lines.append(("bold", "Not read"))
        for note in report.notes:
            lines.extend(("dim", t) for t in _wrap(note, "  ", width))
    count = {s: sum(1 for c in report.checks if c.status == s) for s in _MARK}
    lines.append(("", ""))
    summary = ", ".join(
        f"{count[s]} {word}"
        for s, word in (("fail", "failed"), ("warn", "warnings"), ("ok", "ok"),
                        ("skip", "skipped"), ("unknown", "unknown"))
        if count[s] or s in ("fail", "warn")
    ) + ("" if verbose else " (-v: all checks)")  # fmt: skip
    lines.append(("bold red" if count["fail"] else "bold green", summary))
    return lines


# The styles the report uses → their SGR parameters (ECMA-48 8.3.117), as Rich wrote them.
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35",
        "cyan": "36"}  # fmt: skip
# Kept from what a terminal receives, as Rich did: BEL, BS, VT, FF and CR (a CR in a pasted value
# would let it overwrite the start of its line).
_TERMINAL_CONTROLS: dict[int, str | None] = dict.fromkeys((7, 8, 11, 12, 13))
# The other controls a terminal acts on (ESC above all: a pasted value must not set the title,
# move the cursor or recolour the report) are shown, not sent: C0 and DEL in caret notation,
# C1 as \x9b. Tab is expanded and a line holds no newline.
_TERMINAL_CONTROLS.update(
    {c: "^" + chr(c + 64) for c in range(32) if c not in (7, 8, 9, 10, 11, 12, 13)}
)
_TERMINAL_CONTROLS.update({127: "^?", **{c: f"\\x{c:02x}" for c in range(128, 160)}})


def styled(style: str, text: str) -> str:
    """``text`` in ``style`` for a terminal; no line breaks are inserted (the terminal folds a long
    command visually and a copy still gives one line)."""
    text = text.translate(_TERMINAL_CONTROLS).expandtabs(8)  # Rich's tab stops, too
    if not style or not text:
        return text
    return f"\x1b[{';'.join(_SGR[w] for w in style.split())}m{text}\x1b[0m"


def print_lines(lines: list[Line], out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    if want_colour(stream):
        # a terminal that declares it has no capabilities gets the same text, unstyled
        dumb = os.environ.get("TERM", "").strip().lower() in ("dumb", "unknown")
        stream.write("".join(styled("" if dumb else s, t) + "\n" for s, t in lines))
    else:
        stream.write("".join(text + "\n" for _, text in lines))


def report_width(stream: IO[str] | None = None) -> int:
    """Prose width: the terminal's columns (COLUMNS honoured), 80 when not a terminal."""
    stream = stream or sys.stdout
    if hasattr(stream, "isatty") and stream.isatty():
        return max(40, min(shutil.get_terminal_size((80, 24)).columns, 120))
    return 80


def print_report(report: Report, out: IO[str] | None = None, verbose: bool = False) -> None:
    print_lines(report_lines(report, verbose=verbose, width=report_width(out)), out)


# --------------------------------------------------------------------------- fix


def fix_text(result: JsonFix, *, header: str = "", restart: bool = False) -> str:
    """What a fix did (or would do), for people: the diffs or the files written, the next
    steps (unless ``restart`` runs them), how to undo, the notes."""
    lines: list[str] = [header] if header else []
    preview = result["dry_run"]
    for f in result["files"]:
        if not f["changed"]:
            lines.append(f"nothing to do: {f['path']} already has it ({f['what']})")
        elif preview:
            lines.append(f.get("diff", "").rstrip("\n"))
            lines.append(f"would write {f['path']}: {f['what']}")
        else:
            backup = f.get("backup")
            kept = f" (original kept in {backup})" if backup else " (new file)"
            lines.append(f"wrote {f['path']}{kept}: {f['what']}")
    steps = result["next_steps"]
    if steps and not restart and (result["changed"] or any(";" in st for st in steps)):
        if any(";" in st or st.endswith("&") for st in steps):
            # Shell lines of their own (a wait loop, a background start): one per line, whole.
            lines.append("next (paste each line as it is):")
            lines.extend(f"  {st}" for st in steps)
        else:
            lines.append("next: " + " && ".join(steps))
    if result["changed"] and not preview:
        lines.append(f"undo: {result['undo'] or 'rootless-doctor fix --undo'}")
    lines.extend(f"note: {n}" for n in result["notes"])
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------- progress


class Progress:
    """A status line on stderr while a slow step runs (engine queries, a probe): shown only on
    a terminal, only after ``delay`` seconds, and erased when the step ends, so fast runs,
    pipes, logs and ``--json`` output never see it."""

    def __init__(self, what: str, *, enabled: bool = True, delay: float = 0.3) -> None:
        self.what = what
        stream = sys.stderr
        self.enabled = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.delay = delay
        self._timer: Any = None
        self._shown = False

    def _show(self) -> None:
        self._shown = True
        sys.stderr.write(f"\r{self.what} ...\x1b[K")
        sys.stderr.flush()

    def __enter__(self) -> Progress:
        if self.enabled:
            import threading

            self._timer = threading.Timer(self.delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
