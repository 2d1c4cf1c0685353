"""Host prerequisites of rootless engines.

IDs: NEWUIDMAP, SUBUID, SUBGID, USERNS, DEV-NET-TUN, SLIRP4NETNS, PASTA, ROOTLESSKIT,
PRIVILEGED-PORTS, SYSTEMD-USER, LINGER, XDG-RUNTIME-DIR, FIREWALL.

These checks need a rootless engine (checks/registry.py declares it and applies the rule: when
no engine was found at all, failures are warnings; when every engine runs as root, they skip).
"""

from __future__ import annotations

from typing import Literal

from .. import knowledge as kb
from ..model import CheckResult, HostFacts, Status, Tool
from . import compose as compose_checks
from .engine import all_containers, docker_rootless

MIN_SUBIDS = 65536  # rootlesskit README / podman docs: at least 65536 subordinate IDs


def _res(cid: str, title: str, status: Status, detail: str, remedy: str = "") -> CheckResult:
    return CheckResult(id=cid, title=title, status=status, detail=detail, remedy=remedy)


def _tool(facts: HostFacts, name: str) -> Tool | None:
    return facts.tools.get(name)


def newuidmap(facts: HostFacts) -> CheckResult:
    title = "newuidmap/newgidmap (setuid helpers for user namespaces)"
    tools = [(n, _tool(facts, n)) for n in ("newuidmap", "newgidmap")]
    if all(t is None for _, t in tools):
        return _res("NEWUIDMAP", title, "unknown", "not looked up", "run `command -v newuidmap`")
    missing = [n for n, t in tools if t is not None and not t.path]
    if missing:
        return _res(
            "NEWUIDMAP",
            title,
            "fail",
            f"{', '.join(missing)} not installed: rootless engines cannot map subordinate IDs",
            "`sudo apt-get install uidmap` (Debian/Ubuntu) or `sudo dnf install shadow-utils`",
        )
    unprivileged = [n for n, t in tools if t is not None and t.setid == "neither"]
    if unprivileged:
        return _res(
            "NEWUIDMAP",
            title,
            "fail",
            f"{', '.join(unprivileged)} neither setuid root nor with file capabilities: "
            "the user namespace gets only one ID",
            "reinstall the package (`sudo apt-get install --reinstall uidmap`) or "
            "`sudo chmod u+s $(command -v newuidmap) $(command -v newgidmap)`",
        )
    shown = ", ".join(f"{t.path}{f' ({t.setid})' if t.setid else ''}" for _, t in tools if t)
    return _res("NEWUIDMAP", title, "ok", shown)


_SUBID_CHECK = {"subuid": "SUBUID", "subgid": "SUBGID"}


def _subids(facts: HostFacts, which: Literal["subuid", "subgid"]) -> CheckResult:
    cid = _SUBID_CHECK[which]
    ranges = facts.subuid if which == "subuid" else facts.subgid
    title = f"/etc/{which} range for {facts.user or 'this user'}"
    user = facts.user or "$USER"
    remedy = (
        f"`sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`, "
        "then `podman system migrate` for Podman"
    )
    if ranges is None:
        return _res(
            cid, title, "unknown", f"/etc/{which} not read", f"run `grep {user} /etc/{which}`"
        )
    total = sum(count for _, count in ranges)
    seen = ", ".join(f"{start}:{count}" for start, count in ranges) or "no entry"
    if total == 0:
        return _res(cid, title, "fail", f"no /etc/{which} entry for {user}", remedy)
    if total < MIN_SUBIDS:
        return _res(
            cid,
            title,
            "warn",
            f"{seen}: {total} IDs, fewer than {MIN_SUBIDS}; images with higher IDs fail to pull",
            remedy,
        )
    return _res(cid, title, "ok", seen)


