"""Engine checks: which engines run, and whether their published ports keep client source IPs.

IDs: ENGINES, DOCKER-SOURCE-IP, DOCKER-DRIVER-DRIFT, DOCKER-USERLAND-PROXY, PASTA-EPHEMERAL-PORT,
PODMAN-SOURCE-IP, PODMAN6-SLIRP4NETNS, CONTAINER-SOURCE-IP, ROOTLESSKIT-SOURCE-IP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .. import knowledge as kb
from ..model import (
    CheckResult,
    ContainerFacts,
    DockerFacts,
    HostFacts,
    PodmanFacts,
    PublishedPort,
    RootlessKitFacts,
    Status,
    Verdict,
)


def status_of(v: Verdict) -> Status:
    """preserved → ok, lost → fail, cannot tell → unknown."""
    if v.preserved is None:
        return "unknown"
    return "ok" if v.preserved else "fail"


def docker_rootless(d: DockerFacts) -> bool | None:
    """True/False when known; a running RootlessKit or a configured launcher counts as rootless."""
    if d.rootless is not None:
        return d.rootless
    if d.running is not None or d.configured_env:
        return True
    return None


def docker_label(d: DockerFacts) -> str:
    mode = {True: "rootless", False: "rootful", None: "rootless?"}[docker_rootless(d)]
    version = d.version or "(version unknown)"
    if d.reachable is False:
        return f"Docker {version} ({mode}, daemon not reachable)"
    return f"Docker {version} ({mode})"


def podman_label(p: PodmanFacts) -> str:
    mode = {True: "rootless", False: "rootful", None: "rootless?"}[p.rootless]
    return f"Podman {p.version or '(version unknown)'} ({mode})"


def ports_text(ports: tuple[PublishedPort, ...]) -> str:
    return ", ".join(
        f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}->{p.container_port}/{p.protocol}"
        for p in ports
    )


def _notes(notes: tuple[str, ...]) -> str:
    return f" Not read: {'; '.join(notes)}." if notes else ""


# --------------------------------------------------------------------------- ENGINES


def run_as_check(facts: HostFacts) -> CheckResult:
    """Rootless engines belong to a user: run through sudo, check sees root's engines, not
    theirs (their containers, sockets, units and containers.conf live in their session)."""
    title = "Run as the user who owns the rootless engines"
    if facts.offline:
        return CheckResult(id="RUN-AS", title=title, status="skip", detail="files given")
    if facts.uid == 0 and facts.sudo_user and facts.sudo_user != "root":
        u = facts.sudo_user
        return CheckResult(
            id="RUN-AS",
            title=title,
            status="warn",
            detail=f"running as root through sudo: {u}'s rootless engines and containers are "
            "not seen from here",
            remedy=f"run `rootless-doctor check` as {u} (without sudo), e.g. `sudo -iu {u} "
            "rootless-doctor check` if that user has no login session",
        )
    engines_here = facts.docker is not None or facts.podman is not None
    if facts.uid == 0 and not facts.sudo_user and engines_here and not _rootful_engine(facts):
        # Plain root (a root login, `su -`, a root cron job or playbook without become_user):
        # rootless engines live in their owner's session; root's check sees none of them.
        owners = facts.engine_owners
        seen = f" (rootless engines seen running for: {', '.join(owners)})" if owners else ""
        who = owners[0] if len(owners) == 1 else "USER"
        return CheckResult(
            id="RUN-AS",
            title=title,
            # Engines seen running for a user: this report misses them for sure.
            status="fail" if owners else "warn",
            detail="running as root, and no rootful Docker or Podman here: rootless engines "
            "belong to a user and only that user's session shows them; this report cannot "
            f"speak for them{seen}",
            remedy=f"run it as the user who owns the engines: "
            f"`su - {who} -c 'rootless-doctor check'` (or log in as {who})",
        )
    return CheckResult(
        id="RUN-AS", title=title, status="ok", detail=f"user {facts.user or facts.uid}"
    )


def _rootful_engine(facts: HostFacts) -> bool:
    return (facts.docker is not None and facts.docker.rootless is False) or (
        facts.podman is not None and facts.podman.rootless is False
    )


def engines_check(facts: HostFacts) -> CheckResult:
    found: list[str] = []
    if facts.docker is not None:
        found.append(docker_label(facts.docker))
    if facts.podman is not None:
        found.append(podman_label(facts.podman))
    if facts.containerd is not None:
        c = facts.containerd
        how = "rootless" if c.rootless else "rootful" if c.rootless is False else "rootless?"
        found.append(f"containerd {c.version or ''}".rstrip() + f" ({how}, nerdctl)")
    if facts.rootlesskits:
        found.append(f"{len(facts.rootlesskits)} standalone RootlessKit instance(s)")
    if not found:
        return CheckResult(
            id="ENGINES",
            title="Container engines",
            status="skip",
            detail="no Docker or Podman found (no CLI, daemon, unit or process): nothing to check",
            remedy="install rootless Docker (`dockerd-rootless-setuptool.sh install`) or Podman",
        )
    return CheckResult(
        id="ENGINES", title="Container engines", status="ok", detail="found: " + ", ".join(found)
    )


# --------------------------------------------------------------------------- Docker


def docker_source_ip(facts: HostFacts, d: DockerFacts) -> CheckResult:
    v = kb.docker_verdict(d, facts.tools)
    detail = v.reason
    if d.reachable is False:
        detail += " (daemon not reachable: start it with `systemctl --user start docker`)"
    return CheckResult(
        id="DOCKER-SOURCE-IP",
        title="Docker: published ports keep client source IPs",
        status=status_of(v),
        detail=detail + _notes(d.notes),
        remedy=v.fix,
        engine="docker",
    )


def _docker_result(cid: str, title: str) -> Callable[..., CheckResult]:
    """``res(status, detail, remedy="")`` for one Docker check."""

    def res(status: Status, detail: str, remedy: str = "") -> CheckResult:
        return CheckResult(
            id=cid, title=title, status=status, detail=detail, remedy=remedy, engine="docker"
        )

    return res


def docker_driver_drift(facts: HostFacts, d: DockerFacts) -> CheckResult:
    res = _docker_result("DOCKER-DRIVER-DRIFT", "Docker: running drivers match the configured ones")

    if docker_rootless(d) is False:
        return res("skip", "rootful Docker: no RootlessKit drivers")
    rk = d.running
    if rk is None or not (rk.network_driver or rk.port_driver):
        return res(
            "skip",
            "the running daemon's RootlessKit could not be read (daemon stopped?): nothing to "
            f"compare; {kb.HOW_TO_READ_DOCKER_DRIVERS}",
        )
    run_net = rk.network_driver
    run_port = kb.docker_drivers(d, facts.tools).port_driver
    running = f"running net={run_net or '?'} port-driver={run_port or '?'}"
    cfg_net, cfg_port = d.configured_net, d.configured_port_driver
    if cfg_net is None and cfg_port is None:
        return res(
            "ok",
            f"no DOCKERD_ROOTLESS_ROOTLESSKIT_NET/PORT_DRIVER configured; {running} "
            "(launcher defaults)",
        )
    where = d.unit_files[-1] if d.unit_files else "the docker user unit"
    diffs = kb.driver_drift((cfg_net, cfg_port), (run_net, run_port))
    if not diffs:
        return res("ok", f"{running}, as configured in {where}")
    after = kb.docker_verdict(replace(d, running=None), facts.tools)
    return res(
        "warn",
        f"{'; '.join(diffs)} ({where}): the drop-in was written but the daemon not restarted. "
        f"After a restart: {after.reason}",
        f"`{kb.RESTART_DOCKER}`",
    )


def docker_userland_proxy(facts: HostFacts, d: DockerFacts) -> CheckResult:
    res = _docker_result("DOCKER-USERLAND-PROXY", 'Docker: daemon.json "userland-proxy"')

    setting = {None: "not set (default: on)", True: "true", False: "false"}[d.userland_proxy]
    src = f" in {d.daemon_json}" if d.daemon_json else ""
    if docker_rootless(d) is False:
        return res("skip", f"rootful Docker: userland-proxy ({setting}) only affects loopback")
    if docker_rootless(d) is None:
        return res("skip", "whether Docker runs rootless is unknown (see DOCKER-SOURCE-IP)")
    dr = kb.docker_drivers(d, facts.tools)
    if dr.port_driver != "builtin":
        return res(
            "skip",
            f"port driver {dr.port_driver or 'unknown'}: userland-proxy does not decide source IPs",
        )
    at3 = kb.version_at_least(dr.rootlesskit_version, kb.RK_SOURCE_IP_TRANSPARENT)
    if at3 is None:
        return res(
            "unknown",
            f"builtin port driver, RootlessKit version unknown; userland-proxy {setting}: "
            f"{kb.HOW_TO_READ_DOCKER_DRIVERS}",
        )
    rk = f"RootlessKit {dr.rootlesskit_version}"
    if not at3:
        return res(
            "skip",
            f"{rk} builtin: source IPs are lost whatever userland-proxy is ({setting}); "
            "it matters from RootlessKit 3.0 (Docker 29.5)",
        )
    if d.userland_proxy is False:
        return res("ok", f'{rk} builtin with "userland-proxy": false{src}: TCP source IPs kept')
    return res(
        "warn",
        f"{rk} builtin keeps TCP source IPs only without docker-proxy; userland-proxy is "
        f"{setting}{src}",
        f'`{kb.FIX_DOCKER}` (writes "userland-proxy": false to ~/.config/docker/daemon.json), '
        f"then `{kb.RESTART_DOCKER}`",
    )


# --------------------------------------------------------------------------- Podman


def pasta_ephemeral_port(facts: HostFacts, d: DockerFacts) -> CheckResult:
    """Published host ports inside net.ipv4.ip_local_port_range under pasta's automatic
    forwarding (RootlessKit's implicit driver): passt ≥ 2026_05_07 does not forward them."""

    res = _docker_result(
        "PASTA-EPHEMERAL-PORT", "Docker with pasta: published ports below the ephemeral range"
    )

    if docker_rootless(d) is False:
        return res("skip", "rootful Docker: no pasta between the client and the container")
    dr = kb.docker_drivers(d, facts.tools)
    if not kb.pasta_auto_forwarding(dr.network_driver, dr.port_driver):
        return res(
            "skip",
            f"network {dr.network_driver or '?'}, port driver {dr.port_driver or '?'}: each "
            "published port is forwarded by itself (no pasta automatic forwarding)",
        )
    _, _, span = kb.ephemeral_span(facts.ephemeral_ports)
    skips, passt = kb.docker_pasta_skips_ephemeral(d, facts.tools)
    inside = [(c, p) for c in d.containers for p in kb.in_ephemeral(c.ports, facts.ephemeral_ports)]
    dynamic = f"`-p 0:PORT` and `-P` pick host ports from {span} too"
    if not inside:
        later = (
            f"; passt {kb.PASTA_AUTO_SKIPS_EPHEMERAL} and later stop forwarding ports in it"
            if skips is not True
            else ""
        )
        return res(
            "ok",
            f"{passt}, RootlessKit implicit: no published host port in the ephemeral range "
            f"{span}{later}; {dynamic}",
        )
    listed = ", ".join(f"{c.name} {p.host_port}->{p.container_port}" for c, p in inside[:8])
    if len(inside) > 8:
        listed += f" (+{len(inside) - 8} more)"
    remedy = kb.ephemeral_remedy(facts.ephemeral_ports, max(p.host_port for _, p in inside))
    if skips is True:
        return res(
            "fail",
            f"{passt} with RootlessKit's implicit port driver forwards only ports outside the "
            f"ephemeral range {span}: {listed} refuse every outside connection "
            f"(passt commit 4e09ddf0344); {dynamic}",
            remedy,
        )
    why = "its version is unknown" if skips is None else "it still forwards them"
    return res(
        "warn",
        f"{listed} are in the ephemeral range {span}: {passt} ({why}) — from passt "
        f"{kb.PASTA_AUTO_SKIPS_EPHEMERAL} on they are not forwarded and refuse connections",
        remedy,
    )


def podman_source_ip(p: PodmanFacts) -> CheckResult:
    v = kb.podman_engine_verdict(p)
    return CheckResult(
        id="PODMAN-SOURCE-IP",
        title="Podman: `podman run -p` keeps client source IPs",
        status=status_of(v),
        detail=v.reason + _notes(p.notes),
        remedy=v.fix,
        engine="podman",
    )


def podman6_slirp4netns(p: PodmanFacts) -> CheckResult:
    def res(status: Status, detail: str, remedy: str = "") -> CheckResult:
        return CheckResult(
            id="PODMAN6-SLIRP4NETNS",
            title="Podman 6: nothing still uses slirp4netns",
            status=status,
            detail=detail,
            remedy=remedy,
            engine="podman",
        )

    users = [
        c.name for c in p.containers if kb.split_network_mode(c.network_mode)[0] == "slirp4netns"
    ]
    conf_cmd = kb.conf_str(p.conf, "network.default_rootless_network_cmd")
    conf_opts = kb.conf_list(p.conf, "engine.network_cmd_options")
    m = kb.major(p.version)
    if m is None:
        return res("unknown", "Podman version unknown: run `podman version`")
    netns = kb.podman_netns(p)  # containers.conf [containers] netns picks a plain run's network
    if m < 6:
        plain = kb.podman_default_network(p)[0] if netns is None else netns.mode
        if users or plain == "slirp4netns":
            what = ", ".join(users) if users else "the default network"
            return res(
                "ok",
                f"Podman {p.version} still runs slirp4netns ({what}); Podman 6 removes it: "
                f"after upgrading, run `{kb.PODMAN_MIGRATE}`",
            )
        return res("skip", f"Podman {p.version}: nothing uses slirp4netns")
    fails: list[str] = []
    if users:
        fails.append(f"containers on slirp4netns will not start: {', '.join(users)}")
    if conf_cmd == "slirp4netns":
        fails.append('containers.conf default_rootless_network_cmd = "slirp4netns"')
    if netns is not None and netns.mode == "slirp4netns":
        where = netns.origin or "containers.conf"
        fails.append(f'{where}: [containers] netns = "{netns.value}" (podman run fails)')
    if fails:
        return res(
            "fail",
            f"Podman {p.version} removed slirp4netns: " + "; ".join(fails),
            f"`{kb.PODMAN_MIGRATE}` (switches containers to pasta), then `{kb.FIX_PODMAN}`",
        )
    if conf_opts:
        return res(
            "warn",
            f"Podman {p.version}: [engine] network_cmd_options {conf_opts} are slirp4netns "
            "options and are ignored now",
            f"`{kb.FIX_PODMAN}` (drops them)",
        )
    return res("ok", f"Podman {p.version}: no container or setting uses slirp4netns")


# --------------------------------------------------------------------------- containers


def container_verdict(facts: HostFacts, c: ContainerFacts) -> Verdict:
    if c.engine == "docker" and facts.docker is not None:
        return kb.docker_container_verdict(facts.docker, c, facts.tools, facts.ephemeral_ports)
    if c.engine == "podman" and facts.podman is not None:
        return kb.podman_container_verdict(facts.podman, c, facts.tools)
    return Verdict(preserved=None, reason=f"no {c.engine} facts to judge {c.name} by")


def all_containers(facts: HostFacts) -> list[ContainerFacts]:
    out: list[ContainerFacts] = []
    if facts.docker is not None:
        out += facts.docker.containers
    if facts.podman is not None:
        out += facts.podman.containers
    return out


def container_source_ip(facts: HostFacts) -> list[CheckResult]:
    """One result per running container that publishes ports."""
    out: list[CheckResult] = []
    for c in all_containers(facts):
        if not c.ports:
            continue
        v = container_verdict(facts, c)
        status = status_of(v)
        if kb.split_network_mode(c.network_mode)[0] == "none":
            status = "skip"
        out.append(
            CheckResult(
                id="CONTAINER-SOURCE-IP",
                title=f"Container {c.name} ({c.engine}): client source IPs",
                status=status,
                detail=f"ports {ports_text(c.ports)}; network {c.network_mode or '?'}: {v.reason}",
                remedy=v.fix,
                engine=c.engine,
                container=c.name,
            )
        )
    if not out and (facts.docker is not None or facts.podman is not None):
        out.append(
            CheckResult(
                id="CONTAINER-SOURCE-IP",
                title="Containers: client source IPs",
                status="skip",
                detail="no running container publishes ports",
            )
        )
    return out


# --------------------------------------------------------------------------- standalone RootlessKit


def rootlesskit_label(rk: RootlessKitFacts) -> str:
    parts = [f"pid {rk.pid}" if rk.pid else "", f"running {rk.child}" if rk.child else ""]
    inner = ", ".join(p for p in parts if p)
    return f"RootlessKit {rk.version or ''}".rstrip() + (f" ({inner})" if inner else "")


def rootlesskit_source_ip(rk: RootlessKitFacts) -> CheckResult:
    v = kb.rootlesskit_verdict(rk)
    return CheckResult(
        id="ROOTLESSKIT-SOURCE-IP",
        title=f"{rootlesskit_label(rk)}: forwarded ports keep client source IPs",
        status=status_of(v),
        detail=v.reason + (f" (read from {rk.source})" if rk.source else ""),
        remedy=v.fix,
        engine="rootlesskit",
    )


def docker_unit_ignored(d: DockerFacts) -> CheckResult:
    """Settings before any [Section] header in the unit or a drop-in: systemd ignores them
    ("Assignment outside of section. Ignoring."), so a drop-in written without its [Service] line
    changes nothing (moby#52641)."""
    title = "Docker: the user unit and its drop-ins are read by systemd as written"
    if not d.unit_files:
        return CheckResult(
            id="DOCKER-UNIT-IGNORED", title=title, status="skip",
            detail="no docker.service user unit or drop-in found", engine="docker",
        )  # fmt: skip
    if not d.ignored_unit_lines:
        return CheckResult(
            id="DOCKER-UNIT-IGNORED", title=title, status="ok",
            detail=f"read: {', '.join(d.unit_files)}", engine="docker",
        )  # fmt: skip
    rootless = any("DOCKERD_ROOTLESS_" in line for line in d.ignored_unit_lines)
    files = sorted({line.split(": ", 1)[0] for line in d.ignored_unit_lines})
    return CheckResult(
        id="DOCKER-UNIT-IGNORED",
        title=title,
        status="fail" if rootless else "warn",
        detail="systemd ignores settings outside a section: " + "; ".join(d.ignored_unit_lines),
        remedy=f"add a `[Service]` line above them in {', '.join(files)} (or run "
        f"`{kb.FIX_DOCKER}`), then `{kb.RESTART_DOCKER}`",
        engine="docker",
    )


def checks(facts: HostFacts) -> list[CheckResult]:
    out = [run_as_check(facts), engines_check(facts)]
    d = facts.docker
    if d is not None:
        out += [
            docker_source_ip(facts, d),
            docker_driver_drift(facts, d),
            docker_unit_ignored(d),
            docker_userland_proxy(facts, d),
            pasta_ephemeral_port(facts, d),
        ]
    p = facts.podman
    if p is not None:
        out += [podman_source_ip(p), podman6_slirp4netns(p)]
    out += [rootlesskit_source_ip(rk) for rk in facts.rootlesskits]
    out += container_source_ip(facts)
    return out
