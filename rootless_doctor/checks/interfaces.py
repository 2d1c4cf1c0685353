"""A running container's real interfaces vs its NETWORK_INTERFACE (docker-mailserver).

ID: CONTAINER-NETWORK-INTERFACE. docker-mailserver stops at start with "misconfigured
NETWORK_INTERFACE" when the name does not exist in the container (docs config/advanced/podman.md).
"""

from __future__ import annotations

from .. import knowledge as kb
from ..model import CheckResult, ContainerFacts, HostFacts, Interface
from .compose import DMS_DEFAULT_INTERFACE
from .engine import all_containers

# Env keys that mark a docker-mailserver container (ContainerFacts has no image field).
_DMS_MARKERS = ("NETWORK_INTERFACE", "PERMIT_DOCKER", "ENABLE_FAIL2BAN")


def best_interface(interfaces: tuple[Interface, ...]) -> str | None:
    """The name to set: tap0 (slirp4netns) if there, else the first non-loopback with an address."""
    names = [i for i in interfaces if i.name != "lo"]
    for i in names:
        if i.name == kb.SLIRP_INTERFACE:
            return i.name
    with_addr = [i for i in names if i.addresses]
    pick = with_addr or names
    return pick[0].name if pick else None


def _check(c: ContainerFacts) -> CheckResult:
    title = f"Container {c.name}: NETWORK_INTERFACE exists inside"
    value = c.env.get("NETWORK_INTERFACE") or ""
    shown = value or f"unset (default {DMS_DEFAULT_INTERFACE})"
    effective = value or DMS_DEFAULT_INTERFACE
    if c.interfaces is None:
        why = c.interfaces_error or "its network namespace was not read"
        return CheckResult(
            id="CONTAINER-NETWORK-INTERFACE",
            title=title,
            status="skip",
            detail=f"NETWORK_INTERFACE {shown}; interfaces not read: {why}",
            engine=c.engine,
            container=c.name,
        )
    names = [i.name for i in c.interfaces]
    seen = ", ".join(f"{i.name} {' '.join(i.addresses)}".strip() for i in c.interfaces)
    if effective in names:
        return CheckResult(
            id="CONTAINER-NETWORK-INTERFACE",
            title=title,
            status="ok",
            detail=f"NETWORK_INTERFACE {shown}; interfaces {seen}",
            engine=c.engine,
            container=c.name,
        )
    best = best_interface(c.interfaces)
    set_to = f"NETWORK_INTERFACE={best}" if best else "NETWORK_INTERFACE to an existing interface"
    return CheckResult(
        id="CONTAINER-NETWORK-INTERFACE",
        title=title,
        status="fail",
        detail=f"NETWORK_INTERFACE {shown} but the container has {seen or 'no interface'} "
        f"(network {c.network_mode or '?'}): docker-mailserver stops at start",
        remedy=f"set {set_to} and recreate the container (`{kb.FIX_COMPOSE}` for compose files)",
        engine=c.engine,
        container=c.name,
    )


def needs_interfaces(c: ContainerFacts) -> bool:
    """Whether this check looks at ``c``: a docker-mailserver container with a network. The
    live check reads the interfaces of these containers only (``host.gather(interfaces=...)``)."""
    return (
        any(k in c.env for k in _DMS_MARKERS) and kb.split_network_mode(c.network_mode)[0] != "none"
    )


def checks(facts: HostFacts) -> list[CheckResult]:
    return [_check(c) for c in all_containers(facts) if needs_interfaces(c)]