def userns(facts: HostFacts) -> CheckResult:
    title = "Unprivileged user namespaces"
    maxns, clone = facts.max_user_namespaces, facts.userns_clone
    if maxns is None and clone is None:
        return _res(
            "USERNS",
            title,
            "unknown",
            "user.max_user_namespaces not read",
            "run `sysctl user.max_user_namespaces kernel.unprivileged_userns_clone`",
        )
    if maxns == 0:
        return _res(
            "USERNS",
            title,
            "fail",
            "user.max_user_namespaces = 0",
            "`echo user.max_user_namespaces=28633 | sudo tee /etc/sysctl.d/51-userns.conf && "
            "sudo sysctl --system`",
        )
    if clone == 0:
        return _res(
            "USERNS",
            title,
            "fail",
            "kernel.unprivileged_userns_clone = 0",
            "`echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/50-userns.conf && "
            "sudo sysctl --system`",
        )
    shown = [f"user.max_user_namespaces = {maxns}"] if maxns is not None else []
    if clone is not None:
        shown.append(f"kernel.unprivileged_userns_clone = {clone}")
    return _res("USERNS", title, "ok", ", ".join(shown))


def dev_net_tun(facts: HostFacts) -> CheckResult:
    title = "/dev/net/tun (slirp4netns and pasta create a tap device)"
    state = facts.dev_net_tun
    if state is None:
        return _res("DEV-NET-TUN", title, "unknown", "not checked", "run `ls -l /dev/net/tun`")
    if state == "missing":
        return _res(
            "DEV-NET-TUN", title, "fail", "/dev/net/tun does not exist", "`sudo modprobe tun`"
        )
    if state == "no-access":
        return _res(
            "DEV-NET-TUN",
            title,
            "fail",
            "/dev/net/tun exists but this user cannot open it",
            "`sudo chmod 0666 /dev/net/tun` (its usual mode)",
        )
    return _res("DEV-NET-TUN", title, "ok", "/dev/net/tun usable")


def _users_of(facts: HostFacts, net: str) -> list[str]:
    """What on this host uses (or would use) network helper ``net``."""
    users: list[str] = []
    d = facts.docker
    if (
        d is not None
        and docker_rootless(d) is not False
        and kb.docker_drivers(d, facts.tools).network_driver == net
    ):
        users.append("rootless Docker")
    p = facts.podman
    if p is not None and p.rootless is not False:
        m = kb.major(p.version)
        if net == "slirp4netns" and m is not None and m >= 6:
            pass  # Podman 6 cannot use it; PODMAN6-SLIRP4NETNS says so
        else:
            if kb.podman_default_network(p)[0] == net:
                users.append("Podman default network")
            users += [
                c.name for c in p.containers if kb.split_network_mode(c.network_mode)[0] == net
            ]
    if facts.compose is not None:
        users += [
            f"compose {s.name}"
            for s in facts.compose.services
            if kb.split_network_mode(s.network_mode)[0] == net
        ]
    for rk in facts.rootlesskits:
        if rk.network_driver == net:
            users.append(f"RootlessKit pid {rk.pid}")
    return users


def _network_helper(
    facts: HostFacts, cid: str, title: str, name: str, install: str, needed_by: str
) -> tuple[CheckResult | None, Tool | None, str]:
    """slirp4netns and pasta alike: (a result when the tool is not looked up or not installed,
    else None; the tool; "used by ..." for the detail). Missing is a failure only when in use."""
    t = _tool(facts, name)
    users = _users_of(facts, name)
    used = f"used by {', '.join(users)}" if users else "not in use"
    if t is None:
        return _res(cid, title, "unknown" if users else "skip", f"not looked up; {used}"), t, used
    if not t.path:
        if users:
            return _res(cid, title, "fail", f"not installed but {used}", install), t, used
        return _res(cid, title, "skip", f"not installed; only {needed_by} needs it"), t, used
    return None, t, used


