"""Measured throughput of the published-port paths, shipped with the package.

``dataplane.json`` next to this module is the output of ``bench/dataplane.py`` (iperf3 through
each path on real engines: Debian 12's, and Debian trixie/sid roots with Docker 26/28, Podman
5.4/5.8, RootlessKit 2, passt 2025/2026), with its date, machine, versions and command. `fix`
quotes these figures, with where and when they were measured, instead of upstream's: upstream's
"≈38 Gbps" for pasta + implicit is a loopback client talking to RootlessKit's own child, without
Docker (rootlesskit hack/benchmark-iperf3-port.sh), which no real client sees. Through Docker the
figure depends on the MTU of Docker's bridge more than on the driver (/work/team/b12-findings.md).

To refresh: run the bench on the real stacks and copy its JSON over ``dataplane.json``.

``probe --throughput`` measures the paths of the user's own host (the run, with its containers and
sockets: rootless_doctor/throughput_probe.py). What is pure about it lives here: which paths an
engine offers (:func:`podman_paths`, :func:`docker_path`), a result (:class:`PathResult`), the
shipped figure of the same path (:func:`elsewhere`), the decision (:func:`decide`) and the JSON
shape (:class:`JsonThroughput`).

Pure: reads only this package's own file.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from . import knowledge as kb
from .model import PodmanFacts, RootlessKitFacts, Tool

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


# --------------------------------------------------------------------------------------------
# probe --throughput: the paths a host offers, what one measured, and the decision

SECONDS = 2.0  # sending time per path, default
MAX_SECONDS = 10.0  # --seconds is capped here
START_BOUND = 20.0  # a path's container start + first answer, at most (as the probe's timeout)
DRAIN_BOUND = 5.0  # after the sender stops: the sink's count must come within this
TOTAL_BOUND = 120.0  # the whole throughput run; a path that would start later is not started
# One run per path on a host that does other work: a path that loses client IPs is named as
# faster only by this factor. Two runs of one path in bench/dataplane.py's shipped table differ
# by up to 2x (sid podman:default 6.2 and 13.1 Gbit/s) on the shared 2-core machine.
CLEARLY_FASTER = 1.5
BRIDGE_NETWORK = "rd-probe-net"  # prefix of the throwaway user-defined Podman network

Outcome = Literal["measured", "failed", "unavailable", "not started"]


@dataclass(frozen=True, kw_only=True)
class PathSpec:
    """One published-port path a user can pick on this host, or why it is not available."""

    engine: str  # podman / docker
    key: str  # e.g. "podman:pasta", "podman:slirp4netns+rootlessport", "docker:pasta+implicit"
    label: str
    how: str  # what a user writes to get it
    default: bool = False  # what `run -p` gives without --network
    network: str | None = None  # --network value; BRIDGE_NETWORK: a throwaway network is made
    unavailable: str = ""  # why this host cannot use it ("" = available)
    instance: int | None = None  # rootlesskit: the PID of the standalone RootlessKit


@dataclass(frozen=True, kw_only=True)
class PathResult:
    """What one path measured: bytes the sink in the container received (not what was sent or
    buffered), over the sink's own time from first byte to end, and the address it saw."""

    spec: PathSpec
    outcome: Outcome
    source: str = ""
    observed: str = ""
    kept: bool | None = None
    received: int = 0  # bytes the sink counted
    sent: int = 0  # bytes the sender handed to the kernel
    seconds: float = 0.0  # the sink's first byte to end of stream
    mtu: int | None = None  # the largest interface MTU inside the container (eth0, tap0)
    error: str = ""  # why it failed / is unavailable / was not started
    elapsed_ms: float = 0.0

    @property
    def gbit_s(self) -> float | None:
        if self.outcome != "measured" or self.seconds <= 0:
            return None
        return self.received * 8 / self.seconds / 1e9


def _podman_default_key(network: str | None, handler: str | None) -> str:
    if network == "pasta":
        return "podman:pasta"
    # port_handler=rootlesskit (slirp4netns's default handler, spelled out) is rootlessport
    return f"podman:slirp4netns+{'slirp4netns' if handler == 'slirp4netns' else 'rootlessport'}"


PODMAN_LABELS = {
    "podman:pasta": "pasta",
    "podman:slirp4netns+rootlessport": "slirp4netns + rootlessport",
    "podman:slirp4netns+slirp4netns": "slirp4netns, port_handler=slirp4netns",
}


