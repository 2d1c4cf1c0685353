"""Report → text for people (Rich on a terminal, plain otherwise) or JSON for machines.

The JSON shape is the documented, stable schema (README "JSON output"); ``JsonReport`` writes it
down. Rich is imported only when colours are wanted, so piped and ``--json`` output stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any, TypedDict, cast

from .model import CheckResult, EngineReport, JsonFix, ProbeResult, Report

SCHEMA_VERSION = 1


class JsonContainer(TypedDict):
    name: str
    network_mode: str | None
    port_handler: str | None
    source_ip_preserved: bool | None
    reason: str


class JsonEngine(TypedDict):
    engine: str
    rootless: bool | None
    version: str | None
    rootlesskit_version: str | None
    network_driver: str | None
    port_driver: str | None
    source_ip_preserved: bool | None
    reason: str
    containers: list[JsonContainer]


class JsonCheck(TypedDict):
    id: str
    status: str
    title: str
    detail: str
    remedy: str


class JsonReport(TypedDict, total=False):
    schema_version: int
    engines: list[JsonEngine]
    checks: list[JsonCheck]
    probes: list[dict[str, Any]]  # only with --probe
    notes: list[str]  # host facts that could not be read, and why


def to_json(report: Report) -> JsonReport:
    out: JsonReport = {
        "schema_version": SCHEMA_VERSION,
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
        "containers": [
            {
                "name": c.name,
                "network_mode": c.network_mode,
                "port_handler": c.port_handler,
                "source_ip_preserved": c.source_ip_preserved,
                "reason": c.reason,
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
        "probes": out,
        "exit_code": found.exit_code(results),
        "note": note or None,
    }


def print_json(data: object, out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- people

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip", "unknown": "??"}
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "unknown": "magenta"}


def _yes_no(v: bool | None) -> str:
    return {True: "kept", False: "LOST", None: "unknown"}[v]


def want_colour(stream: IO[str]) -> bool:
    """Colours only on a terminal and never with NO_COLOR set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def report_lines(report: Report) -> list[tuple[str, str]]:
    """The human report as (style, text) lines; styles are Rich style names or ""."""
    lines: list[tuple[str, str]] = []
    if report.offline:
        lines.append(("dim", "Diagnosis of the given files only (not this host)."))
    if not report.engines:
        lines.append(("bold", "No Docker, Podman or RootlessKit found."))
    by_engine: dict[str | None, list[CheckResult]] = {}
    for c in report.checks:
        by_engine.setdefault(c.engine, []).append(c)
    for e in report.engines:
        mode = {True: "rootless", False: "rootful", None: "rootless?"}[e.rootless]
        head = f"{e.engine} {e.version or '(version unknown)'} ({mode})"
        parts = []
        if e.engine != "podman" and (e.rootlesskit_version or e.rootless):
            parts.append(f"RootlessKit {e.rootlesskit_version or '?'}")
        if e.network_driver or e.port_driver:
            label = "port handler" if e.engine == "podman" else "port driver"
            parts.append(f"network {e.network_driver or '?'}, {label} {e.port_driver or '?'}")
        if parts:
            head += " — " + ", ".join(parts)
        lines.append(("bold", head))
        style = {True: "green", False: "bold red", None: "magenta"}[e.source_ip_preserved]
        lines.append((style, f"  client source IP: {_yes_no(e.source_ip_preserved)} — {e.reason}"))
        for ct in e.containers:
            st = {True: "green", False: "red", None: "magenta"}[ct.source_ip_preserved]
            lines.append(
                (
                    st,
                    f"  · {ct.name} [{ct.network_mode or '?'}, handler "
                    f"{ct.port_handler or '?'}]: {_yes_no(ct.source_ip_preserved)} — "
                    f"{ct.reason}",
                )
            )
        lines.extend(_checks(by_engine.pop(e.engine, [])))
    rest = [c for group in by_engine.values() for c in group]
    if rest:
        lines.append(("bold", "Host"))
        lines.extend(_checks(rest))
    if report.notes:
        lines.append(("bold", "Not read"))
        lines.extend(("dim", f"  {n}") for n in report.notes)
    n = {s: sum(1 for c in report.checks if c.status == s) for s in _MARK}
    lines.append(
        (
            "bold red" if n["fail"] else "bold green",
            f"{n['fail']} failed, {n['warn']} warnings, {n['ok']} ok, "
            f"{n['skip']} skipped, {n['unknown']} unknown",
        )
    )
    return lines


def _checks(checks: list[CheckResult]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for c in checks:
        out.append((_STYLE[c.status], f"  [{_MARK[c.status]:>4}] {c.id}: {c.title}"))
        if c.detail and c.status != "ok":
            out.append(("", f"         {c.detail}"))
        if c.remedy and c.status in ("fail", "warn", "unknown"):
            out.append(("cyan", f"         fix: {c.remedy}"))
    return out


def print_lines(lines: list[tuple[str, str]], out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    if want_colour(stream):
        from rich.console import Console
        from rich.text import Text

        console = Console(file=stream, highlight=False)
        for style, text in lines:
            console.print(Text(text, style=style or ""))
    else:
        stream.write("".join(text + "\n" for _, text in lines))


def print_report(report: Report, out: IO[str] | None = None) -> None:
    print_lines(report_lines(report), out)


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
    if result["changed"] and result["next_steps"] and not restart:
        lines.append("next: " + " && ".join(result["next_steps"]))
    if result["changed"] and not preview:
        lines.append("undo: rootless-doctor fix --undo")
    lines.extend(f"note: {n}" for n in result["notes"])
    return "\n".join(line for line in lines if line)