def slirp4netns(facts: HostFacts) -> CheckResult:
    title = "slirp4netns"
    early, t, used = _network_helper(
        facts, "SLIRP4NETNS", title, "slirp4netns",
        "`sudo apt-get install slirp4netns` (or switch to pasta)", "the slirp4netns driver",
    )  # fmt: skip
    if early is not None:
        return early
    assert t is not None  # early is set whenever the tool was not looked up
    if kb.version_at_least(t.version, kb.SLIRP4NETNS_FOR_DOCKER) is False:
        return _res(
            "SLIRP4NETNS",
            title,
            "warn",
            f"slirp4netns {t.version} at {t.path}: dockerd-rootless.sh wants ≥ 0.4 ({used})",
            "install a newer slirp4netns",
        )
    return _res("SLIRP4NETNS", title, "ok", f"slirp4netns {t.version or '?'} at {t.path} ({used})")


def pasta(facts: HostFacts) -> CheckResult:
    title = "pasta (passt)"
    early, t, used = _network_helper(
        facts, "PASTA", title, "pasta",
        "`sudo apt-get install passt` / `sudo dnf install passt`", "the pasta network",
    )  # fmt: skip
    if early is not None:
        return early
    assert t is not None  # early is set whenever the tool was not looked up
    d = facts.docker
    if (
        d is not None
        and docker_rootless(d) is not False
        and kb.version_at_least(t.version, kb.PASTA_FOR_IMPLICIT) is False
    ):
        return _res(
            "PASTA",
            title,
            "warn",
            f"pasta {t.version} at {t.path} is older than {kb.PASTA_FOR_IMPLICIT}: too old for "
            f"Docker's --net=pasta with the implicit port driver ({used})",
            "install a newer passt (distribution backports or passt.top)",
        )
    return _res("PASTA", title, "ok", f"pasta {t.version or '?'} at {t.path} ({used})")


def rootlesskit(facts: HostFacts) -> CheckResult:
    title = "RootlessKit (Docker rootless)"
    d = facts.docker
    t = _tool(facts, "rootlesskit")
    if d is None or docker_rootless(d) is False:
        if facts.rootlesskits:
            vs = ", ".join(rk.version or "?" for rk in facts.rootlesskits)
            return _res("ROOTLESSKIT", title, "ok", f"standalone RootlessKit running: {vs}")
        return _res("ROOTLESSKIT", title, "skip", "no rootless Docker: RootlessKit not needed")
    running = d.running.version if d.running else None
    version = running or (t.version if t else None)
    origin = "running" if running else "installed binary"
    if version is None:
        if t is not None and not t.path and d.running is None:
            return _res(
                "ROOTLESSKIT",
                title,
                "fail",
                "rootlesskit not installed: rootless Docker cannot start",
                "`sudo apt-get install docker-ce-rootless-extras` (or `rootlesskit`)",
            )
        return _res(
            "ROOTLESSKIT",
            title,
            "unknown",
            "RootlessKit version unknown",
            kb.HOW_TO_READ_DOCKER_DRIVERS,
        )
    notes: list[str] = []
    status: Status = "ok"
    if kb.version_at_least(version, kb.RK_IMPLICIT) is False:
        notes.append("no --net=pasta/implicit before 2.0")
    if kb.version_at_least(version, kb.RK_SOURCE_IP_TRANSPARENT) is False:
        notes.append("builtin loses source IPs before 3.0 (Docker 29.5 bundles 3.0.0)")
    else:
        notes.append("builtin keeps TCP source IPs with userland-proxy false")
    pt = _tool(facts, "pasta")
    if (
        pt is not None
        and pt.path
        and kb.version_at_least(pt.version, kb.PASTA_FOR_IMPLICIT) is False
    ):
        notes.append(f"pasta {pt.version} too old for implicit (needs {kb.PASTA_FOR_IMPLICIT})")
    remedy = ""
    if kb.version_at_least(version, kb.RK_IMPLICIT) is False and (
        kb.docker_verdict(d, facts.tools).preserved is False
    ):
        status = "warn"
        remedy = f"`{kb.FIX_DOCKER}` (slirp4netns port driver), or upgrade Docker to ≥ 29.5"
    return _res(
        "ROOTLESSKIT",
        title,
        status,
        f"RootlessKit {version} ({origin}): {'; '.join(notes)}",
        remedy,
    )