def podman_paths(p: PodmanFacts, tools: Mapping[str, Tool] | None) -> list[PathSpec]:
    """The published-port paths ``podman run -p`` offers here without changing any setting: the
    default, and per container ``--network slirp4netns:port_handler=slirp4netns``, ``--network
    pasta`` and a user-defined (bridge) network."""
    forwarder = kb.podman_port_forwarder(p)
    bridge_key = f"podman:bridge+{forwarder}"
    # containers.conf [containers] netns, when set, is what `run -p` without --network gets
    # (knowledge.podman_netns, as check's verdict says)
    netns = kb.podman_netns(p) if p.rootless is not False else None
    default_net = netns.mode if netns else kb.podman_default_network(p)[0]
    handler = kb.podman_conf_port_handler(p) if default_net == "slirp4netns" else None
    how = "podman run -p HOST:CONTAINER (no --network"
    if netns:
        how += f'; {netns.origin or "containers.conf"}: [containers] netns = "{netns.value}"'
    how += ")"
    if default_net == "bridge":
        default_key = bridge_key
        what = f'the "{netns.network if netns else "podman"}" network, {forwarder}'
        unavailable = ""
    elif default_net in ("pasta", "slirp4netns", None):
        default_key = _podman_default_key(default_net, handler)
        what, unavailable = PODMAN_LABELS[default_key], ""
    else:  # host, none, another namespace: no published-port path of its own
        default_key, what = f"podman:{default_net}", str(default_net)
        unavailable = f"a plain podman run -p joins {default_net}: no published-port path"
    m = kb.major(p.version) or 0
    out = [
        PathSpec(
            engine="podman",
            key=default_key,
            label=f"podman default ({what})",
            how=how,
            default=True,
            unavailable=unavailable,
        )
    ]
    slirp = ""
    if m >= 6:
        slirp = f"Podman {p.version} has no slirp4netns"
    elif not (p.slirp4netns_version or (tools or {}).get("slirp4netns", Tool(name="")).path):
        slirp = "slirp4netns is not installed"
    if default_key != "podman:slirp4netns+slirp4netns":
        out.append(
            PathSpec(
                engine="podman",
                key="podman:slirp4netns+slirp4netns",
                label="podman slirp4netns, port_handler=slirp4netns",
                how=f"podman run --network {kb.SLIRP_KEEP_IP_MODE} -p ...",
                network=kb.SLIRP_KEEP_IP_MODE,
                unavailable=slirp,
            )
        )
    if default_key != "podman:pasta":
        pasta = ""
        if not kb.version_at_least(p.version, kb.PODMAN_PASTA):
            pasta = f"Podman {p.version} has no pasta network (from {kb.PODMAN_PASTA})"
        elif not kb.pasta_available(p, tools):
            pasta = "pasta (passt) is not installed"
        out.append(
            PathSpec(
                engine="podman",
                key="podman:pasta",
                label="podman pasta",
                how="podman run --network pasta -p ...",
                network="pasta",
                unavailable=pasta,
            )
        )
    if default_key != bridge_key:
        out.append(
            PathSpec(
                engine="podman",
                key=bridge_key,
                label=f"podman user-defined network ({forwarder})",
                how="podman network create NET; podman run --network NET -p ... (compose's "
                "default)",
                network=BRIDGE_NETWORK,
            )
        )
    return out


def _as_running(engine: str, kit: RootlessKitFacts | None, label: str, how: str) -> PathSpec:
    """The one path of a RootlessKit as it runs (``label``: a format of ``net`` and ``driver``)."""
    net = (kit.network_driver if kit else None) or "?"
    driver = (kit.port_driver if kit else None) or "?"
    return PathSpec(
        engine=engine,
        key=f"{engine}:{net}+{driver}",
        label=label.format(net=net, driver=driver),
        how=how,
        default=True,
        instance=kit.pid if kit and engine == "rootlesskit" else None,
    )


def docker_path(kit: RootlessKitFacts | None) -> PathSpec:
    """Rootless Docker's one path: its daemon's RootlessKit drivers as they run now (changing
    them means restarting the daemon: `fix docker`, not a probe's business)."""
    label = "docker ({net} + {driver}, as the daemon runs)"
    return _as_running("docker", kit, label, "docker run -p HOST:CONTAINER")


def rootlesskit_path(kit: RootlessKitFacts) -> PathSpec:
    """A standalone RootlessKit's one path: a port added through its api.sock, as it runs."""
    label = f"rootlesskit pid {kit.pid} ({{net}} + {{driver}})"
    return _as_running("rootlesskit", kit, label, "rootlessctl add-ports 0.0.0.0:HOST:CHILD/tcp")


def _shipped_meaning(row: Measured, versions: Mapping[str, Mapping[str, str]]) -> str:
    """A shipped row's key in :class:`PathSpec` terms: the bench's ``podman:default`` is pasta
    on Podman 5+ and slirp4netns + rootlessport before; its user-defined network is
    ``podman:rdbench``."""
    if row.key == "podman:default":
        v = versions.get(row.stack, {}).get("podman")
        return _podman_default_key("pasta" if (kb.major(v) or 0) >= 5 else "slirp4netns", None)
    if row.key == "podman:rdbench":
        return "podman:bridge+rootlessport"
    if row.key == f"podman:{kb.SLIRP_KEEP_IP_MODE}":
        return "podman:slirp4netns+slirp4netns"
    return row.key


def elsewhere(r: PathResult) -> list[Measured]:
    """The shipped figures of the same path (Docker: with the bridge MTU the container showed),
    in the table's stack order."""
    t = table()
    if t is None:
        return []
    key = r.spec.key
    if r.spec.engine == "docker":
        tuned = r.mtu is not None and r.mtu >= TUNED_MTU
        net, _, driver = key.removeprefix("docker:").partition("+")
        key = docker_key(net, driver, tuned=tuned)
    return [row for row in t.rows if _shipped_meaning(row, t.versions) == key]


