"""Measured throughput of the published-port paths, shipped with the package.

``dataplane.json`` next to this module is the output of ``bench/dataplane.py`` (iperf3 through
each path on real engines: Debian 12's, and Debian trixie/sid roots with Docker 26/28, Podman
5.4/5.8, RootlessKit 2, passt 2025/2026), with its date, machine, versions and command. `fix`
quotes these figures, with where and when they were measured, instead of upstream's: upstream's
"≈38 Gbps" for pasta + implicit is a loopback client talking to RootlessKit's own child, without
Docker (rootlesskit hack/benchmark-iperf3-port.sh), which no real client sees. Through Docker the
figure depends on the MTU of Docker's bridge more than on the driver (/work/team/b12-findings.md).

To refresh: run the bench on the real stacks and copy its JSON over ``dataplane.json``.
Pure: reads only this package's own file.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("dataplane.json")
TUNED_MTU = 65520  # DOCKERD_ROOTLESS_ROOTLESSKIT_MTU and daemon.json "mtu" of the tuned rows


@dataclass(frozen=True, kw_only=True)
class Measured:
    """One path on one stack: median Gbit/s of a non-loopback client, and whether the server
    saw the client's own address."""

    stack: str  # "bookworm", "trixie", "sid"
    key: str  # bench/dataplane.py's path key, e.g. "docker:pasta+implicit,mtu=65520,bridge=65520"
    label: str
    gbit_s: float
    kept: bool | None


@dataclass(frozen=True, kw_only=True)
class Table:
    date: str
    machine: str
    versions: dict[str, dict[str, str]]
    rows: tuple[Measured, ...]


@functools.cache
def table() -> Table | None:
    """The shipped table; None when the file is missing or unreadable (a broken install): the
    callers then quote nothing rather than fail."""
    try:
        data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
        rows = tuple(
            Measured(
                stack=str(r["place"]),
                key=str(r["key"]),
                label=str(r["path"]),
                gbit_s=float(r["bound"]["gbit_s"]),
                kept=r["bound"]["kept"],
            )
            for r in data["rows"]
            if isinstance(r.get("bound"), dict) and "gbit_s" in r["bound"]
        )
        return Table(
            date=str(data["date"]),
            machine=str(data["host"]),
            versions={k: dict(v) for k, v in data["versions"].items()},
            rows=rows,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def docker_key(net: str, port_driver: str, *, tuned: bool = False) -> str:
    """The bench's key of rootless Docker with these RootlessKit drivers, as dockerd-rootless.sh
    sets it up, or ``tuned`` with both MTUs at 65520 (RootlessKit's tap and Docker's bridge)."""
    key = f"docker:{net}+{port_driver}"
    return f"{key},mtu={TUNED_MTU},bridge={TUNED_MTU}" if tuned else key


def rows(key: str) -> list[Measured]:
    t = table()
    return [r for r in t.rows if r.key == key] if t else []


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}"


def quote_docker(net: str, port_driver: str) -> str | None:
    """A short phrase for `fix docker`: what this path measured through rootless Docker, as
    dockerd-rootless.sh sets it up and with both MTUs raised, with where and when; None when
    nothing was measured.

    E.g. "measured 0.4-0.5 Gbit/s as set up, 7.3-9.6 with MTU 65520 on RootlessKit and Docker's
    bridge (Debian trixie, sid; 2026-12-03)". The machine is in :func:`table`.
    """
    t = table()
    plain = rows(docker_key(net, port_driver))
    if t is None or not plain:
        return None
    tuned = rows(docker_key(net, port_driver, tuned=True))
    text = f"measured {_span([r.gbit_s for r in plain])} Gbit/s as set up"
    if tuned:
        text += f", {_span([r.gbit_s for r in tuned])} with MTU {TUNED_MTU} on RootlessKit and "
        text += "Docker's bridge"
    stacks = sorted({r.stack for r in (*plain, *tuned)}, key=list(t.versions).index)
    return f"{text} (Debian {', '.join(stacks)}; {t.date.split()[0]})"
