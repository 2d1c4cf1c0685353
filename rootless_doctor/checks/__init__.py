"""Checks: pure functions of ``HostFacts`` → ``CheckResult``s, and ``diagnose`` → ``Report``.

One module per concern, each exporting ``checks(facts) -> list[CheckResult]``:
engine (engines and their source-IP verdicts), containerd (nerdctl's rootless containerd),
prereqs (host prerequisites), compose (a compose file), interfaces (a running container's
interfaces vs NETWORK_INTERFACE).
"""

from __future__ import annotations

from dataclasses import replace

from .. import knowledge as kb
from ..model import (
    CheckResult,
    ContainerdFacts,
    ContainerReport,
    DockerFacts,
    EngineName,
    EngineReport,
    HostFacts,
    PodmanFacts,
    Report,
    RootlessKitFacts,
)
from . import compose, containerd, docker_rk3, engine, interfaces, prereqs, quadlet, registry

MODULES = (engine, docker_rk3, containerd, prereqs, compose, quadlet, interfaces)


def all_checks(facts: HostFacts) -> list[CheckResult]:
    """Every check's results, with the declared prerequisite rule applied (checks/registry.py);
    a result with an undeclared ID is a bug (KeyError)."""
    out: list[CheckResult] = []
    for module in MODULES:
        out += module.checks(facts)
    if facts.systemd_user is False:  # no unit to restart: the restart that works here
        out = [
            replace(
                r,
                detail=kb.for_host_init(r.detail, False),
                remedy=kb.for_host_init(r.remedy, False),
            )
            for r in out
        ]
    return registry.apply_needs(facts, out)


def docker_report(facts: HostFacts, d: DockerFacts) -> EngineReport:
    v = kb.docker_verdict(d, facts.tools)
    rootless = engine.docker_rootless(d)
    if rootless is False:
        net = port = rk_version = None
    else:
        dr = kb.docker_drivers(d, facts.tools)
        net, port, rk_version = dr.network_driver, dr.port_driver, dr.rootlesskit_version
    containers = []
    for c in d.containers:
        cv = kb.docker_container_verdict(d, c, facts.tools, facts.ephemeral_ports)
        containers.append(
            ContainerReport(
                name=c.name,
                network_mode=c.network_mode,
                port_handler=c.port_handler or port,
                source_ip_preserved=cv.preserved,
                reason=cv.reason,
                seen_address=cv.seen,
            )
        )
    return EngineReport(
        engine="docker",
        rootless=rootless,
        version=d.version,
        rootlesskit_version=rk_version,
        network_driver=net,
        port_driver=port,
        source_ip_preserved=v.preserved,
        reason=v.reason,
        seen_address=v.seen,
        containers=tuple(containers),
    )


def _podman_handler(p: PodmanFacts, net: str | None) -> str | None:
    if net == "pasta":
        return "pasta"
    if net == "slirp4netns":
        return kb.podman_conf_port_handler(p) or "rootlesskit"
    return None


def podman_report(p: PodmanFacts) -> EngineReport:
    v = kb.podman_engine_verdict(p)
    # Rootful Podman publishes ports with netavark/CNI DNAT: no rootless network command applies.
    net = None if p.rootless is False else kb.podman_default_network(p)[0]
    plain = None if p.rootless is False else kb.podman_netns_container(p)
    containers = []
    for c in p.containers:
        cv = kb.podman_container_verdict(p, c, fix=False)  # the report shows no remedy
        containers.append(
            ContainerReport(
                name=c.name,
                network_mode=c.network_mode,
                port_handler=kb.podman_port_handler(p, c),
                source_ip_preserved=cv.preserved,
                reason=cv.reason,
                seen_address=cv.seen,
            )
        )
    return EngineReport(
        engine="podman",
        rootless=p.rootless,
        version=p.version,
        rootlesskit_version=None,
        # containers.conf [containers] netns, when set, picks the network instead
        network_driver=kb.split_network_mode(plain.network_mode)[0] if plain else net,
        port_driver=kb.podman_port_handler(p, plain) if plain else _podman_handler(p, net),
        source_ip_preserved=v.preserved,
        reason=v.reason,
        seen_address=v.seen,
        containers=tuple(containers),
    )


def containerd_report(facts: HostFacts, c: ContainerdFacts) -> EngineReport:
    v = kb.containerd_verdict(c, facts.tools)
    dr = kb.containerd_drivers(c, facts.tools) if c.rootless is not False else None
    containers = []
    for ct in c.containers:
        cv = kb.containerd_container_verdict(c, ct, facts.tools)
        host = kb.split_network_mode(ct.network_mode)[0] == "host"
        containers.append(
            ContainerReport(
                name=ct.name,
                network_mode=ct.network_mode,
                port_handler=None if host or dr is None else dr.port_driver,
                source_ip_preserved=cv.preserved,
                reason=cv.reason,
                seen_address=cv.seen,
            )
        )
    return EngineReport(
        engine="containerd",
        rootless=c.rootless,
        version=c.version,
        rootlesskit_version=dr.rootlesskit_version if dr else None,
        network_driver=dr.network_driver if dr else None,
        port_driver=dr.port_driver if dr else None,
        source_ip_preserved=v.preserved,
        reason=v.reason,
        seen_address=v.seen,
        containers=tuple(containers),
    )


def rootlesskit_report(rk: RootlessKitFacts) -> EngineReport:
    v = kb.rootlesskit_verdict(rk)
    return EngineReport(
        engine="rootlesskit",
        rootless=True,
        version=rk.version,
        rootlesskit_version=rk.version,
        network_driver=rk.network_driver,
        port_driver=rk.port_driver,
        source_ip_preserved=v.preserved,
        reason=v.reason,
        seen_address=v.seen,
    )


def diagnose(facts: HostFacts) -> Report:
    """Engine reports (Docker, Podman, each standalone RootlessKit) and every check."""
    engines: list[EngineReport] = []
    if facts.docker is not None:
        engines.append(docker_report(facts, facts.docker))
    if facts.podman is not None:
        engines.append(podman_report(facts.podman))
    if facts.containerd is not None:
        engines.append(containerd_report(facts, facts.containerd))
    engines += [rootlesskit_report(rk) for rk in facts.rootlesskits]
    return Report(
        engines=tuple(engines),
        checks=tuple(all_checks(facts)),
        offline=facts.offline,
        notes=facts.notes,
    )


def only_engine(facts: HostFacts, engine: EngineName) -> HostFacts:
    """The facts as if only ``engine`` were installed (``check --engine``): the other engine and
    standalone RootlessKits are left out, so the compose file is judged for this one."""
    if engine == "docker":
        return replace(facts, podman=None, rootlesskits=())
    return replace(facts, docker=None, rootlesskits=())


__all__ = ["all_checks", "diagnose", "only_engine"]