def elsewhere_text(r: PathResult) -> str:
    """E.g. "bookworm 11.1", "trixie 7.5, sid 9.7"; "" when the path was never measured."""
    return ", ".join(f"{m.stack} {m.gbit_s:.1f}" for m in elsewhere(r))


@dataclass(frozen=True, kw_only=True)
class Decision:
    best: PathResult | None  # the fastest measured path that kept the client's address
    text: str  # one line for people


def decide(results: list[PathResult]) -> Decision:
    """The fastest path measured here that keeps client IPs, and what it costs against the
    fastest path overall."""
    measured = [r for r in results if r.gbit_s is not None]
    kept = [r for r in measured if r.kept]
    if not measured:
        return Decision(best=None, text="no path could be measured here")
    fastest = max(measured, key=lambda r: r.gbit_s or 0.0)
    if not kept:
        return Decision(
            best=None,
            text=(
                "no measured path keeps client IPs here; `rootless-doctor check` says how to get "
                "one"
            ),
        )
    best = max(kept, key=lambda r: r.gbit_s or 0.0)
    text = f"fastest path here that keeps client IPs: {best.spec.label}, {best.gbit_s:.1f} Gbit/s"
    text += f" ({best.spec.how})"
    if fastest is not best and (fastest.gbit_s or 0.0) >= CLEARLY_FASTER * (best.gbit_s or 0.0):
        text += f"; {fastest.spec.label} is faster ({fastest.gbit_s:.1f}) but loses client IPs"
    return Decision(best=best, text=text)


def advice(results: list[PathResult]) -> list[str]:
    """What the figures here suggest beyond picking a path: rootless Docker keeping client IPs
    through a user-mode stack with its bridge at MTU 1500 runs far below its tuned figure."""
    out = []
    for r in results:
        if r.spec.engine != "docker" or r.gbit_s is None:
            continue
        net, _, driver = r.spec.key.removeprefix("docker:").partition("+")
        if r.kept and r.mtu is not None and r.mtu < TUNED_MTU:
            quote = quote_docker(net, driver)
            out.append(
                f"docker keeps client IPs here at {r.gbit_s:.1f} Gbit/s with its bridge at MTU "
                f"{r.mtu}: `{kb.FIX_DOCKER} --mtu` raises it and RootlessKit's to {TUNED_MTU}"
                + (f" ({quote})" if quote else "")
            )
        elif r.kept is False:
            out.append(
                f"docker loses client IPs here: `{kb.FIX_DOCKER}` writes a port driver that "
                "keeps them (`rootless-doctor check` says which, and what it costs)"
            )
    return out


class JsonElsewhere(TypedDict):
    stack: str
    gbit_s: float


class JsonPath(TypedDict):
    engine: str
    key: str
    label: str
    how: str
    default: bool
    outcome: str  # measured | failed | unavailable | not started
    gbit_s: float | None
    bytes_received: int
    bytes_sent: int
    seconds: float
    source: str
    observed: str
    source_ip_preserved: bool | None
    container_mtu: int | None
    error: str
    elapsed_ms: float
    measured_elsewhere: list[JsonElsewhere]  # the shipped figure of this path, per stack


class JsonThroughput(TypedDict):
    """``probe --throughput --json``: the ``throughput`` member."""

    seconds_per_path: float
    paths: list[JsonPath]
    best_keeping_client_ip: str | None  # the key of :func:`decide`'s path
    decision: str
    advice: list[str]  # :func:`advice`
    measured_elsewhere_date: str | None  # when/where the shipped figures were taken
    measured_elsewhere_machine: str | None


def to_json(results: list[PathResult], seconds: float) -> JsonThroughput:
    t = table()
    d = decide(results)
    return {
        "seconds_per_path": seconds,
        "paths": [
            {
                "engine": r.spec.engine,
                "key": r.spec.key,
                "label": r.spec.label,
                "how": r.spec.how,
                "default": r.spec.default,
                "outcome": r.outcome,
                "gbit_s": None if r.gbit_s is None else round(r.gbit_s, 3),
                "bytes_received": r.received,
                "bytes_sent": r.sent,
                "seconds": round(r.seconds, 4),
                "source": r.source,
                "observed": r.observed,
                "source_ip_preserved": r.kept,
                "container_mtu": r.mtu,
                "error": r.error,
                "elapsed_ms": round(r.elapsed_ms, 1),
                "measured_elsewhere": [
                    {"stack": m.stack, "gbit_s": m.gbit_s} for m in elsewhere(r)
                ],
            }
            for r in results
        ],
        "best_keeping_client_ip": d.best.spec.key if d.best else None,
        "decision": d.text,
        "advice": advice(results),
        "measured_elsewhere_date": t.date if t else None,
        "measured_elsewhere_machine": t.machine if t else None,
    }
