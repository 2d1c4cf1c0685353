"""Compose file checks (only when a compose file was read).

IDs: COMPOSE-NETWORK-MODE, COMPOSE-PRIVILEGED-PORTS, COMPOSE-NET-ADMIN, COMPOSE-NETWORK-INTERFACE,
COMPOSE-PERMIT-DOCKER. docker-mailserver specifics come from its docs
(``config/security/fail2ban.md``, ``config/advanced/podman.md``, ``config/environment.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .. import knowledge as kb
from ..model import (
    CheckResult,
    ComposeService,
    ContainerFacts,
    DockerFacts,
    HostFacts,
    PodmanFacts,
    Status,
    Verdict,
)
from .engine import docker_rootless, ports_text, status_of

TRUTHY = frozenset({"1", "true", "yes", "on"})
# Default of docker-mailserver's NETWORK_INTERFACE (config/environment.md: eth0).
DMS_DEFAULT_INTERFACE = "eth0"


@dataclass(frozen=True, kw_only=True)
class ComposeEngine:
    """The engine a compose file is judged against, and how that was decided."""

    name: Literal["docker", "podman"]
    docker: DockerFacts
    podman: PodmanFacts
    assumption: str  # "" when only one engine is present and nothing contradicts it


def _podman_syntax(services: tuple[ComposeService, ...]) -> bool:
    return any(
        kb.split_network_mode(s.network_mode)[0] in {"pasta", "slirp4netns"} for s in services
    )


def compose_engine(facts: HostFacts) -> ComposeEngine:
    """Docker rootless vs Podman for the compose file; say what was assumed when unclear."""
    services = facts.compose.services if facts.compose else ()
    d = facts.docker or DockerFacts(rootless=True)
    p = facts.podman or PodmanFacts(rootless=True)
    # Evidence first: a Podman container this file made (podman-compose's labels name the
    # file) says who runs it, whatever DOCKER_HOST or a stopped Docker unit suggest.
    made = (
        kb.compose_file_container(facts.compose.path, facts.podman.containers)
        if facts.compose and facts.podman
        else None
    )
    if made is not None:
        note = (
            f"Podman runs this file (container {made.name} carries its podman-compose labels)"
            if facts.docker is not None
            else ""
        )
        return ComposeEngine(name="podman", docker=d, podman=p, assumption=note)
    if _podman_syntax(services) and (facts.podman is not None or facts.docker is None):
        if facts.podman is not None and facts.docker is None:
            note = ""
        else:
            found = "no engine found" if facts.podman is None else "both engines found"
            note = f"{found}: assumed Podman (network_mode pasta/slirp4netns is Podman syntax)"
        return ComposeEngine(name="podman", docker=d, podman=p, assumption=note)
    if facts.docker is not None and facts.podman is None:
        return ComposeEngine(name="docker", docker=d, podman=p, assumption="")
    if facts.podman is not None and facts.docker is None:
        return ComposeEngine(name="podman", docker=d, podman=p, assumption="")
    if facts.docker is not None and facts.podman is not None:
        if docker_rootless(facts.docker) is False and facts.podman.rootless is not False:
            return ComposeEngine(
                name="podman",
                docker=d,
                podman=p,
                assumption="Docker is rootful and Podman rootless: assumed `podman compose`",
            )
        if (
            docker_rootless(facts.docker) is None
            and facts.docker.reachable is False
            and facts.podman.rootless is not False
        ):
            # Only a docker CLI (no daemon answering, none configured or running): it cannot run
            # this file, Podman can; `fix compose` (engine auto) also picks Podman here.
            return ComposeEngine(
                name="podman",
                docker=d,
                podman=p,
                assumption="Docker's daemon is not running or configured, Podman is here: "
                "assumed `podman compose`",
            )
        return ComposeEngine(
            name="docker",
            docker=d,
            podman=p,
            assumption="both Docker and Podman found: assumed `docker compose`",
        )
    return ComposeEngine(
        name="docker",
        docker=d,
        podman=p,
        assumption="no engine found: assumed rootless Docker with unknown drivers",
    )


def _as_container(engine: ComposeEngine, s: ComposeService) -> ContainerFacts:
    if s.network_mode:
        mode = s.network_mode
    elif engine.name == "podman" and s.networks:
        mode = s.networks[0]
    else:
        mode = "bridge"  # compose puts services on the project's default (bridge) network
    return ContainerFacts(
        engine=engine.name,
        name=s.name,
        network_mode=mode,
        networks=s.networks,
        ports=s.ports,
        env=dict(s.environment),
    )


def service_verdict(engine: ComposeEngine, s: ComposeService, facts: HostFacts) -> Verdict:
    """What the service's published ports would get on the assumed engine."""
    c = _as_container(engine, s)
    base, _ = kb.split_network_mode(s.network_mode)
    if engine.name == "docker":
        if base in {"pasta", "slirp4netns"}:
            return Verdict(
                preserved=None,
                reason=f"network_mode {s.network_mode!r} is Podman syntax; Docker rejects it",
                fix=f"`{kb.FIX_COMPOSE}` (remove it; Docker's port driver decides)",
            )
        return kb.docker_container_verdict(engine.docker, c, facts.tools, facts.ephemeral_ports)
    if base == "slirp4netns" and s.networks:
        mode = kb.keep_ip_mode(engine.podman, facts.tools)
        return Verdict(
            preserved=False,
            reason=f"network_mode slirp4netns cannot join user-defined networks "
            f"({', '.join(s.networks)})",
            fix=f"`{kb.FIX_COMPOSE}` (network_mode {mode}, drop `networks:`)",
        )
    return kb.podman_container_verdict(engine.podman, c, facts.tools)