def privileged_ports(facts: HostFacts) -> CheckResult:
    title = "Published ports below net.ipv4.ip_unprivileged_port_start"
    start = facts.unprivileged_port_start
    limit = kb.port_limit(start)
    low: list[tuple[str, int, str]] = []  # (who, port, way out: setcap|sysctl)
    d = facts.docker
    docker_builtin = (
        d is not None
        and docker_rootless(d) is not False
        and kb.docker_drivers(d, facts.tools).port_driver == "builtin"
    )
    for c in all_containers(facts):
        if c.engine == "docker" and d is not None and docker_rootless(d) is False:
            continue
        if c.engine == "podman" and facts.podman is not None and facts.podman.rootless is False:
            continue
        way = "setcap" if c.engine == "docker" and docker_builtin else "sysctl"
        low += [(c.name, p.host_port, way) for p in c.ports if 0 < p.host_port < limit]
    if facts.compose is not None:
        engine = compose_checks.compose_engine(facts)
        rootful = (engine.name == "docker" and docker_rootless(engine.docker) is False) or (
            engine.name == "podman" and engine.podman.rootless is False
        )
        if not rootful:
            for s in facts.compose.services:
                way = compose_checks.privileged_way_out(engine, s, facts)
                low += [
                    (f"compose {s.name}", p.host_port, way)
                    for p in s.ports
                    if 0 < p.host_port < limit
                ]
    if not low:
        shown = start if start is not None else "not read"
        return _res(
            "PRIVILEGED-PORTS",
            title,
            "ok",
            f"no rootless published port below {limit} (ip_unprivileged_port_start = {shown})",
        )
    seen = ", ".join(f"{who}:{port}" for who, port, _ in low)
    if start is None:
        return _res(
            "PRIVILEGED-PORTS",
            title,
            "unknown",
            f"ports {seen}; net.ipv4.ip_unprivileged_port_start not read",
            "run `sysctl net.ipv4.ip_unprivileged_port_start`",
        )
    lowest = min(port for _, port, _ in low)
    if all(way == "setcap" for _, _, way in low):
        return _res(
            "PRIVILEGED-PORTS",
            title,
            "warn",
            f"ports {seen} < {start}: Docker's builtin port driver binds them only with "
            "cap_net_bind_service on rootlesskit; switching to slirp4netns/implicit needs the "
            "sysctl instead",
            f"`{kb.SETCAP_ROOTLESSKIT}` then `{kb.RESTART_DOCKER}`; or `{kb.FIX_PRIVILEGED_PORTS}`",
        )
    return _res(
        "PRIVILEGED-PORTS",
        title,
        "fail",
        f"ports {seen} < net.ipv4.ip_unprivileged_port_start = {start}: slirp4netns, pasta and "
        "rootlessport cannot bind them (fails at the next start)",
        f"`{kb.FIX_PRIVILEGED_PORTS}` (net.ipv4.ip_unprivileged_port_start={lowest} in "
        "/etc/sysctl.d, then `sudo sysctl --system`)",
    )


