"""Planner for `rootless-doctor fix privileged-ports`: an /etc/sysctl.d file.

Every port driver but RootlessKit's builtin binds published ports as the unprivileged user, so
ports below ``net.ipv4.ip_unprivileged_port_start`` (default 1024) fail to publish — mail's 25,
143, 465, 587, 993 (rootlesskit docs/port.md). The file sets it to the lowest published port, no
lower than needed, and never raises a value the file already has.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..model import FilePlan

KEY = "net.ipv4.ip_unprivileged_port_start"
FILE = Path("/etc/sysctl.d/99-rootless-doctor-unprivileged-ports.conf")
_LINE = re.compile(r"^(\s*net[./]ipv4[./]ip_unprivileged_port_start\s*=\s*)(\S*)(.*?)(\r?\n)?$")


def fresh(port: int) -> str:
    return (
        "# rootless-doctor: let rootless Docker/Podman publish ports from "
        f"{port} up (sysctl.d(5)).\n"
        f"{KEY} = {port}\n"
    )


def plan(port: int, before: str | None, path: Path = FILE) -> FilePlan:
    what = f"{KEY} = {port}: unprivileged users may bind ports from {port} up"
    steps = (f"sysctl -p {path}",)
    if before is None or not before.strip():
        return FilePlan(path=path, before=before, after=fresh(port), what=what, next_steps=steps)
    lines = before.splitlines(keepends=True)
    for i, ln in enumerate(lines):
        m = _LINE.match(ln)
        if m:
            if m[2].isdigit() and int(m[2]) <= port:
                # Already this low or lower: raising it would stop ports that publish today.
                return FilePlan(path=path, before=before, after=before, what=what, next_steps=steps)
            lines[i] = f"{m[1]}{port}{m[3]}{m[4] or ''}"
            break
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{KEY} = {port}\n")
    return FilePlan(path=path, before=before, after="".join(lines), what=what, next_steps=steps)