def _prefix(engine: ComposeEngine) -> str:
    return f"[{engine.assumption}] " if engine.assumption else ""


def is_mailserver(s: ComposeService) -> bool:
    return kb.is_mailserver(s.image, s.environment)


def fail2ban_enabled(env: dict[str, str]) -> bool:
    return env.get("ENABLE_FAIL2BAN", "").strip().lower() in TRUTHY


def setting(s: ComposeService, key: str, default: str) -> str:
    """``KEY=value (mailserver.env)`` with where it came from, or ``KEY unset (default d)``."""
    if key not in s.environment:
        return f"{key} unset (default {default})"
    origin = s.env_origin.get(key, "environment")
    where = "" if origin == "environment" else f" (from {origin})"
    return f"{key}={s.environment[key]}{where}"


def undecided(s: ComposeService, key: str) -> str:
    """Why ``key``'s value cannot be told from what was read ("" when it can): ``environment:``
    does not set it and a required env file could not be read, or it comes from the shell."""
    origin = s.env_origin.get(key, "")
    if origin.startswith("the shell"):
        return f"{key} comes from the shell environment of `compose up`, not from the files read"
    if origin == "environment" or not s.env_missing:
        return ""
    return (
        f"env_file {'; '.join(s.env_missing)}: {key} may be set there (and Compose refuses to "
        "start without a required env file)"
    )


ENV_FILE_REMEDY = (
    "keep the env file next to the compose file (env_file: is relative to it), or pass it with "
    "--from too"
)


def _result(cid: str, title: str, status: Status, detail: str, remedy: str = "") -> CheckResult:
    return CheckResult(
        id=cid, title=title, status=status, detail=detail, remedy=remedy, engine="compose"
    )


def network_mode_checks(facts: HostFacts, engine: ComposeEngine) -> list[CheckResult]:
    assert facts.compose is not None
    out: list[CheckResult] = []
    for s in facts.compose.services:
        if not s.ports and not (s.networks and s.network_mode):
            continue
        v = service_verdict(engine, s, facts)
        status = status_of(v)
        if v.preserved is None and v.fix:
            status = "fail"  # an invalid network_mode, not an unknown fact
        mode = s.network_mode or f"default ({', '.join(s.networks) or 'project network'})"
        out.append(
            _result(
                "COMPOSE-NETWORK-MODE",
                f"Compose {s.name}: network mode keeps client source IPs",
                status,
                f"{_prefix(engine)}network {mode}; ports {ports_text(s.ports) or 'none'}: "
                f"{v.reason}",
                v.fix,
            )
        )
    if not out:
        out.append(
            _result(
                "COMPOSE-NETWORK-MODE",
                "Compose: network modes",
                "skip",
                f"no service in {facts.compose.path} publishes ports",
            )
        )
    return out


def privileged_way_out(engine: ComposeEngine, s: ComposeService, facts: HostFacts) -> str:
    """'setcap' when the port would go through Docker's builtin port driver, else 'sysctl'."""
    if (
        engine.name == "docker"
        and not s.network_mode
        and kb.docker_drivers(engine.docker, facts.tools).port_driver == "builtin"
    ):
        return "setcap"
    return "sysctl"