def systemd_user(facts: HostFacts) -> CheckResult:
    title = "systemd user manager (systemctl --user)"
    if facts.systemd_user is None:
        return _res(
            "SYSTEMD-USER",
            title,
            "unknown",
            "not checked",
            "run `systemctl --user is-system-running`",
        )
    if not facts.systemd_user and facts.systemd_booted is False:
        # WSL without systemd, a container, OpenRC/runit: there is no unit to restart; rootless
        # Docker runs as `dockerd-rootless.sh` started by hand (docs.docker.com rootless tips:
        # "To run the daemon directly without systemd, run dockerd-rootless.sh").
        return _res(
            "SYSTEMD-USER",
            title,
            "warn",
            "this host does not run systemd (WSL, a container, OpenRC): no user manager, so no "
            "docker.service user unit or Quadlet unit runs; rootless Docker is started by "
            "dockerd-rootless.sh with the DOCKERD_ROOTLESS_ROOTLESSKIT_* environment",
            "`rootless-doctor fix docker --restart` restarts it that way with the drop-in's "
            "settings"
            if facts.docker is not None
            else "",
        )
    if not facts.systemd_user:
        return _res(
            "SYSTEMD-USER",
            title,
            "warn",
            "no user manager reachable: the docker user unit and Quadlet need it (su/sudo "
            "sessions have none)",
            "log in directly (ssh) or `sudo machinectl shell $USER@`",
        )
    return _res("SYSTEMD-USER", title, "ok", "user manager reachable")


def linger(facts: HostFacts) -> CheckResult:
    title = "Linger (user services run without a login)"
    user = facts.user or "$USER"
    if facts.systemd_user is False:
        return _res("LINGER", title, "skip", "no systemd user manager (see SYSTEMD-USER)")
    if facts.linger is None:
        return _res("LINGER", title, "unknown", "not checked", f"run `loginctl show-user {user}`")
    if not facts.linger:
        return _res(
            "LINGER",
            title,
            "warn",
            f"linger off for {user}: containers stop at logout and do not start at boot",
            f"`sudo loginctl enable-linger {user}`",
        )
    return _res("LINGER", title, "ok", f"linger on for {user}")


def xdg_runtime_dir(facts: HostFacts) -> CheckResult:
    title = "XDG_RUNTIME_DIR"
    if facts.xdg_runtime_dir:
        return _res("XDG-RUNTIME-DIR", title, "ok", facts.xdg_runtime_dir)
    if facts.offline:
        return _res("XDG-RUNTIME-DIR", title, "unknown", "not in the facts given")
    return _res(
        "XDG-RUNTIME-DIR",
        title,
        "fail",
        "not set: the rootless Docker socket and Podman runtime state live there",
        "`export XDG_RUNTIME_DIR=/run/user/$(id -u)` (or log in directly rather than su)",
    )


def firewall(facts: HostFacts) -> CheckResult:
    title = "Firewall backend for Fail2Ban in containers"
    users = [c.name for c in all_containers(facts) if compose_checks.fail2ban_enabled(c.env)]
    if facts.compose is not None:
        users += [
            f"compose {s.name}"
            for s in facts.compose.services
            if compose_checks.fail2ban_enabled(s.environment)
        ]
    fw = facts.firewall
    if not users:
        return _res(
            "FIREWALL", title, "skip", f"no container enables Fail2Ban (host firewall: {fw or '?'})"
        )
    who = ", ".join(users)
    if fw is None:
        return _res(
            "FIREWALL",
            title,
            "unknown",
            f"Fail2Ban in {who}; host firewall backend not read",
            "run `iptables --version` (nf_tables or legacy)",
        )
    if fw == "iptables-legacy":
        return _res(
            "FIREWALL",
            title,
            "warn",
            f"Fail2Ban in {who}; host uses iptables-legacy: docker-mailserver bans with nftables, "
            "which older kernels (NAS) lack",
            "use the iptables-legacy banaction "
            "(docker-mailserver docs config/security/fail2ban.md)",
        )
    return _res("FIREWALL", title, "ok", f"Fail2Ban in {who}; host firewall {fw} (nftables works)")


def checks(facts: HostFacts) -> list[CheckResult]:
    results = [
        newuidmap(facts),
        _subids(facts, "subuid"),
        _subids(facts, "subgid"),
        userns(facts),
        dev_net_tun(facts),
        slirp4netns(facts),
        pasta(facts),
        rootlesskit(facts),
        privileged_ports(facts),
        systemd_user(facts),
        linger(facts),
        xdg_runtime_dir(facts),
    ]
    return [*results, firewall(facts)]
