"""Rootless Docker with RootlessKit 3 (Docker 29.5+): what keeps the daemon from starting or
drops traffic, beyond the source-IP verdict.

IDs: DOCKER-BR-NETFILTER (daemon.json "userland-proxy": false without br_netfilter on the host),
DOCKER-RK3-UDP (UDP published through RootlessKit 3.0.0's builtin driver).
"""

from __future__ import annotations

import functools

from .. import knowledge as kb
from ..model import CheckResult, DockerFacts, HostFacts
from .engine import docker_rootless


def checks(facts: HostFacts) -> list[CheckResult]:
    d = facts.docker
    if d is None:
        return []
    return [br_netfilter(d), *rk3_udp(facts, d)]


def br_netfilter(d: DockerFacts) -> CheckResult:
    res = functools.partial(
        CheckResult,
        id="DOCKER-BR-NETFILTER",
        title='Docker: "userland-proxy": false needs br_netfilter',
        engine="docker",
    )
    if docker_rootless(d) is False:
        return res(status="skip", detail="rootful Docker loads br_netfilter itself")
    if d.userland_proxy is not False:
        return res(status="skip", detail='daemon.json does not set "userland-proxy": false')
    where = d.daemon_json or "daemon.json"
    problem = kb.br_netfilter_problem(d)
    if problem is None:
        return res(
            status="ok", detail=f'{where} sets "userland-proxy": false; br_netfilter is present'
        )
    load = ", then ".join(f"`{c}`" for c in kb.BR_NETFILTER_LOAD)
    remedy = f"{load}, then `systemctl --user restart docker`"
    if d.br_netfilter is None:
        return res(
            status="unknown",
            detail=f'{where} sets "userland-proxy": false; {problem}',
            remedy="see whether `ls /proc/sys/net/bridge/bridge-nf-call-iptables` finds it on "
            f"the host; if not: {remedy}",
        )
    if d.reachable:
        # Running (started while the module was there): the next start fails.
        detail = f"{where}: {problem}; the daemon runs now, its next start fails"
        return res(status="warn", detail=detail, remedy=remedy)
    return res(status="fail", detail=f"{where}: {problem}", remedy=remedy)


def rk3_udp(facts: HostFacts, d: DockerFacts) -> list[CheckResult]:
    """One result per running container that publishes UDP through RootlessKit 3.0.0 builtin
    (rootlesskit issue 592: replies to non-loopback clients are lost; fixed in 3.0.1, which
    Docker 29.5.3 bundles)."""
    out = []
    for c in d.containers:
        ports = kb.rk300_udp_ports(d, c, facts.tools)
        if not ports:
            continue
        out.append(
            CheckResult(
                id="DOCKER-RK3-UDP",
                title="Docker: UDP through RootlessKit 3.0.0's builtin port driver",
                status="warn",
                detail=f"{c.name} publishes {', '.join(ports)}: RootlessKit 3.0.0's builtin "
                "driver loses the replies to clients that are not on loopback (rootlesskit "
                "issue 592, fixed in 3.0.1)",
                remedy="upgrade to Docker ≥ 29.5.3 (RootlessKit ≥ 3.0.1)",
                engine="docker",
                container=c.name,
            )
        )
    return out