def privileged_ports_check(facts: HostFacts, engine: ComposeEngine) -> CheckResult:
    assert facts.compose is not None
    title = "Compose: published ports below the unprivileged port start"
    start = facts.unprivileged_port_start
    limit = kb.port_limit(start)
    low = [(s, p) for s in facts.compose.services for p in s.ports if 0 < p.host_port < limit]
    if not low:
        return _result(
            "COMPOSE-PRIVILEGED-PORTS",
            title,
            "ok",
            f"no published port below {limit} (net.ipv4.ip_unprivileged_port_start = "
            f"{start if start is not None else 'not read'})",
        )
    if engine.name == "docker" and docker_rootless(engine.docker) is False:
        return _result("COMPOSE-PRIVILEGED-PORTS", title, "ok", "rootful Docker binds any port")
    seen = ", ".join(f"{s.name}:{p.host_port}" for s, p in low)
    if start is None:
        return _result(
            "COMPOSE-PRIVILEGED-PORTS",
            title,
            "unknown",
            f"ports {seen}; net.ipv4.ip_unprivileged_port_start not read",
            "run `sysctl net.ipv4.ip_unprivileged_port_start`",
        )
    blocked = low
    lowest = min(p.host_port for _, p in blocked)
    bl = ", ".join(f"{s.name}:{p.host_port}" for s, p in blocked)
    if all(privileged_way_out(engine, s, facts) == "setcap" for s, _ in blocked):
        return _result(
            "COMPOSE-PRIVILEGED-PORTS",
            title,
            "warn",
            f"ports {bl} < net.ipv4.ip_unprivileged_port_start = {start}; Docker's builtin "
            "port driver binds them only if rootlesskit has cap_net_bind_service",
            f"`{kb.SETCAP_ROOTLESSKIT}` and `{kb.RESTART_DOCKER}`, or `{kb.FIX_PRIVILEGED_PORTS}`",
        )
    return _result(
        "COMPOSE-PRIVILEGED-PORTS",
        title,
        "fail",
        f"ports {bl} < net.ipv4.ip_unprivileged_port_start = {start}: the rootless engine "
        "cannot bind them",
        f"`{kb.FIX_PRIVILEGED_PORTS}` (sysctl net.ipv4.ip_unprivileged_port_start={lowest})",
    )


def net_admin_check(facts: HostFacts) -> CheckResult:
    assert facts.compose is not None
    title = "Compose: Fail2Ban services have NET_ADMIN"
    f2b = [s for s in facts.compose.services if fail2ban_enabled(s.environment)]
    unsure = [
        (s, why)
        for s in facts.compose.services
        if s not in f2b
        and (why := undecided(s, "ENABLE_FAIL2BAN"))
        and not {c.upper().removeprefix("CAP_") for c in s.cap_add} & {"NET_ADMIN", "ALL"}
    ]
    if not f2b and unsure:
        return _result(
            "COMPOSE-NET-ADMIN",
            title,
            "unknown",
            "; ".join(f"{s.name}: {why}" for s, why in unsure),
            ENV_FILE_REMEDY,
        )
    if not f2b:
        return _result("COMPOSE-NET-ADMIN", title, "skip", "no service sets ENABLE_FAIL2BAN=1")
    missing = [
        s.name
        for s in f2b
        if not {c.upper().removeprefix("CAP_") for c in s.cap_add} & {"NET_ADMIN", "ALL"}
    ]
    if missing:
        return _result(
            "COMPOSE-NET-ADMIN",
            title,
            "fail",
            "; ".join(
                f"{s.name}: {setting(s, 'ENABLE_FAIL2BAN', '0')} without cap_add NET_ADMIN"
                for s in f2b
                if s.name in missing
            )
            + ": Fail2Ban cannot install its ban rules",
            f"add `cap_add: [NET_ADMIN]` to {', '.join(missing)} (`{kb.FIX_COMPOSE}`)",
        )
    return _result(
        "COMPOSE-NET-ADMIN",
        title,
        "ok",
        f"{', '.join(s.name for s in f2b)}: ENABLE_FAIL2BAN=1 with cap_add NET_ADMIN",
    )


def expected_interface(engine: ComposeEngine, s: ComposeService) -> str | None:
    """The interface name docker-mailserver's NETWORK_INTERFACE must have, None = host's name."""
    base, _ = kb.split_network_mode(s.network_mode)
    if engine.name == "docker" and base == "slirp4netns":
        return kb.BRIDGE_INTERFACE  # Podman syntax; Docker rejects it (COMPOSE-NETWORK-MODE)
    return kb.mode_interface(s.network_mode)


