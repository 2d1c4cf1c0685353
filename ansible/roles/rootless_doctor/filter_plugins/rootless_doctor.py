"""Filters that turn `rootless-doctor check --json` results into the fleet summary.

Used by tasks/main.yml; the summary's shape is written down in ``fleet_summary``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

SUMMARY_VERSION = 1
_VERDICT = {True: "kept", False: "lost", None: "unknown"}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def host_summary(result: Mapping[str, Any], host: str, error: str = "") -> dict[str, Any]:
    """One host: the registered ``check --json`` task result → its line in the summary."""
    out: dict[str, Any] = {
        "host": host,
        "exit_code": result.get("rc"),
        "report": None,
        "tool_version": None,
        "failing_checks": [],
        "warning_checks": [],
        "engines": [],
        "error": error,
    }
    if error:
        return out
    rc = out["exit_code"]
    msg = str(result.get("msg", "")).strip()
    if rc is None or (msg and msg != "non-zero return code" and rc not in (0, 1)):
        # The command module could not start it (no such file, not executable).
        cmd = str(result.get("cmd", "")).strip() or "check"
        out["error"] = f"`{cmd}` did not start: {msg or 'no result'}"
        out["exit_code"] = None  # the module's 2, not the tool's
        return out
    if rc not in (0, 1):
        out["error"] = f"check exited {rc}: {_last_line(str(result.get('stderr', '')))}"
        return out
    try:
        data = json.loads(str(result.get("stdout", "")))
        checks = data["checks"]
        engines = data["engines"]
    except (ValueError, KeyError, TypeError) as err:
        out["error"] = f"check exited {rc} without a JSON report ({err})"
        return out
    out["report"] = f"{host}.json"
    out["tool_version"] = data.get("tool_version")
    out["failing_checks"] = [c["id"] for c in checks if c.get("status") == "fail"]
    out["warning_checks"] = [c["id"] for c in checks if c.get("status") == "warn"]
    out["engines"] = [
        {
            "engine": e.get("engine"),
            "version": e.get("version"),
            "source_ip": _VERDICT.get(e.get("source_ip_preserved"), "unknown"),
            "reason": e.get("reason", ""),
        }
        for e in engines
    ]
    return out


def fleet_summary(hostvars: Mapping[str, Any], hosts: Sequence[str]) -> dict[str, Any]:
    """The fleet: every host of the play, in inventory order, also those that gave no result.

    ``{"summary_version": 1, "hosts": [host_summary...], "hosts_failing": [names],
    "hosts_not_checked": [names]}``; a host is failing when a check failed, not checked when the
    tool did not run there (unreachable, not installed, exit 2/3).
    """
    rows: list[dict[str, Any]] = []
    for host in hosts:
        row = hostvars[host].get("_rd_summary") if host in hostvars else None
        if not isinstance(row, Mapping):
            row = host_summary(
                {}, host, "no result: unreachable, or the play stopped before the check"
            )
        rows.append(dict(row))
    return {
        "summary_version": SUMMARY_VERSION,
        "hosts": rows,
        "hosts_failing": [r["host"] for r in rows if r["failing_checks"]],
        "hosts_not_checked": [r["host"] for r in rows if r["error"]],
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """One readable line per host, for the play's output."""
    lines = []
    for r in summary["hosts"]:
        if r["error"]:
            lines.append(f"{r['host']}: NOT CHECKED: {r['error']}")
            continue
        engines = ", ".join(
            f"{e['engine']} {e['version'] or '?'} {e['source_ip']}" for e in r["engines"]
        )
        failing = ", ".join(r["failing_checks"]) or "none"
        lines.append(
            f"{r['host']}: exit {r['exit_code']}; failing: {failing}; "
            f"source IPs: {engines or 'no engine found'}"
        )
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rootless_doctor_host_summary": host_summary,
            "rootless_doctor_fleet_summary": fleet_summary,
            "rootless_doctor_summary_lines": summary_lines,
        }
