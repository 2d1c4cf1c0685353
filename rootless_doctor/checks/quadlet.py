"""Quadlet ``.container`` units given with ``check --from``: does ``Network=`` keep client IPs on
the Podman given, or, with no Podman version known, on each of 4.x, 5.x and 6.x?

ID: QUADLET-NETWORK. The verdict is knowledge.podman_container_verdict's (Quadlet's ``Network=``
takes what ``podman run --network`` takes; podman-systemd.unit(5)); no ``Network=`` line means
containers.conf's ``[containers] netns`` where set (``knowledge.podman_netns_verdict``), else
the version's default rootless network (4.x slirp4netns with rootlessport, 5.0+ pasta); Podman 6
removed slirp4netns, so a unit still on it does not start.
"""

from __future__ import annotations

from dataclasses import replace

from .. import knowledge as kb
from ..model import (
    CheckResult,
    ContainerFacts,
    HostFacts,
    PodmanFacts,
    QuadletFacts,
    Status,
    Verdict,
)
from .engine import status_of

# One release per major line stands for it when the Podman version is unknown.
MAJORS = (("4.x", "4.9.0"), ("5.x", "5.8.0"), ("6.x", "6.0.0"))


def verdict(q: QuadletFacts, p: PodmanFacts) -> Verdict:
    p = replace(p, rootless=True if p.rootless is None else p.rootless)
    # Without Network= Quadlet passes no --network (podman pkg/systemd/quadlet addNetworks):
    # containers.conf [containers] netns, when set, picks the network.
    by_netns = None if q.network else kb.podman_netns_verdict(p)
    if by_netns is not None:
        if not by_netns.fix:
            return by_netns
        keep = kb.keep_ip_mode(p, None)
        fix = f"{by_netns.fix}; or `{kb.FIX_QUADLET}` (Network={keep} in this unit)"
        return replace(by_netns, fix=fix)
    mode = q.network or kb.podman_default_network(p)[0]
    c = ContainerFacts(engine="podman", name=q.name, network_mode=mode, ports=q.ports)
    return kb.podman_container_verdict(p, c)


def _check(q: QuadletFacts, status: Status, detail: str, remedy: str) -> CheckResult:
    net = f"Network={q.network}" if q.network else "no Network= (the version's default)"
    return CheckResult(
        id="QUADLET-NETWORK",
        title=f"Quadlet {q.name}: {net} keeps client source IPs",
        status=status,
        detail=detail,
        remedy=remedy,
        engine="podman",
    )


def quadlet_check(q: QuadletFacts, podman: PodmanFacts | None) -> CheckResult:
    if podman is not None and podman.version:
        v = verdict(q, podman)
        return _check(q, status_of(v), v.reason, v.fix)
    base = podman or PodmanFacts()
    per = [(label, verdict(q, replace(base, version=version))) for label, version in MAJORS]
    kept = {v.preserved for _, v in per}
    status: Status = "ok" if kept == {True} else "fail" if kept == {False} else "warn"
    detail = "Podman version not given; " + "; ".join(f"Podman {lbl}: {v.reason}" for lbl, v in per)
    fixes = [f"{lbl}: {v.fix}" for lbl, v in per if v.fix]
    return _check(q, status, detail, f"`{kb.FIX_QUADLET}`; " + "; ".join(fixes) if fixes else "")


def checks(facts: HostFacts) -> list[CheckResult]:
    return [quadlet_check(q, facts.podman) for q in facts.quadlets]