def network_interface_check(facts: HostFacts, engine: ComposeEngine) -> list[CheckResult]:
    assert facts.compose is not None
    out: list[CheckResult] = []
    for s in facts.compose.services:
        if "NETWORK_INTERFACE" not in s.environment and not is_mailserver(s):
            continue
        title = f"Compose {s.name}: NETWORK_INTERFACE fits the network mode"
        if why := undecided(s, "NETWORK_INTERFACE"):
            out.append(_result("COMPOSE-NETWORK-INTERFACE", title, "unknown", why, ENV_FILE_REMEDY))
            continue
        value = s.environment.get("NETWORK_INTERFACE") or ""
        shown = setting(s, "NETWORK_INTERFACE", DMS_DEFAULT_INTERFACE)
        effective = value or DMS_DEFAULT_INTERFACE
        want = expected_interface(engine, s)
        mode = s.network_mode or "bridge (default)"
        if want is None:
            if effective == kb.SLIRP_INTERFACE:
                out.append(
                    _result(
                        "COMPOSE-NETWORK-INTERFACE",
                        title,
                        "fail",
                        f"network {mode}, {shown}: {kb.SLIRP_INTERFACE} exists "
                        "only with "
                        "slirp4netns; the container stops at start",
                        "set NETWORK_INTERFACE to the host's interface name "
                        f"(`ip route show default`) (`{kb.FIX_COMPOSE}`)",
                    )
                )
            elif not value:
                out.append(
                    _result(
                        "COMPOSE-NETWORK-INTERFACE",
                        title,
                        "warn",
                        f"network {mode}, {shown}: with {mode} the interface "
                        "has the host's name, which is eth0 only on some hosts",
                        "set NETWORK_INTERFACE to the host's interface name "
                        f"(`ip route show default`) (`{kb.FIX_COMPOSE}`)",
                    )
                )
            else:
                out.append(
                    _result(
                        "COMPOSE-NETWORK-INTERFACE",
                        title,
                        "ok",
                        f"network {mode}, {shown}: must be the host's interface "
                        "name (confirmed for a running container by CONTAINER-NETWORK-INTERFACE)",
                    )
                )
            continue
        if effective == want:
            out.append(
                _result(
                    "COMPOSE-NETWORK-INTERFACE",
                    title,
                    "ok",
                    f"network {mode}, {shown}",
                )
            )
        else:
            out.append(
                _result(
                    "COMPOSE-NETWORK-INTERFACE",
                    title,
                    "fail",
                    f"network {mode}, {shown}: the interface there is {want}; "
                    "the container stops at start (misconfigured NETWORK_INTERFACE)",
                    f"set NETWORK_INTERFACE={want} (`{kb.FIX_COMPOSE}`)",
                )
            )
    return out


def permit_docker_check(facts: HostFacts, engine: ComposeEngine) -> list[CheckResult]:
    assert facts.compose is not None
    out: list[CheckResult] = []
    for s in facts.compose.services:
        if not is_mailserver(s):
            continue
        title = f"Compose {s.name}: PERMIT_DOCKER with the source IPs seen"
        value = s.environment.get("PERMIT_DOCKER", "") or "none"
        shown = setting(s, "PERMIT_DOCKER", "none")
        v = service_verdict(engine, s, facts)
        if why := undecided(s, "PERMIT_DOCKER"):
            status: Status = "unknown"
            detail = f"{why}; source IPs: {v.reason}"
            remedy = f"{ENV_FILE_REMEDY}; meanwhile PERMIT_DOCKER=none is safe"
        elif value == "none":
            status = "ok"
            detail = f"{shown}: no client is trusted as local"
            remedy = ""
        elif v.preserved is False:
            status = "fail"
            detail = (
                f"{shown} while source IPs are lost ({v.reason}): every client "
                "looks local and is trusted: open relay risk (docker-mailserver #2377)"
            )
            remedy = f"set PERMIT_DOCKER=none, and keep source IPs: `{kb.FIX_COMPOSE}`"
        elif v.preserved is None:
            status = "unknown"
            detail = f"{shown}; whether source IPs survive is unknown: {v.reason}"
            remedy = "set PERMIT_DOCKER=none to be safe"
        else:
            status = "ok"
            detail = f"{shown}; source IPs are kept ({v.reason})"
            remedy = ""
        out.append(_result("COMPOSE-PERMIT-DOCKER", title, status, detail, remedy))
    return out


def checks(facts: HostFacts) -> list[CheckResult]:
    if facts.compose is None:
        return []
    if facts.compose.error:
        return [
            CheckResult(
                id="COMPOSE-FILE",
                title="Compose file readable",
                status="fail",
                detail=f"{facts.compose.path}: {facts.compose.error}",
                remedy="fix the file (e.g. `docker compose config` or `podman-compose config` "
                "shows where), or name another one with --compose",
            )
        ]
    engine = compose_engine(facts)
    return [
        *network_mode_checks(facts, engine),
        privileged_ports_check(facts, engine),
        net_admin_check(facts),
        *network_interface_check(facts, engine),
        *permit_docker_check(facts, engine),
    ]
