"""Every check ID, declared once: the ID, its title, what it needs, and the skip rule.

The checks build their results from these IDs (written out, never assembled from strings),
``--only``/``--ignore`` are validated against them (:func:`validate_selection`), and
tests/test_registry.py holds the README's check-ID table against :data:`CHECKS`.

``needs`` says what a check looks at; a check whose input is absent says "skip" itself. One need
carries a rule applied here, not by the check: ``rootless-engine`` (host prerequisites of rootless
engines) — when every engine found runs as root, a problem there is "skip"; when no engine was
found at all, a failure is a warning (nothing is broken yet; it matters before installing one).
See :func:`apply_needs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Literal

from ..model import CheckResult, DoctorError, EngineName, HostFacts

Need = Literal[
    "nothing",
    "an engine",
    "docker",
    "podman",
    "containerd",
    "rootlesskit",
    "rootless-engine",
    "running containers",
    "compose file",
    "quadlet unit",
    "--probe",
]


@dataclass(frozen=True, kw_only=True)
class CheckSpec:
    id: str
    title: str  # what the check says, as in the README table
    needs: tuple[Need, ...]


def _c(cid: str, title: str, *needs: Need) -> CheckSpec:
    return CheckSpec(id=cid, title=title, needs=needs or ("nothing",))


# In report order.
CHECKS: tuple[CheckSpec, ...] = (
    # checks/engine.py
    _c("RUN-AS", "run through sudo: the owner's rootless engines are not seen"),
    _c("ENGINES", "which container engines were found"),
    _c("DOCKER-SOURCE-IP", "whether `docker run -p` keeps client IPs", "docker"),
    _c("DOCKER-DRIVER-DRIFT", "configured drivers differ from the running ones", "docker"),
    _c("DOCKER-UNIT-IGNORED", "unit/drop-in settings outside [Service] are ignored", "docker"),
    _c("DOCKER-USERLAND-PROXY", 'RootlessKit ≥ 3 builtin needs "userland-proxy": false', "docker"),
    _c("PASTA-EPHEMERAL-PORT", "pasta auto-forwarding skips ephemeral-range host ports", "docker"),
    # checks/docker_rk3.py
    _c(
        "DOCKER-BR-NETFILTER",
        '"userland-proxy": false without br_netfilter: dockerd exits',
        "docker",
    ),
    _c("DOCKER-RK3-UDP", "UDP published through RootlessKit 3.0.0 builtin", "running containers"),
    _c("PODMAN-SOURCE-IP", "whether `podman run -p` with defaults keeps client IPs", "podman"),
    _c("PODMAN6-SLIRP4NETNS", "Podman 6: slirp4netns leftovers will not start", "podman"),
    _c("ROOTLESSKIT-SOURCE-IP", "each standalone RootlessKit", "rootlesskit"),
    # checks/containerd.py
    _c("CONTAINERD-SOURCE-IP", "whether `nerdctl run -p` keeps client IPs", "containerd"),
    _c(
        "CONTAINERD-DRIVER-DRIFT",
        "containerd: configured drivers differ from running",
        "containerd",
    ),
    _c(
        "CONTAINERD-UNIT-IGNORED",
        "containerd unit settings systemd or the launcher ignore",
        "containerd",
    ),
    _c("CONTAINER-SOURCE-IP", "each running container that publishes ports", "running containers"),
    # checks/prereqs.py
    _c("NEWUIDMAP", "newuidmap/newgidmap installed and privileged", "rootless-engine"),
    _c("SUBUID", "the user has enough subordinate UIDs", "rootless-engine"),
    _c("SUBGID", "the user has enough subordinate GIDs", "rootless-engine"),
    _c("USERNS", "unprivileged user namespaces allowed", "rootless-engine"),
    _c("DEV-NET-TUN", "/dev/net/tun exists and is usable", "rootless-engine"),
    _c("SLIRP4NETNS", "slirp4netns installed, version", "rootless-engine"),
    _c("PASTA", "pasta installed, version", "rootless-engine"),
    _c("ROOTLESSKIT", "RootlessKit installed, version", "rootless-engine"),
    _c("PRIVILEGED-PORTS", "published ports below ip_unprivileged_port_start", "rootless-engine"),
    _c("SYSTEMD-USER", "the user's systemd manager is reachable", "rootless-engine"),
    _c("LINGER", "lingering keeps the user's engines running", "rootless-engine"),
    _c("XDG-RUNTIME-DIR", "XDG_RUNTIME_DIR is set", "rootless-engine"),
    _c("FIREWALL", "nftables vs iptables-legacy for Fail2Ban", "running containers"),
    # checks/compose.py
    _c("COMPOSE-FILE", "the compose file can be read", "compose file"),
    _c("COMPOSE-NETWORK-MODE", "per service: the network mode keeps client IPs", "compose file"),
    _c("COMPOSE-PRIVILEGED-PORTS", "compose ports the engine cannot bind", "compose file"),
    _c("COMPOSE-NET-ADMIN", "Fail2Ban services have NET_ADMIN", "compose file"),
    _c("COMPOSE-NETWORK-INTERFACE", "NETWORK_INTERFACE fits the network mode", "compose file"),
    _c("COMPOSE-PERMIT-DOCKER", "PERMIT_DOCKER with the source IPs seen", "compose file"),
    # checks/quadlet.py
    _c(
        "QUADLET-NETWORK",
        "a Quadlet unit's Network= keeps client IPs, per Podman version",
        "quadlet unit",
    ),
    # checks/interfaces.py
    _c(
        "CONTAINER-NETWORK-INTERFACE",
        "a running container's interfaces vs NETWORK_INTERFACE",
        "running containers",
    ),
    # checks/probe.py (with --probe)
    _c("PROBE-DOCKER", "Docker: what the probe's listener saw", "--probe", "docker"),
    _c("PROBE-PODMAN", "Podman: what the probe's listener saw", "--probe", "podman"),
    _c("PROBE-ROOTLESSKIT", "RootlessKit: what the probe saw", "--probe", "rootlesskit"),
    _c("PROBE-DOCKER-DISAGREES", "Docker: the probe contradicts check", "--probe", "docker"),
    _c("PROBE-PODMAN-DISAGREES", "Podman: the probe contradicts check", "--probe", "podman"),
    _c(
        "PROBE-ROOTLESSKIT-DISAGREES",
        "RootlessKit: the probe contradicts check",
        "--probe",
        "rootlesskit",
    ),
)

BY_ID: dict[str, CheckSpec] = {c.id: c for c in CHECKS}
assert len(BY_ID) == len(CHECKS), "a check ID is declared twice"

# The probe's IDs per engine (written out: no IDs built from strings).
PROBE_ID: dict[EngineName, str] = {
    "docker": "PROBE-DOCKER",
    "podman": "PROBE-PODMAN",
    "rootlesskit": "PROBE-ROOTLESSKIT",
}
PROBE_DISAGREES_ID: dict[EngineName, str] = {
    "docker": "PROBE-DOCKER-DISAGREES",
    "podman": "PROBE-PODMAN-DISAGREES",
    "rootlesskit": "PROBE-ROOTLESSKIT-DISAGREES",
}


def known(cid: str) -> str:
    """``cid`` itself, after making sure it is declared (checks build results with it)."""
    if cid not in BY_ID:
        raise KeyError(f"check ID {cid!r} is not declared in checks/registry.py")
    return cid


def validate_selection(patterns: Iterable[str]) -> None:
    """``--only``/``--ignore`` patterns: each must match at least one declared check ID
    (case-insensitive, shell-style like ``COMPOSE-*``); else one line listing the known IDs."""
    unmatched = [p for p in patterns if not any(fnmatchcase(c.id, p.upper()) for c in CHECKS)]
    if unmatched:
        listed = ", ".join(repr(p) for p in unmatched)
        raise DoctorError(
            f"{listed} matches no check ID; known IDs: {', '.join(c.id for c in CHECKS)}"
        )


def rootless_in_use(facts: HostFacts) -> bool | None:
    """True: some engine is (or may be) rootless; False: only rootful ones; None: none found."""
    from .engine import docker_rootless

    flags: list[bool | None] = []
    if facts.docker is not None:
        flags.append(docker_rootless(facts.docker))
    if facts.podman is not None:
        flags.append(facts.podman.rootless)
    if facts.containerd is not None:
        flags.append(facts.containerd.rootless)
    if facts.rootlesskits:
        flags.append(True)
    if not flags:
        return None
    if facts.uid == 0:
        # root: rootless engines belong to other users; only a known rootless one counts.
        return any(f is True for f in flags)
    return any(f is not False for f in flags)


def apply_needs(facts: HostFacts, results: Iterable[CheckResult]) -> list[CheckResult]:
    """The declared ``rootless-engine`` rule (module docstring) over a list of results."""
    use = rootless_in_use(facts)
    out = []
    for r in results:
        if "rootless-engine" in BY_ID[r.id].needs:
            if use is False and r.status in {"fail", "warn", "unknown"}:
                why = "running as root" if facts.uid == 0 else "every engine runs as root"
                r = replace(r, status="skip", detail=f"{why}; {r.detail}")
            elif use is None and r.status == "fail":
                r = replace(r, status="warn", detail=f"{r.detail} (no engine found yet)")
        out.append(r)
    return out
