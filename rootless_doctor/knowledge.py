"""The version-aware decision table: facts → does the client source IP reach the container?

Pure functions of the records in model.py; no OS access, no printing. Every ``Verdict.reason`` is
one line naming the driver and the version that decide it.

Each decision is made here once; checks, fixes and parsers call it:

- does a setup keep client IPs: ``docker_verdict``, ``docker_container_verdict``,
  ``podman_engine_verdict``, ``podman_container_verdict``, ``rootlesskit_verdict``
- which Docker drivers run or would run: ``docker_drivers``, ``docker_default_drivers``; what to
  write for Docker: ``docker_fix_options`` / ``best_docker_fix``
- is pasta available: ``pasta_available``; the mode that keeps client IPs on this Podman:
  ``keep_ip_mode`` (``podman_keep_ip_mode``); a mode a fix leaves alone: ``podman_mode_keeps_ip``
- containers.conf ``[containers] netns`` as Podman applies it to a plain ``podman run -p``
  (options and network names dropped): ``podman_netns``, its verdict ``podman_netns_verdict``;
  whether `fix podman` sets it back to "private" and where: ``podman_netns_reset``,
  ``podman_netns_read_after``, ``podman_netns_remedy``
- the interface a network mode gives (tap0 / the host's / eth0): ``mode_interface``
- the lowest port a rootless engine binds: ``port_limit`` (``PRIVILEGED_PORT_LIMIT``)
- is a service docker-mailserver: ``is_mailserver``
- which forwarder an address a server saw points at: ``explain_seen``; host ports pasta's
  automatic forwarding leaves out: ``docker_pasta_skips_ephemeral``, ``in_ephemeral``
- rootless containerd (nerdctl): its drivers ``containerd_drivers`` (launcher defaults
  ``containerd_default_drivers``, ``FLAGS`` last-wins ``flag_drivers``), ``containerd_verdict``,
  variables its launcher ignores ``containerd_ignored_vars``, fix choices ``containerd_fix_options``
- rootful from `docker version`'s components: ``docker_rootless_from_components``, from all
  the evidence host/docker.py reads: ``docker_rootless_from_evidence``; defaults of a
  rootlesskit command line: ``rootlesskit_cli_drivers``; a Podman container's port handler from
  its mode: ``podman_inspect_port_handler``, ``podman_port_handler``
- RootlessKit 3 and the launcher (block at the end): the launcher exits before Docker 29.5
  (``docker_launcher_exits``); FLAGS ``--source-ip-transparent=false`` (``flags_transparent_off``)
  and what `fix docker` keeps of FLAGS (``launcher_flags_without``); an unreported backend
  (``rk3_backend_note``); can dockerd start with ``"userland-proxy": false`` here
  (``br_netfilter_problem``, ``BR_NETFILTER_LOAD``); UDP lost on RootlessKit 3.0.0
  (``rk300_udp_ports``)

Upstream sources (facts as of 2026-12; the details with their sources are in docs/facts.md):

- rootless-containers/rootlesskit ``docs/port.md``: port drivers, their throughput and whether the
  source IP is propagated; builtin ≥ v3.0.0 keeps TCP source IPs with ``--source-ip-transparent``
  (default on, needs iptables in the child netns); privileged ports (setcap vs sysctl).
- moby ``contrib/dockerd-rootless.sh``: ``DOCKERD_ROOTLESS_ROOTLESSKIT_NET`` /
  ``..._PORT_DRIVER`` and their defaults (net slirp4netns if ≥ 0.4 installed, else pasta (29.0+ /
  28.5.2), else vpnkit; port driver implicit for pasta (29.0+ / 28.5.2), else builtin).
- moby docs ``engine/security/rootless``; Docker 29.5.0 bundles RootlessKit v3.0.0.
- containers/podman release notes: 5.0 default rootless network pasta; 6.0 removed slirp4netns
  and CNI, added experimental ``[network] rootless_port_forwarder = "pasta"`` (IPv4, needs passt
  with pesto); ``podman system migrate`` moves slirp4netns containers to pasta.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from .model import (
    ContainerdFacts,
    ContainerFacts,
    DockerFacts,
    PodmanFacts,
    PublishedPort,
    RootlessKitFacts,
    Tool,
    Verdict,
)

# --------------------------------------------------------------------------- commands we point to

RESTART_DOCKER = "systemctl --user daemon-reload && systemctl --user restart docker"
FIX_DOCKER = "rootless-doctor fix docker"
FIX_COMPOSE = "rootless-doctor fix compose"
FIX_PODMAN = "rootless-doctor fix podman"
FIX_QUADLET = "rootless-doctor fix quadlet"
FIX_PRIVILEGED_PORTS = "rootless-doctor fix privileged-ports"
SETCAP_ROOTLESSKIT = "sudo setcap cap_net_bind_service=ep $(command -v rootlesskit)"
PODMAN_MIGRATE = "podman system migrate"
HOW_TO_READ_DOCKER_DRIVERS = (
    "run `docker version` (RootlessKit component) or "
    "`rootlessctl --socket $XDG_RUNTIME_DIR/dockerd-rootless/api.sock info --json`"
)

# Minimum versions (see module docstring for where each comes from).
RK_SOURCE_IP_TRANSPARENT = "3.0.0"  # rootlesskit docs/port.md: builtin keeps TCP source IPs
RK_IMPLICIT = "2.0.0"  # rootlesskit v2 added --net=pasta with --port-driver=implicit
PASTA_FOR_IMPLICIT = "2023_12_04"  # dockerd-rootless.sh: pasta new enough for RootlessKit
PASTA_FOR_PESTO = "2026_05_07"  # passt release that ships pesto
# rootlesskit v3.1.0 added --port-driver=pesto (#616, IPv4); docs/port.md: "Requires `pasta`
# network and passt `2026_05_07.1afd4ed` or later", 45.2 Gbps, experimental.
RK_PESTO = "3.1.0"
SLIRP4NETNS_FOR_DOCKER = "0.4.0"  # dockerd-rootless.sh picks slirp4netns only from 0.4
DOCKER_PASTA_DEFAULT = "28.5.2"  # launcher: pasta + implicit by default when no slirp4netns
PODMAN_COMPOSE_WRAPPER = "4.7.0"  # podman 4.7.0 release notes: `podman compose` (a wrapper)
# containers/podman#19032: containers.conf default_rootless_network_cmd is honoured from 4.6.0.
PODMAN_READS_DEFAULT_CMD = "4.6.0"

# --------------------------------------------------------------------------- versions

Version = tuple[int, ...]

_DATE = re.compile(r"(?<!\d)(\d{4})[_-](\d{1,2})[_-](\d{1,2})(?!\d)")
# Not glued to a word ("slirp4netns version 1.2.0" → 1.2.0, not 4); a leading "v" is fine.
_DOTTED = re.compile(r"(?<![A-Za-z0-9.])[vV]?(\d+(?:\.\d+)*)")


@functools.lru_cache(maxsize=512)  # a pure function asked several times per container
def parse_version(text: str | None) -> Version | None:
    """A comparable tuple from a version string, or None when there is none.

    Handles "29.5.0", "v3.0.0", "2.3.5", "5.0.0-dev" (→ 5.0.0: a dev build is treated as the
    release it leads to), "1.1.0+dev", "6.0.0-rc1", pasta's date versions "2023_12_04",
    "2023_12_04.b86afe3", "2023-03-09", and a leading program name ("pasta 2024_05_23").
    """
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    date = _DATE.search(s)
    if date:
        return tuple(int(g) for g in date.groups())
    dotted = _DOTTED.search(s)
    if not dotted:
        return None
    return tuple(int(p) for p in dotted.group(1).split("."))


def compare_versions(a: str | None, b: str | None) -> int | None:
    """-1, 0, 1 as ``a`` is older, equal, newer than ``b``; None when either is unknown."""
    va, vb = parse_version(a), parse_version(b)
    if va is None or vb is None:
        return None
    width = max(len(va), len(vb))
    pa = va + (0,) * (width - len(va))
    pb = vb + (0,) * (width - len(vb))
    return (pa > pb) - (pa < pb)


def version_at_least(version: str | None, minimum: str) -> bool | None:
    """``version >= minimum``; None when ``version`` is unknown or unreadable."""
    c = compare_versions(version, minimum)
    return None if c is None else c >= 0


def major(version: str | None) -> int | None:
    v = parse_version(version)
    return v[0] if v else None


def podman_has_compose_wrapper(version: str | None) -> bool:
    """``podman compose`` exists (else the separate ``podman-compose``); unknown: no."""
    return version_at_least(version, PODMAN_COMPOSE_WRAPPER) is True


def podman_reads_default_network_cmd(version: str | None) -> bool:
    """containers.conf ``default_rootless_network_cmd`` is honoured; unknown: no."""
    return version_at_least(version, PODMAN_READS_DEFAULT_CMD) is True


def _v(version: str | None) -> str:
    """A version for a reason line."""
    return version if version else "(version unknown)"


# --------------------------------------------------------------------------- Docker


@dataclass(frozen=True, kw_only=True)
class DockerDrivers:
    """The drivers Docker's RootlessKit runs with (or would, from its configuration)."""

    network_driver: str | None
    port_driver: str | None
    rootlesskit_version: str | None
    running: bool  # True: read from the running RootlessKit; False: from unit/drop-ins/defaults
    origin: str  # one phrase for reasons: "running", "configured, daemon not running", ...
    transparent_backend: str | None = None  # builtin ≥ 3 (RootlessKitFacts.transparent_backend)


def _implicit_if_pasta(net: str | None, port: str | None) -> str | None:
    # RootlessKit's API and `docker version` report no port driver for implicit
    # (docs/facts.md "Docker rootless").
    if port is None and net == "pasta":
        return "implicit"
    return port


# A rootless daemon lists a `rootlesskit` component in `docker version` from Engine 23 on
# (docs/facts.md; captures tests/data/docker-version: 20.10.24 rootless lists none, 25.0.1 does),
# so from 23 on its absence means rootful; before 23 it says nothing.
DOCKER_LISTS_ROOTLESSKIT = "23.0.0"


def docker_rootless_from_components(
    engine_version: str | None, has_rootlesskit_component: bool
) -> tuple[bool | None, str]:
    """(rootless?, why) from the components `docker version` lists."""
    if has_rootlesskit_component:
        return True, "docker version lists a rootlesskit component"
    if version_at_least(engine_version, DOCKER_LISTS_ROOTLESSKIT):
        return False, f"docker version (Engine {engine_version}) lists no rootlesskit component"
    return None, ""


def docker_rootless_from_evidence(
    *,
    info_rootless: bool | None,
    version_lists_rootlesskit: bool,
    rootlesskit: str | None,
    user: str,
    docker_host: str,
    runtime_dir: str,
    context: str | None,
    context_host: str | None,
    socket: str | None,
    target_note: str,
) -> tuple[bool | None, list[str]]:
    """Is the daemon the CLI asks rootless, and why: the most direct evidence decides, the
    weaker hints only fill in an unknown (docker info's security options, then docker version's
    rootlesskit component, then a rootlesskit (its PID) running dockerd, DOCKER_HOST in the
    runtime dir, the rootless socket there)."""
    reasons: list[str] = []
    rootless: bool | None = None
    if info_rootless is not None:
        rootless = info_rootless
        reasons.append(
            "docker info: " + ("rootless" if info_rootless else "no rootless") + " security option"
        )
    if version_lists_rootlesskit:
        rootless = True
        reasons.append("docker version lists a rootlesskit component")
    if rootlesskit:
        rootless = True if rootless is None else rootless
        reasons.append(f"rootlesskit (pid {rootlesskit}) runs dockerd for {user}")
    if docker_host.startswith(f"unix://{runtime_dir}/"):
        rootless = True if rootless is None else rootless
        reasons.append(f"DOCKER_HOST {docker_host} is in XDG_RUNTIME_DIR")
    if context:
        reasons.append(f"docker context {context}" + (f" ({context_host})" if context_host else ""))
    if socket:
        rootless = True if rootless is None else rootless
        reasons.append(f"socket {socket} exists")
    if target_note:
        reasons.append(target_note)
    return rootless, reasons


def rootlesskit_cli_drivers(
    net_flag: str | None, port_flag: str | None, *, cut: bool
) -> tuple[str | None, str | None]:
    """(net, port driver) of a rootlesskit command line. Flags left out take rootlesskit's
    defaults (cmd/rootlesskit/main.go: ``--net=host``, ``--port-driver=none``) unless the listing
    cut the line (then unknown). With ``--net=pasta`` no port driver means pasta forwards ports
    itself: "implicit" (RootlessKit ≥ 2; Docker 29 passes ``--port-driver=implicit``)."""
    net = net_flag or (None if cut else "host")
    port = port_flag or (None if cut else "none")
    if net == "pasta" and port == "none":
        port = "implicit"
    return net, port


DOCKER_GVISOR_DEFAULT = "29.5.0"  # moby 5249b1d165: the launcher's last resort is gvisor-tap-vsock
# moby contrib/dockerd-rootless.sh (@ docker-v29.7.2): `$DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS` is
# expanded unquoted (split on blanks, no quote processing) after `--net=$net ... --port-driver=$p`;
# rootlesskit parses flags with urfave/cli v2, where a repeated string flag keeps its last value.
FLAGS_ENV = "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"
_MAX_FLAG_WORDS = 512


def driver_drift(
    configured: tuple[str | None, str | None], running: tuple[str | None, str | None]
) -> list[str]:
    """(net, port driver) configured for a launcher vs the running RootlessKit's: what differs,
    one phrase each (none where a side is unknown). A drop-in written but the
    daemon not restarted shows here."""
    out = []
    for var, cfg, run in zip(("NET", "PORT_DRIVER"), configured, running, strict=True):
        if cfg is not None and run and cfg != run:
            out.append(f"{var}={cfg} configured, {run} running")
    return out


def launcher_flag(flags: str | None, name: str, *, boolean: bool = False) -> str | None:
    """The last value of ``--NAME=V`` / ``--NAME V`` / ``-NAME=V`` in the launcher's FLAGS (a
    ``boolean`` flag takes a value only after ``=``; alone it is "true")."""
    if not flags:
        return None
    words = flags.split()[:_MAX_FLAG_WORDS]
    value: str | None = None
    i = 0
    while i < len(words):
        key, eq, v = words[i].lstrip("-").partition("=")
        if words[i].startswith("-") and key == name:
            if eq:
                value = v
            elif boolean:
                value = "true"
            elif i + 1 < len(words) and not words[i + 1].startswith("-"):
                value = words[i + 1]
                i += 1
        i += 1
    return value


def docker_default_drivers(
    docker_version: str | None, tools: Mapping[str, Tool] | None = None
) -> tuple[str | None, str | None]:
    """(net, port driver) the launcher picks when neither env var is set (dockerd-rootless.sh):
    slirp4netns ≥ 0.4, else pasta (28.5.2 / 29.0+), else vpnkit, else gvisor-tap-vsock (29.5+,
    moby 5249b1d165; before, the launcher exits). Port driver: implicit for pasta, else builtin."""
    tools = tools or {}
    slirp = tools.get("slirp4netns")
    pasta = tools.get("pasta")
    vpnkit = tools.get("vpnkit")
    pasta_default = version_at_least(docker_version, DOCKER_PASTA_DEFAULT)
    slirp_ok = version_at_least(slirp.version, SLIRP4NETNS_FOR_DOCKER) if slirp else None
    if slirp is not None and slirp.path and slirp_ok is not False:
        return "slirp4netns", "builtin"
    if pasta is not None and pasta.path and pasta_default:
        return "pasta", "implicit"
    if slirp is None and pasta is None:
        # Nothing known about the helpers: slirp4netns is what nearly every install has.
        return "slirp4netns" if pasta_default is False else None, "builtin"
    if vpnkit is not None and vpnkit.path:
        return "vpnkit", "builtin"
    if version_at_least(docker_version, DOCKER_GVISOR_DEFAULT):
        return "gvisor-tap-vsock", "builtin"
    return "vpnkit", "builtin"


def running_drivers(rk: RootlessKitFacts | None) -> DockerDrivers | None:
    """The drivers a running RootlessKit shows (Docker's or containerd's), None if it shows none."""
    if rk is None or not (rk.port_driver or rk.network_driver):
        return None
    return DockerDrivers(
        network_driver=rk.network_driver,
        port_driver=_implicit_if_pasta(rk.network_driver, rk.port_driver),
        rootlesskit_version=rk.version,
        running=True,
        origin=f"running, from {rk.source}" if rk.source else "running",
        transparent_backend=rk.transparent_backend,
    )


def docker_drivers(d: DockerFacts, tools: Mapping[str, Tool] | None = None) -> DockerDrivers:
    """Running RootlessKit facts first; configured ones (unit + drop-ins, launcher defaults,
    then ``--net``/``--port-driver`` in DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS, which come last and
    win) when the daemon's RootlessKit could not be read."""
    rk = d.running
    if rk is not None and (rk.port_driver or rk.network_driver):
        return DockerDrivers(
            network_driver=rk.network_driver,
            port_driver=_implicit_if_pasta(rk.network_driver, rk.port_driver),
            rootlesskit_version=rk.version,
            running=True,
            origin=f"running, from {rk.source}" if rk.source else "running",
            transparent_backend=rk.transparent_backend
            # its command line not read: the launcher's FLAGS say what it was started with
            or ("none" if "command line" not in rk.source and flags_transparent_off(d) else None),
        )
    net, port = d.configured_net, d.configured_port_driver
    origin = "configured; running daemon not read"
    if net is None or port is None:
        dnet, _ = docker_default_drivers(d.version, tools)
        if net is None:
            net = dnet
        if port is None and net is not None:
            # The launcher's port default follows the net it ends up with: implicit for pasta
            # from 28.5.2 / 29.0, builtin otherwise (always builtin up to 28.5.1).
            if net != "pasta":
                port = "builtin"
            else:
                implicit = version_at_least(d.version, DOCKER_PASTA_DEFAULT)
                port = None if implicit is None else ("implicit" if implicit else "builtin")
        origin = "configured/launcher default; running daemon not read"
    flags = d.configured_env.get(FLAGS_ENV)
    fnet, fport = launcher_flag(flags, "net"), launcher_flag(flags, "port-driver")
    if fnet or fport:
        net, port = fnet or net, fport or port
        origin += f"; {FLAGS_ENV} overrides"
    backend = "none" if flags_transparent_off(d) else None
    return DockerDrivers(
        network_driver=net,
        port_driver=port,
        rootlesskit_version=rk.version if rk else None,
        running=False,
        origin=origin,
        transparent_backend=backend or (rk.transparent_backend if rk else None),
    )


# passt 4e09ddf0344 "conf: Allow user-specified auto-scanned port forwarding ranges" (first in
# release 2026_05_07.1afd4ed): a bare `-t auto` / `--tcp-ports=auto` now forwards only ports
# outside net.ipv4.ip_local_port_range (fwd_port_map_ephemeral; passt(1): "all non-ephemeral
# ports"). Up to 2026_01_20 `auto` scanned every port. RootlessKit's implicit port driver runs
# pasta with `--tcp-ports=auto` (rootlesskit issue 591 shows the new rule "1-32767 (auto-scan)").
# Podman passes explicit `-t HOST:CT` ports, so only the implicit driver is affected (measured on
# Debian sid: Podman 5.8.6 forwards 40123; Docker 28.5.2 + implicit refuses 55377).
PASTA_AUTO_SKIPS_EPHEMERAL = "2026_05_07"
LINUX_EPHEMERAL = (32768, 60999)  # the kernel's default ip_local_port_range


def pasta_auto_forwarding(net: str | None, port: str | None) -> bool:
    """Ports reach the namespace through pasta's automatic forwarding (`--tcp-ports=auto`)."""
    return net == "pasta" and port == "implicit"


def pasta_auto_skips_ephemeral(pasta_version: str | None) -> bool | None:
    """Does this passt's automatic forwarding leave ephemeral-range ports unforwarded?"""
    return version_at_least(pasta_version, PASTA_AUTO_SKIPS_EPHEMERAL)


# What a client gets from a host port pasta does not forward: nothing listens there.
SEEN_REFUSED = "nothing: connection refused"


def ephemeral_span(read: tuple[int, int] | None) -> tuple[int, int, str]:
    """The range read from net.ipv4.ip_local_port_range (else Linux's default) and its label."""
    first, last = read or LINUX_EPHEMERAL
    return first, last, f"{first}-{last}" + ("" if read else " (Linux default; not read)")


def in_ephemeral(
    ports: Iterable[PublishedPort], read: tuple[int, int] | None
) -> list[PublishedPort]:
    """Published ports whose host port is in the ephemeral range (0: the engine picks one there)."""
    first, last, _ = ephemeral_span(read)
    return [p for p in ports if p.host_port == 0 or first <= p.host_port <= last]


def docker_pasta_skips_ephemeral(
    d: DockerFacts, tools: Mapping[str, Tool] | None
) -> tuple[bool | None, str]:
    """Does this rootless daemon's pasta (RootlessKit implicit: `--tcp-ports=auto`) leave
    ephemeral-range host ports unforwarded? False for rootful Docker and every other driver pair;
    None when the passt version is unknown. With the passt label ("passt 2026_10_02.cba3570")."""
    pasta = (tools or {}).get("pasta")
    version = pasta.version if pasta else None
    label = f"passt {version}" if version else "passt (version unknown)"
    if d.rootless is False:
        return False, label
    dr = docker_drivers(d, tools)
    if not pasta_auto_forwarding(dr.network_driver, dr.port_driver):
        return False, label
    return pasta_auto_skips_ephemeral(version), label


def ephemeral_remedy(read: tuple[int, int] | None, highest: int) -> str:
    """Publish below the range, or (when there is room) move the range above ``highest``."""
    first, last, _ = ephemeral_span(read)
    remedy = f"publish on a host port below {first}"
    if highest > 0 and highest + 1 < last:
        conf = "/etc/sysctl.d/90-ip-local-port-range.conf"
        remedy += (
            "; or move the ephemeral range above it and restart the daemon (pasta reads the "
            f"range when it starts): `echo 'net.ipv4.ip_local_port_range = {highest + 1} {last}' "
            f"| sudo tee {conf}` `sudo sysctl --system` `{RESTART_DOCKER}`"
        )
    return remedy


def _port_label(p: PublishedPort) -> str:
    return f"{p.host_port or 'an ephemeral port'}->{p.container_port}"


def _pasta_refuses(
    v: Verdict,
    d: DockerFacts,
    c: ContainerFacts,
    tools: Mapping[str, Tool] | None,
    ephemeral: tuple[int, int] | None,
) -> Verdict:
    """A container's verdict with the host ports pasta does not forward (PASTA-EPHEMERAL-PORT):
    a client connecting there is refused, so nothing arrives, neither its address nor another."""
    bad = in_ephemeral(c.ports, ephemeral)
    if not bad:
        return v
    skips, passt = docker_pasta_skips_ephemeral(d, tools)
    if skips is not True:
        return v
    _, _, span = ephemeral_span(ephemeral)
    listed = ", ".join(_port_label(p) for p in bad)
    reason = (
        f"{passt} with RootlessKit's implicit port driver does not forward host ports in the "
        f"ephemeral range {span} (passt commit 4e09ddf0344): {listed} not forwarded, "
        "connections refused"
    )
    good = [p for p in c.ports if p not in bad]
    fix = ephemeral_remedy(ephemeral, max(p.host_port for p in bad))
    if not good:
        return Verdict(preserved=False, reason=reason, fix=fix, seen=SEEN_REFUSED)
    others = ", ".join(_port_label(p) for p in good)
    return Verdict(
        preserved=False,
        reason=f"{reason}; {others}: {v.reason}",
        fix=fix,
        seen=f"{SEEN_REFUSED} on {listed}; {v.seen or 'unknown'} on {others}",
    )


def _rk_label(version: str | None) -> str:
    return f"RootlessKit {version}" if version else "RootlessKit (version unknown)"


def docker_verdict(d: DockerFacts, tools: Mapping[str, Tool] | None = None) -> Verdict:
    """What a container started with defaults (``docker run -p``) gets from this daemon."""
    if d.rootless is False:
        # Rootful: port publishing is iptables DNAT; userland-proxy only handles loopback/hairpin.
        return Verdict(
            preserved=True,
            reason="rootful Docker: port publishing by iptables DNAT keeps source IPs",
            seen=SEEN_CLIENT,
        )
    if d.rootless is None and d.running is None and not d.configured_env:
        return Verdict(
            preserved=None,
            reason="cannot tell whether Docker runs rootless: run `docker info` "
            "(Security Options: rootless) with the daemon running",
        )
    exits = docker_launcher_exits(d, tools)
    if exits is not None:
        return exits
    dr = docker_drivers(d, tools)
    if not dr.running and d.reachable is None and d.cli is not None:
        # The docker CLI was asked and gave no answer (timed out, output cut off): a daemon may
        # run with any drivers, so the unit's (or the launcher's default) ones decide nothing.
        why = next((n for n in d.notes if n.startswith("`") and "docker" in n), "no answer")
        return Verdict(
            preserved=None,
            reason=f"the running daemon could not be read ({why}); configured: "
            f"{dr.network_driver or '?'} + {dr.port_driver or '?'} port driver. Run `docker "
            "version` when the daemon answers",
        )
    where = "" if dr.running else f" ({dr.origin})"
    return _port_driver_verdict(
        port=dr.port_driver,
        net=dr.network_driver,
        rk_version=dr.rootlesskit_version,
        docker=True,
        userland_proxy=d.userland_proxy,
        where=where,
        transparent_backend=dr.transparent_backend,
    )


# What a server behind each path sees as the client's address (Verdict.seen).
SEEN_CLIENT = "the client"
# Podman runs pasta with `--map-guest-addr 169.254.1.2` (podman PR 23791, 5.3+): a connection from
# this host's own address (the one pasta copies into the container) arrives from that address;
# measured on Debian sid (Podman 5.8.6, passt 2026-10-02). Remote clients keep their address.
PASTA_MAPPED_HOST = "169.254.1.2"
SEEN_PODMAN_PASTA = (
    f"the client ({PASTA_MAPPED_HOST} when it connects from this host's own address)"
)
SEEN_LOOPBACK = "127.0.0.1"  # RootlessKit builtin < 3 dials from the child's loopback
# Rootless Docker, builtin: docker-proxy re-dials from the bridge (userland-proxy on), or the
# builtin child's 127.0.0.1 is MASQUERADEd to it (userland-proxy off, RootlessKit < 3; moby
# iptabler golden "hairpin=true": POSTROUTING -o <bridge> --src-type LOCAL -j MASQUERADE).
# Measured on Debian trixie/sid (Docker 26/28) and upstream on 29.8.2 (getalfredo/alfredo).
SEEN_DOCKER_GATEWAY = "172.17.0.1"
SEEN_ROOTLESSPORT_SLIRP = "10.0.2.100"  # Podman rootlessport with slirp4netns
SEEN_GVISOR = "10.0.2.1"  # gvisor-tap-vsock port driver (rootlesskit issue 573)

# What a lost client address typically turns into, and which forwarder that points at
# (docs/facts.md "Why source IPs get lost"): for the probe's findings.
_SEEN_FROM = {
    SEEN_LOOPBACK: "RootlessKit's builtin port driver reconnects from inside the namespace",
    SEEN_ROOTLESSPORT_SLIRP: "Podman's rootlessport forwarder (slirp4netns, default port handler)",
    "10.0.2.2": "slirp4netns gateway: the client was on loopback",
    SEEN_GVISOR: "RootlessKit's gvisor-tap-vsock port driver (rootlesskit issue 573)",
    PASTA_MAPPED_HOST: "pasta's --map-guest-addr: a client on this host's own address; "
    "remote clients keep theirs",
}


def explain_seen(observed: str) -> str:
    """Which forwarder an address a server saw points at ("" when it is not a known local one)."""
    if observed in _SEEN_FROM:
        return _SEEN_FROM[observed]
    try:
        ip = ipaddress.ip_address(observed)
    except ValueError:
        return ""
    if ip in ipaddress.ip_network("172.16.0.0/12") and observed.endswith(".0.1"):
        return "the rootless Docker bridge gateway (docker-proxy reconnects from inside)"
    if ip in ipaddress.ip_network("10.89.0.0/16"):
        return "a Podman rootless bridge network (rootlessport)"
    return ""


# rootlesskit PR 596 / issue 592: RootlessKit 3.0.0 builtin drops UDP replies to non-loopback
# clients (Docker 29.5.0 to 29.5.2); 3.0.1 falls back to the non-transparent path for UDP.
RK_UDP_FIXED = "3.0.1"


def probe_kept(observed: str, source: str) -> bool:
    """Did a probe connecting from ``source`` keep its address? Podman's pasta shows a client on
    this host's own (shared) address as 169.254.1.2 (--map-guest-addr); that path keeps every
    other client's address, so it counts as kept."""
    return observed in (source, PASTA_MAPPED_HOST)


def _transparent_off(backend: str | None) -> bool:
    """/v1/info ``sourceIPTransparentBackend`` "none" (or empty): IP_TRANSPARENT is not in use
    (rootlesskit hack/integration-port-source-ip.sh treats none/null/empty as off)."""
    return backend is not None and backend.strip().lower() in ("", "none", "null")


def _udp_note(rk_version: str | None) -> str:
    at3 = version_at_least(rk_version, RK_SOURCE_IP_TRANSPARENT)
    if at3 and version_at_least(rk_version, RK_UDP_FIXED) is False:
        return (
            "; RootlessKit 3.0.0 also drops UDP replies to non-loopback clients (rootlesskit "
            "issue 592, fixed in 3.0.1 / Docker 29.5.3)"
        )
    return ""


def _port_driver_verdict(
    *,
    port: str | None,
    net: str | None,
    rk_version: str | None,
    docker: bool,
    userland_proxy: bool | None = None,
    where: str = "",
    transparent_backend: str | None = None,
) -> Verdict:
    """The RootlessKit row of the decision table (docs/port.md)."""
    rk = _rk_label(rk_version)
    fix_docker = f"`{FIX_DOCKER}`, then `{RESTART_DOCKER}`"
    if port == "builtin":
        at3 = version_at_least(rk_version, RK_SOURCE_IP_TRANSPARENT)
        off = _transparent_off(transparent_backend)
        udp = _udp_note(rk_version)
        if docker and userland_proxy is not False:
            # docker-proxy inside the namespace accepts (from 127.0.0.1 before RootlessKit 3, from
            # the client from 3 on) and dials the container again from the bridge gateway.
            proxy_fix = (
                f'`{FIX_DOCKER}` (daemon.json "userland-proxy": false; TCP only), '
                f"then `{RESTART_DOCKER}`"
            )
            return Verdict(
                preserved=False,
                reason=f"{rk} builtin port driver with userland-proxy on (daemon.json default): "
                f"docker-proxy connects to the container from the bridge gateway "
                f"{SEEN_DOCKER_GATEWAY} (source IP lost){where}{udp}",
                fix=proxy_fix if at3 and not off else fix_docker,
                seen=SEEN_DOCKER_GATEWAY,
            )
        if at3 is None:
            return Verdict(
                preserved=None,
                reason=f"builtin port driver: source IPs kept only from RootlessKit 3.0 (TCP), "
                f"and the RootlessKit version is unknown{where}; {HOW_TO_READ_DOCKER_DRIVERS}"
                if docker
                else "builtin port driver: source IPs kept only from RootlessKit 3.0 (TCP), "
                "and the version is unknown: run `rootlesskit --version`",
            )
        if at3 and off:
            seen = SEEN_DOCKER_GATEWAY if docker else SEEN_LOOPBACK
            return Verdict(
                preserved=False,
                reason=f"{rk} builtin port driver with source-IP transparency off "
                f"(sourceIPTransparentBackend {transparent_backend or 'none'!r}: no nft/iptables "
                f"in the RootlessKit namespace, or --source-ip-transparent=false): connections "
                f"arrive from {seen} (source IP lost){where}",
                fix="install nftables or iptables where RootlessKit runs and restart it"
                + (f" (`{RESTART_DOCKER}`)" if docker else ""),
                seen=seen,
            )
        if at3:
            proxy = ' and "userland-proxy": false' if docker else ""
            backend = f", backend {transparent_backend}" if transparent_backend else ""
            return Verdict(
                preserved=True,
                reason=f"{rk} builtin port driver{proxy}: TCP keeps source IPs "
                f"(--source-ip-transparent{backend}; needs nft or iptables in the netns); UDP "
                f"still loses them{where}{udp}"
                + rk3_backend_note(rk_version, transparent_backend, docker),
                seen=SEEN_CLIENT,
            )
        if docker:
            # userland-proxy off before RootlessKit 3: the child dials 127.0.0.1, dockerd DNATs
            # it and MASQUERADEs the local source to the bridge (Docker 20.10: not reachable).
            return Verdict(
                preserved=False,
                reason=f"{rk} builtin port driver: it connects from the namespace's 127.0.0.1 and "
                f"dockerd rewrites that to the bridge gateway {SEEN_DOCKER_GATEWAY} (source IP "
                f"lost; userland-proxy off needs RootlessKit ≥ 3){where}",
                fix=fix_docker,
                seen=SEEN_DOCKER_GATEWAY,
            )
        return Verdict(
            preserved=False,
            reason=f"{rk} builtin port driver: connections arrive from {SEEN_LOOPBACK} "
            f"(source IP lost){where}",
            fix="run RootlessKit ≥ 3.0 or `--port-driver=slirp4netns`",
            seen=SEEN_LOOPBACK,
        )
    if port == "slirp4netns":
        return Verdict(
            preserved=True,
            reason=f"{rk} slirp4netns port driver: source IPs kept (≈4x slower than builtin; "
            f"ports < 1024 need the sysctl){where}",
            seen=SEEN_CLIENT,
        )
    if port == "implicit":
        return Verdict(
            preserved=True,
            reason=f"{rk} implicit port driver (pasta forwards ports itself): source IPs "
            f"kept; from passt 2026_05_07 only for host ports below the ephemeral range{where}",
            seen=SEEN_CLIENT,
        )
    if port == "pesto":
        return Verdict(
            preserved=True,
            reason=f"{rk} pesto port driver (passt): source IPs kept (IPv4){where}",
            seen=SEEN_CLIENT,
        )
    if port == "gvisor-tap-vsock":
        return Verdict(
            preserved=False,
            reason=f"{rk} gvisor-tap-vsock port driver: connections arrive from {SEEN_GVISOR} "
            f"(source IP lost; rootlesskit issue 573){where}",
            fix=fix_docker if docker else "use `--net=pasta --port-driver=implicit`",
            seen=SEEN_GVISOR,
        )
    if port == "none":
        return Verdict(
            preserved=None,
            reason=f"{rk} port driver none: published ports are not forwarded at all{where}",
        )
    how = (
        HOW_TO_READ_DOCKER_DRIVERS
        if docker
        else "run `rootlessctl --socket <state-dir>/api.sock info --json`"
    )
    what = (
        f"port driver {port!r} is not one rootless-doctor knows"
        if port
        else ("port driver unknown")
    )
    net_part = f" (net {net})" if net else ""
    return Verdict(preserved=None, reason=f"{rk} {what}{net_part}{where}: {how}")


def docker_container_verdict(
    d: DockerFacts,
    c: ContainerFacts,
    tools: Mapping[str, Tool] | None = None,
    ephemeral: tuple[int, int] | None = None,
) -> Verdict:
    """What one Docker container gets: host network keeps, none has no ports, else the daemon's;
    a host port pasta does not forward (in the ``ephemeral`` range read, else Linux's) is
    refused."""
    base, _ = split_network_mode(c.network_mode)
    if base == "host":
        if d.rootless is False:
            return Verdict(
                preserved=True,
                reason="host network: no port forwarding, no rewrite",
                seen=SEEN_CLIENT,
            )
        return Verdict(
            preserved=True,
            reason="host network: no port forwarding, no rewrite (rootless Docker: this is "
            "RootlessKit's namespace; its ports are not published on the host)",
            seen=SEEN_CLIENT,
        )
    if base == "none":
        return Verdict(preserved=None, reason="network none: no ports can be published")
    if base == "container":
        other = _find_container(d.containers, c.network_mode)
        if other is not None and other is not c:
            v = docker_container_verdict(d, other, tools, ephemeral)
            return Verdict(
                preserved=v.preserved,
                reason=f"shares {other.name}'s network: {v.reason}",
                fix=v.fix,
                seen=v.seen,
            )
    v = docker_verdict(d, tools)
    if v.seen == SEEN_DOCKER_GATEWAY and base not in (None, "bridge", "default"):
        # A user-defined network has its own bridge: its gateway (172.18.0.1 for the first one;
        # getalfredo/alfredo docker-modes-test, Docker 29.8.2) is what the server sees.
        v = replace(v, seen=f"172.x.0.1 (the gateway of network {base})")
    return _pasta_refuses(v, d, c, tools, ephemeral)


def _find_container(
    containers: tuple[ContainerFacts, ...], mode: str | None
) -> ContainerFacts | None:
    ref = (mode or "").partition(":")[2]
    if not ref:
        return None
    for other in containers:
        if other.name == ref or (
            other.id and (other.id.startswith(ref) or ref.startswith(other.id))
        ):
            return other
    return None


@dataclass(frozen=True, kw_only=True)
class FixOption:
    """One way to make rootless Docker keep source IPs, for `rootless-doctor fix docker`."""

    key: Literal["pasta-implicit", "builtin-transparent", "pesto", "slirp4netns"]
    network_driver: str  # DOCKERD_ROOTLESS_ROOTLESSKIT_NET
    port_driver: str  # DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER
    userland_proxy: bool | None  # daemon.json "userland-proxy" to write; None: leave as is
    throughput: str  # measured here (throughput.py), else upstream's iperf3 figure, marked so
    protocols: str  # which traffic keeps its source IP: "tcp+udp", "tcp", "ipv4"
    cost: str  # one line: what it costs or needs
    privileged_ports: str  # how ports < 1024 work with it
    available: bool  # usable on this host now
    missing: str = ""  # why not, when not available
    current: bool = False  # what the daemon runs already


# rootlesskit docs/port.md: iperf3 from a loopback client to RootlessKit's own child (no Docker);
# through Docker a real client sees far less (throughput.py, bench/dataplane.py).
UPSTREAM_IMPLICIT = "≈38 Gbps (upstream: loopback client, no Docker)"


def docker_fix_options(d: DockerFacts, tools: Mapping[str, Tool]) -> list[FixOption]:
    """Driver choices that keep source IPs, fastest first (measured through Docker with MTU
    65520: pasta + implicit ≈ builtin > slirp4netns; throughput.py; upstream for RootlessKit 3).

    Every option is listed; ``available`` says whether this host can use it now and ``missing``
    says what it lacks. A fix planner takes the first available one.
    """
    from . import throughput  # the measured table: only `fix` quotes it, not `check`

    dr = docker_drivers(d, tools)
    rk_tool = tools.get("rootlesskit")
    rk_v = dr.rootlesskit_version or (rk_tool.version if rk_tool else None)
    pasta = tools.get("pasta")
    slirp = tools.get("slirp4netns")
    sysctl_ports = (
        f"ports < 1024 need net.ipv4.ip_unprivileged_port_start (`{FIX_PRIVILEGED_PORTS}`)"
    )
    opts: list[FixOption] = []

    def need(parts: list[str]) -> tuple[bool, str]:
        return (not parts, "; ".join(parts))

    # pasta + implicit: RootlessKit ≥ 2 and pasta ≥ 2023_12_04 (dockerd-rootless.sh).
    missing: list[str] = []
    if pasta is None or not pasta.path:
        missing.append("pasta (passt) not installed")
    elif version_at_least(pasta.version, PASTA_FOR_IMPLICIT) is not True:
        missing.append(f"pasta {_v(pasta.version)} older than {PASTA_FOR_IMPLICIT} (or unknown)")
    if version_at_least(rk_v, RK_IMPLICIT) is not True:
        missing.append(f"RootlessKit {_v(rk_v)} older than 2.0 (or unknown)")
    ok, why = need(missing)
    opts.append(
        FixOption(
            key="pasta-implicit",
            network_driver="pasta",
            port_driver="implicit",
            userland_proxy=None,
            throughput=throughput.quote_docker("pasta", "implicit") or UPSTREAM_IMPLICIT,
            protocols="tcp+udp",
            cost="through Docker's bridge at MTU 1500 it is slow (raise the MTU: measured, "
            "throughput.py); needs RootlessKit ≥ 2 and pasta ≥ 2023_12_04",
            privileged_ports=sysctl_ports,
            available=ok,
            missing=why,
            current=dr.network_driver == "pasta" and dr.port_driver == "implicit",
        )
    )

    # builtin with --source-ip-transparent: RootlessKit ≥ 3 + daemon.json userland-proxy false.
    missing = []
    if version_at_least(rk_v, RK_SOURCE_IP_TRANSPARENT) is not True:
        missing.append(f"RootlessKit {_v(rk_v)} older than 3.0 (Docker 29.5 bundles 3.0.0)")
    if dr.network_driver == "pasta":
        # rootlesskit cmd/rootlesskit/main.go: network "pasta" requires port driver "none" or
        # "implicit" (or "pesto" from v3.1), so builtin would keep the daemon from starting.
        missing.append("builtin cannot run with the pasta network (RootlessKit refuses it)")
    ok, why = need(missing)
    opts.append(
        FixOption(
            key="builtin-transparent",
            network_driver=dr.network_driver or "slirp4netns",
            port_driver="builtin",
            userland_proxy=False,
            throughput="≈30 Gbps (upstream, RootlessKit 3; not measured here)",
            protocols="tcp",
            cost='TCP only (UDP still loses source IPs); daemon.json "userland-proxy": false; '
            "needs iptables in the RootlessKit netns",
            privileged_ports=f"`{SETCAP_ROOTLESSKIT}` (builtin only), or the sysctl",
            available=ok,
            missing=why,
            current=dr.port_driver == "builtin" and d.userland_proxy is False and ok,
        )
    )

    # pesto: RootlessKit ≥ 3.1 with --net=pasta and passt ≥ 2026_05_07 (docs/port.md). Listed
    # after the stable drivers although upstream measured it fastest: it is experimental.
    missing = []
    if pasta is None or not pasta.path:
        missing.append("pasta (passt) not installed")
    elif version_at_least(pasta.version, PASTA_FOR_PESTO) is not True:
        missing.append(f"pasta {_v(pasta.version)} older than {PASTA_FOR_PESTO} (or unknown)")
    if version_at_least(rk_v, RK_PESTO) is not True:
        missing.append(f"RootlessKit {_v(rk_v)} older than 3.1")
    ok, why = need(missing)
    opts.append(
        FixOption(
            key="pesto",
            network_driver="pasta",  # rootlesskit: port driver pesto requires the pasta network
            port_driver="pesto",
            userland_proxy=None,
            throughput="≈45 Gbps (upstream; experimental, not measured here)",
            protocols="ipv4",
            cost="experimental, IPv4 only; needs RootlessKit ≥ 3.1 and passt ≥ 2026_05_07",
            privileged_ports=sysctl_ports,
            available=ok,
            missing=why,
            current=dr.port_driver == "pesto",
        )
    )

    # slirp4netns + slirp4netns: works everywhere slirp4netns ≥ 0.4 is installed.
    missing = []
    if slirp is None or not slirp.path:
        missing.append("slirp4netns not installed")
    elif version_at_least(slirp.version, SLIRP4NETNS_FOR_DOCKER) is False:
        missing.append(f"slirp4netns {slirp.version} older than 0.4")
    ok, why = need(missing)
    opts.append(
        FixOption(
            key="slirp4netns",
            network_driver="slirp4netns",
            port_driver="slirp4netns",
            userland_proxy=None,
            throughput=throughput.quote_docker("slirp4netns", "slirp4netns")
            or "≈8 Gbps (upstream)",
            protocols="tcp+udp",
            cost="about half of builtin with MTU 65520, a tenth without (measured, throughput.py)",
            privileged_ports=sysctl_ports,
            available=ok,
            missing=why,
            current=dr.network_driver == "slirp4netns" and dr.port_driver == "slirp4netns",
        )
    )
    return opts


def best_docker_fix(d: DockerFacts, tools: Mapping[str, Tool]) -> FixOption | None:
    """The fastest available option, or None when this host has none."""
    return next((o for o in docker_fix_options(d, tools) if o.available), None)


# --------------------------------------------------------------------------- Podman


def split_network_mode(mode: str | None) -> tuple[str | None, dict[str, str]]:
    """``"slirp4netns:port_handler=slirp4netns,mtu=65520"`` → ("slirp4netns", {...}).

    ``container:ID`` → ("container", {}); a bare user network name → (name, {}).
    """
    if mode is None or not mode.strip():
        return None, {}
    base, _, rest = mode.strip().partition(":")
    if base == "container":
        return "container", {}
    opts: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if key:
            opts[key] = value if sep else ""
    return base, opts


def conf_list(conf: Mapping[str, object], key: str) -> list[str]:
    value = conf.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def conf_str(conf: Mapping[str, object], key: str) -> str | None:
    value = conf.get(key)
    return value if isinstance(value, str) and value else None


def podman_conf_port_handler(p: PodmanFacts) -> str | None:
    """``port_handler`` from ``[engine] network_cmd_options`` (slirp4netns options; Podman
    applies them in order, so the last one wins)."""
    handler = None
    for opt in conf_list(p.conf, "engine.network_cmd_options"):
        key, _, value = opt.partition("=")
        if key.strip() == "port_handler":
            handler = value.strip() or None
    return handler


def podman_default_network(p: PodmanFacts) -> tuple[str | None, str]:
    """(network command a rootless ``podman run`` uses, where that was learned).

    ``podman info`` (5.1+) wins: it reports what Podman resolved from the whole containers.conf
    chain, while a pasted conf may be one file of several; the conf only when info lacks it."""
    if p.rootless_network_cmd:
        return p.rootless_network_cmd, "podman info rootlessNetworkCmd"
    conf = conf_str(p.conf, "network.default_rootless_network_cmd")
    if conf:
        return conf, "containers.conf default_rootless_network_cmd"
    m = major(p.version)
    if m is None:
        return None, "Podman version unknown"
    # Podman 5.0 made pasta the rootless default (release notes); 4.x used slirp4netns.
    return ("pasta" if m >= 5 else "slirp4netns"), f"Podman {p.version} default"


# containers.conf ``[containers] netns`` is the network of a ``podman run`` without --network
# (docs/facts.md "[containers] netns"): containers/podman pkg/specgen/namespaces.go
# ParseNetworkFlag reads it (v4.3.1 .. v5.8.2); only "", "private" and "default" leave the choice
# to default_rootless_network_cmd (pkg/specgen/generate/container_create.go). Podman keeps only
# the mode of the value: pkg/specgen/generate/namespaces.go GetDefaultNamespaceMode("net") returns
# the namespace of ParseNetworkFlag(nil) and drops the options and network names it parsed. So
# "slirp4netns:port_handler=slirp4netns" runs slirp4netns with [engine] network_cmd_options, and a
# network name (or "pasta" before Podman 4.4, which has no pasta mode) runs bridge mode on
# [network] default_network; measured on Podman 4.3.1 (tests/test_podman_netns_realstack.py).
NETNS_DEFAULTS = ("", "private", "default")
NETNS_RESET = "private"  # what `fix podman` writes: the rootless network command decides again
_NETNS_ELSEWHERE = ("ns", "container", "pod")  # joins another namespace: that one decides
DEFAULT_BRIDGE_NETWORK = "podman"  # containers.conf(5) [network] default_network


@dataclass(frozen=True)
class PodmanNetns:
    """containers.conf ``[containers] netns`` as Podman applies it to a plain ``podman run``."""

    value: str  # as written
    origin: str | None  # the file that set it (the last one in load order); None: not known
    mode: str  # what Podman runs: slirp4netns, pasta, bridge, host, none, ns:PATH, container:ID
    network: str | None  # bridge: the network joined ([network] default_network)
    dropped: str  # what of the value Podman ignores ("" when nothing)


def podman_netns(p: PodmanFacts) -> PodmanNetns | None:
    """``[containers] netns`` when it picks the network of a plain ``podman run -p``; None when
    it is unset or the default (the rootless network command decides)."""
    value = conf_str(p.conf, "containers.netns")
    if value is None or value.strip() in NETNS_DEFAULTS:
        return None
    value = value.strip()
    base, opts = split_network_mode(value)
    dropped = ""
    if base == "slirp4netns" or (
        base == "pasta" and version_at_least(p.version, PODMAN_PASTA) is not False
    ):
        mode = str(base)
        if opts:
            dropped = f'its options "{value.partition(":")[2]}"'
    elif base in ("host", "none"):
        mode = str(base)
    elif base in _NETNS_ELSEWHERE:
        mode = value
    else:  # bridge[:opts] or a network name
        mode = "bridge"
        if base != "bridge":
            dropped = f'the network name "{base}"'
    network = None
    if mode == "bridge":
        network = conf_str(p.conf, "network.default_network") or DEFAULT_BRIDGE_NETWORK
    origin = p.conf_origin.get("containers.netns")
    return PodmanNetns(value=value, origin=origin, mode=mode, network=network, dropped=dropped)


def podman_netns_container(p: PodmanFacts) -> ContainerFacts | None:
    """A plain ``podman run -p`` as a container, when containers.conf's ``netns`` picks its
    network (:func:`podman_netns`); None when the rootless network command does."""
    n = podman_netns(p)
    if n is None:
        return None
    return ContainerFacts(
        engine="podman",
        name="podman run -p",
        network_mode=n.mode,
        networks=(n.network,) if n.network else (),
    )


def _system_conf(name: str) -> bool:
    return "/usr/share/containers/" in name or "/etc/containers/" in name


def podman_netns_read_after(n: PodmanNetns, user_conf: str | None = None) -> bool:
    """The file that set ``netns`` is read after the user's containers.conf (a file in the
    user's ``containers.conf.d`` or CONTAINERS_CONF_OVERRIDE; docs/facts.md "containers.conf load
    order"), so a value written in the user's containers.conf does not override it.
    ``user_conf``: that file's path (`fix podman` knows it); without it, the user's file is
    the one named ``containers/containers.conf`` outside /etc and /usr/share: on a live host
    every other file of the chain outside those is read after it (containers.conf.d, the
    override) or replaces the chain (CONTAINERS_CONF). A ``--from`` capture's name is what the
    user saved it as: changing the value where it is set is right there too."""
    if n.origin is None or _system_conf(n.origin):
        return False
    if user_conf is not None:
        return n.origin != user_conf
    where = PurePosixPath(n.origin)
    return where.parent.name == "containers.conf.d" or not (
        where.name == "containers.conf" and where.parent.name == "containers"
    )


def podman_netns_reset(p: PodmanFacts) -> PodmanNetns | None:
    """``netns`` to set back to "private": it makes a plain ``podman run -p`` lose client IPs
    (bridge, a network name, slirp4netns with the rootlesskit handler, slirp4netns on Podman 6);
    one decision for the check's remedy and `fix podman`'s plan."""
    n, c = podman_netns(p), podman_netns_container(p)
    if n is None or c is None or p.rootless is False:
        return None
    return n if _podman_netns_verdict(p, n, c).preserved is False else None


def podman_netns_remedy(n: PodmanNetns, user_conf: str | None = None) -> str:
    """What to do about a ``netns`` that loses client IPs."""
    want = f'[containers] netns = "{NETNS_RESET}"'
    if podman_netns_read_after(n, user_conf):
        return (
            f"set {want} in {n.origin} (or remove it there: a value in ~/.config/containers/"
            f"containers.conf does not override that file), then `{FIX_PODMAN}`"
        )
    return f"`{FIX_PODMAN}` (sets {want}: the rootless network command decides again)"


def podman_netns_verdict(p: PodmanFacts) -> Verdict | None:
    """What a ``podman run -p`` without --network gets when containers.conf's ``netns`` picks
    its network (the engine verdict, Quadlet units without Network=); None when it does not."""
    n, c = podman_netns(p), podman_netns_container(p)
    if n is None or c is None:
        return None
    return _podman_netns_verdict(p, n, c)


def _podman_netns_verdict(p: PodmanFacts, n: PodmanNetns, c: ContainerFacts) -> Verdict:
    """The engine verdict when containers.conf's ``netns`` picks the network: that of the
    container :func:`podman_netns_container` stands for, naming the file and key."""
    said = f'{n.origin or "containers.conf"}: [containers] netns = "{n.value}"'
    if n.dropped:
        said += f" (Podman drops {n.dropped} and runs {n.mode}"
        said += f' on the "{n.network}" network)' if n.network else ")"
    elif n.network:
        said += f' (the "{n.network}" network, [network] default_network)'
    if n.mode.partition(":")[0] in _NETNS_ELSEWHERE:
        return Verdict(
            preserved=None,
            reason=f"{said}: `podman run -p` joins another namespace; check its containers",
        )
    v = podman_container_verdict(p, c, fix=False)
    fix = podman_netns_remedy(n) if v.preserved is False else ""
    return Verdict(preserved=v.preserved, reason=f"{said}: {v.reason}", fix=fix, seen=v.seen)


def podman_port_forwarder(p: PodmanFacts) -> str:
    """What forwards ports of rootless bridge networks: rootlessport, or pasta on Podman 6."""
    value = p.rootless_port_forwarder or conf_str(p.conf, "network.rootless_port_forwarder")
    return value or "rootlessport"


def _bridge_caveat(p: PodmanFacts) -> str:
    if (major(p.version) or 0) >= 6 and podman_port_forwarder(p) == "pasta":
        return (
            "; bridge/compose networks use pasta too (rootless_port_forwarder, experimental, IPv4)"
        )
    return "; bridge/compose networks still lose it (rootlessport)"


def podman_engine_verdict(p: PodmanFacts) -> Verdict:
    """What ``podman run -p`` with defaults gets on this host."""
    if p.rootless is False:
        return Verdict(
            preserved=True,
            reason=f"rootful Podman {_v(p.version)}: netavark DNAT keeps source IPs",
            seen=SEEN_CLIENT,
        )
    by_netns = podman_netns_verdict(p)
    if by_netns is not None:
        return by_netns
    net, learned = podman_default_network(p)
    pv = f"Podman {_v(p.version)}"
    m = major(p.version)
    if net is None:
        return Verdict(
            preserved=None,
            reason="cannot tell the default rootless network: run `podman info --format json`",
        )
    if net == "slirp4netns":
        if m is not None and m >= 6:
            return Verdict(
                preserved=False,
                reason=f"{pv} removed slirp4netns but {learned} still names it: containers "
                "will not start",
                fix=f"`{PODMAN_MIGRATE}`, then `{FIX_PODMAN}` (move the config to pasta)",
            )
        handler = podman_conf_port_handler(p) or "rootlesskit"
        if handler == "slirp4netns":
            return Verdict(
                preserved=True,
                reason=f"{pv} slirp4netns with port_handler=slirp4netns (containers.conf): "
                f"source IPs kept{_bridge_caveat(p)}",
                seen=SEEN_CLIENT,
            )
        return Verdict(
            preserved=False,
            reason=f"{pv} slirp4netns with the default rootlesskit port handler: connections "
            f"arrive from {SEEN_ROOTLESSPORT_SLIRP} (source IP lost)",
            fix=f"`{FIX_PODMAN}` (port_handler=slirp4netns, or pasta where installed)",
            seen=SEEN_ROOTLESSPORT_SLIRP,
        )
    if net == "pasta":
        return Verdict(
            preserved=True,
            reason=f"{pv} pasta ({learned}): source IPs kept{_bridge_caveat(p)}",
            seen=SEEN_PODMAN_PASTA,
        )
    return Verdict(
        preserved=None,
        reason=f"{pv} default rootless network {net!r} ({learned}) is not one rootless-doctor "
        "knows: run `podman info --format json`",
    )


def podman_container_handler(p: PodmanFacts, c: ContainerFacts) -> str | None:
    """The slirp4netns port handler of a container: its own option when it has one, else
    containers.conf ``[engine] network_cmd_options`` (applied when a plain ``slirp4netns``
    container starts, over the parser's default guess), else what was read about it."""
    _, opts = split_network_mode(c.network_mode)
    if "port_handler" in opts:
        return opts["port_handler"]
    for arg in c.create_command:
        if "port_handler=" in arg:
            return arg.split("port_handler=", 1)[1].split(",", 1)[0]
    conf = podman_conf_port_handler(p) if c.network_mode == "slirp4netns" else None
    if conf:
        return conf
    if c.port_handler:
        return "rootlesskit" if c.port_handler == "rootlessport" else c.port_handler
    return None


def podman_inspect_port_handler(mode: str | None, *, rootful: bool | None) -> str | None:
    """The port handler of a container from its inspected network mode: pasta forwards itself;
    slirp4netns uses its ``port_handler`` option, default rootlesskit (the rootlessport process,
    containers.conf(5) ``network_cmd_options``); rootless bridge and named networks forward
    through rootlessport; rootful ones (storage under /var/lib/containers) through netavark DNAT."""
    base, opts = split_network_mode(mode)
    if base == "pasta":
        return "pasta"
    if base == "slirp4netns":
        return opts.get("port_handler") or "rootlesskit"
    if base and base not in ("host", "none", "container", "ns", "private"):
        return None if rootful else "rootlessport"
    return None


def podman_port_handler(p: PodmanFacts, c: ContainerFacts) -> str | None:
    """What forwards one container's published ports: pasta, the slirp4netns handler
    (:func:`podman_container_handler`), or the bridge-network forwarder (rootlessport, or pasta
    with Podman 6's ``rootless_port_forwarder``); None for host/none/container, and for rootful
    bridge networks (netavark DNAT, no rootless port handler). The one derivation for the live
    and the ``--from`` route: facts hold what was read."""
    base, _ = split_network_mode(c.network_mode)
    if base == "slirp4netns":
        return podman_container_handler(p, c) or "rootlesskit"
    if c.port_handler and c.port_handler != "rootlessport":
        return c.port_handler
    if c.port_handler is None:
        if base == "pasta":
            return "pasta"
        if base in (None, "host", "none", "container"):
            return None
    if p.rootless is False:
        return None
    m = major(p.version)
    if c.port_handler is None or (m is not None and m >= 6):
        fwd = podman_port_forwarder(p)
    else:  # rootless_port_forwarder is read from Podman 6 on; earlier only info could say
        fwd = p.rootless_port_forwarder or "rootlessport"
    return "pasta" if fwd == "pasta" else c.port_handler or fwd


def podman_container_verdict(
    p: PodmanFacts, c: ContainerFacts, tools: Mapping[str, Tool] | None = None, *, fix: bool = True
) -> Verdict:
    """What one Podman container (or compose service / Quadlet unit) gets; ``tools`` tells
    whether pasta is installed (:func:`pasta_available`) for the remedy. ``fix=False``: without
    the remedy (the engine report shows none; writing each container's rerun command twice was
    a tenth of check's time on a host with hundreds of containers)."""
    base, _ = split_network_mode(c.network_mode)
    m = major(p.version)
    pv = f"Podman {_v(p.version)}"
    if base == "host":
        return Verdict(
            preserved=True, reason="host network: no port forwarding, no rewrite", seen=SEEN_CLIENT
        )
    if base == "none":
        return Verdict(preserved=None, reason="network none: no ports can be published")
    if base == "container":
        other = _find_container(p.containers, c.network_mode)
        if other is not None and other is not c:
            v = podman_container_verdict(p, other, tools, fix=fix)
            return Verdict(
                preserved=v.preserved,
                reason=f"shares {other.name}'s network: {v.reason}",
                fix=v.fix,
                seen=v.seen,
            )
        return Verdict(
            preserved=None,
            reason=f"shares the network of {c.network_mode!r}, which was not read: "
            "run `podman inspect` on it",
        )
    if p.rootless is False:
        return Verdict(
            preserved=True, reason=f"rootful {pv}: netavark DNAT keeps source IPs", seen=SEEN_CLIENT
        )
    if base is None and c.port_handler is None:
        return Verdict(
            preserved=None,
            reason=f"{c.name}: network mode not read: run `podman inspect {c.name or '<name>'}`",
        )
    if base == "pasta" or (base is None and c.port_handler == "pasta"):
        return Verdict(
            preserved=True, reason=f"{pv} pasta: source IPs kept", seen=SEEN_PODMAN_PASTA
        )
    if base == "slirp4netns":
        if m is not None and m >= 6:
            return Verdict(
                preserved=False,
                reason=f"{pv} removed slirp4netns: this container will not start",
                fix=f"`{PODMAN_MIGRATE}` (switches it to pasta), then `{FIX_PODMAN}`",
            )
        handler = podman_container_handler(p, c) or "rootlesskit"
        if handler == "slirp4netns":
            return Verdict(
                preserved=True,
                reason=f"{pv} slirp4netns with port_handler=slirp4netns: source IPs kept",
                seen=SEEN_CLIENT,
            )
        return Verdict(
            preserved=False,
            reason=f"{pv} slirp4netns with the {handler} port handler: connections arrive "
            f"from {SEEN_ROOTLESSPORT_SLIRP} (source IP lost)",
            fix=_recreate(_keep_ip_fix(p, tools, c)) if fix else "",
            seen=SEEN_ROOTLESSPORT_SLIRP,
        )
    # bridge, a user-defined network, or the compose project network: rootlessport forwards.
    net = base or "bridge"
    forwarder = podman_port_forwarder(p)
    if m is not None and m >= 6 and forwarder == "pasta":
        return Verdict(
            preserved=True,
            reason=f'{pv} {net} network with rootless_port_forwarder = "pasta": source IPs '
            "kept (experimental, IPv4 only)",
            seen=SEEN_CLIENT,
        )
    remedy = _keep_ip_fix(p, tools, c) if fix else ""
    if fix and m is not None and m >= 6:
        remedy += f'; or `{FIX_PODMAN}` (rootless_port_forwarder = "pasta", experimental, IPv4)'
    seen = rootlessport_seen(net, c.networks)
    return Verdict(
        preserved=False,
        reason=f"{pv} rootless {net} network: rootlessport forwards ports and the server sees "
        f"{seen} (source IP lost)",
        fix=remedy,
        seen=seen,
    )


def rootlessport_seen(network: str, joined: Iterable[str] = ()) -> str:
    """What a server behind Podman's rootlessport sees: an address of the rootless network's
    own subnet (netavark defaults: 10.88.0.0/16 for "podman", 10.89.N.0/24 for user networks;
    measured: 10.89.0.x / 10.89.1.x on Debian 12, trixie and sid). `podman inspect` says
    NetworkMode "bridge" for a user-defined network too: the networks joined tell."""
    names = {network, *joined} - {"bridge", "podman", ""}
    return "10.89.x.y" if names else "10.88.x.y"


def _recreate(fix: str) -> str:
    return fix if fix.startswith("`podman rm -f") else f"{fix}, then recreate the container"


PODMAN_PASTA = "4.4.0"  # podman 4.4.0 release notes: `--network pasta`
SLIRP_KEEP_IP_MODE = "slirp4netns:port_handler=slirp4netns"


def pasta_available(podman: PodmanFacts | None, tools: Mapping[str, Tool] | None) -> bool:
    """pasta (passt) is installed: on PATH, or reported by ``podman info`` (host.pasta).

    The one answer for checks and fixes: Podman 4.x does not report pasta in ``podman info``,
    so a host with pasta on PATH has it even when ``pasta_version`` is empty.
    """
    t = (tools or {}).get("pasta")
    return bool(t and t.path) or bool(podman and podman.pasta_version)


def podman_keep_ip_mode(version: str | None, pasta_installed: bool) -> str:
    """The network mode that keeps client source IPs on this Podman: pasta where Podman has it
    (4.4+ with passt installed; the default from 5.0, the only one from 6.0), else slirp4netns
    with its own port handler."""
    m = major(version)
    if m is not None and m >= 5:
        return "pasta"
    if pasta_installed and version_at_least(version, PODMAN_PASTA):
        return "pasta"
    return SLIRP_KEEP_IP_MODE


def keep_ip_mode(podman: PodmanFacts | None, tools: Mapping[str, Tool] | None) -> str:
    """:func:`podman_keep_ip_mode` for this host: what the check's remedy names and the fix
    writes (one decision, so the two cannot disagree)."""
    return podman_keep_ip_mode(podman.version if podman else None, pasta_available(podman, tools))


def _keep_ip_fix(
    p: PodmanFacts, tools: Mapping[str, Tool] | None, c: ContainerFacts | None = None
) -> str:
    """The remedy naming the mode `fix compose` / `fix quadlet` write on this host; for a
    container made by a plain `podman run`, the exact commands that recreate it that way."""
    mode = keep_ip_mode(p, tools)
    iface = mode_interface(mode)
    with_iface = f" (+ NETWORK_INTERFACE={iface})" if iface else ""
    rerun = podman_rerun(c, mode) if c is not None else None
    if c is not None and rerun is not None:
        extra = with_iface if "NETWORK_INTERFACE" in c.env else ""
        return f"`podman rm -f {shlex.quote(c.name)}`, then `{rerun}`: network_mode {mode}{extra}"
    managed = podman_managed_fix(c) if c is not None else None
    if managed is not None:
        return f"`{managed}`: network_mode {mode}{with_iface}"
    tools_ = f"`{FIX_COMPOSE}`"
    if quadlet_available(p.version) is not False:  # Quadlet: Podman 4.4+
        tools_ += f" / `{FIX_QUADLET}`"
    return f"{tools_}: network_mode {mode}{with_iface}"


# A container that podman-compose or Quadlet made carries their label in its create command
# (podman-compose: `--label io.podman.compose.project=...`; Quadlet: PODMAN_SYSTEMD_UNIT):
# its file is what to fix, not the container.
_MANAGED = ("io.podman.compose.", "com.docker.compose.", "PODMAN_SYSTEMD_UNIT")


def _labels(argv: Sequence[str]) -> dict[str, str]:
    """``--label K=V`` / ``-l K=V`` / ``--label=K=V`` of a create command."""
    out = {}
    for i, a in enumerate(argv):
        value = None
        if a in ("--label", "-l") and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith("--label="):
            value = a[len("--label=") :]
        if value is not None:
            k, _, v = value.partition("=")
            out[k] = v
    return out


def _compose_files(labels: Mapping[str, str]) -> list[str]:
    """The compose files a compose-made container's labels name: ``config_files``
    (comma-separated; podman-compose writes them relative to ``working_dir``, the directory of
    the first file: podman_compose.py ``podman_compose_labels``)."""
    workdir = labels.get("com.docker.compose.project.working_dir", "")
    out = []
    for f in labels.get("com.docker.compose.project.config_files", "").split(","):
        f = f.strip()
        if f and not f.startswith("/") and workdir:
            f = f"{workdir.rstrip('/')}/{f}"
        if f:
            out.append(f)
    return out


def compose_file_container(
    path: str, containers: Iterable[ContainerFacts]
) -> ContainerFacts | None:
    """A container made from the compose file ``path`` (absolute): one whose create command's
    compose labels name it. Evidence of the engine that runs the file, stronger than which
    engines answer or are configured (a DOCKER_HOST with no daemon behind it, m7-defects D4)."""
    if not path.startswith("/"):
        return None  # a relative name cannot be matched without the working directory
    want = posixpath.normpath(path)
    for c in containers:
        files = _compose_files(_labels(c.create_command))
        if any(posixpath.normpath(f) == want for f in files):
            return c
    return None


def podman_managed_fix(c: ContainerFacts) -> str | None:
    """The fix command for a container a compose file or a Quadlet unit made, from the labels
    in its create command: podman-compose's ``com.docker.compose.project.working_dir``,
    ``...config_files`` and ``com.docker.compose.service`` (podman-compose ≥ 1.0 sets them);
    Quadlet's ``PODMAN_SYSTEMD_UNIT`` (name.service from name.container, podman-systemd.unit(5)).
    None when neither made it."""
    labels = _labels(c.create_command)
    service = labels.get("com.docker.compose.service")
    if service:
        files = _compose_files(labels)
        where = f" {shlex.quote(files[0])}" if files else ""
        return f"{FIX_COMPOSE}{where} --service {shlex.quote(service)} --restart"
    unit = labels.get("PODMAN_SYSTEMD_UNIT", "")
    if unit.endswith(".service") and "@" not in unit:  # podman-compose@proj.service: not Quadlet
        name = unit[: -len(".service")]
        return f"{FIX_QUADLET} ~/.config/containers/systemd/{name}.container --restart"
    return None


def podman_rerun(c: ContainerFacts, mode: str) -> str | None:
    """The container's own `podman run`/`create` command with ``--network MODE`` in place of
    its network options (and NETWORK_INTERFACE set to what the mode gives, where it sets one);
    None when the command is not known or a compose file / Quadlet unit manages the container."""
    argv = list(c.create_command)
    if len(argv) < 3 or argv[0].rsplit("/", 1)[-1] != "podman" or argv[1] not in ("run", "create"):
        return None
    words = "\0".join(argv)  # no marker spans two words: none holds a NUL
    if any(m in words for m in _MANAGED):
        return None
    out = ["podman", argv[1], "--network", mode]
    skip = False
    iface = mode_interface(mode)
    for i, a in enumerate(argv[2:], 2):
        if skip:
            skip = False
            continue
        if a in ("--network", "--net"):
            skip = True
            continue
        if a.startswith(("--network=", "--net=")):
            continue
        if iface and a.startswith("NETWORK_INTERFACE=") and argv[i - 1] in ("-e", "--env"):
            out.append(f"NETWORK_INTERFACE={iface}")
            continue
        if iface and a.startswith(("--env=NETWORK_INTERFACE=", "-eNETWORK_INTERFACE=")):
            out.append(a.split("NETWORK_INTERFACE=", 1)[0] + f"NETWORK_INTERFACE={iface}")
            continue
        out.append(a)
    return shlex.join(out)


def podman_mode_keeps_ip(mode: str | None, version: str | None) -> bool:
    """A network mode a fix leaves alone: host (no forwarding), none (nothing published), pasta,
    or slirp4netns with its own port handler on Podman ≤ 5 (6.0 removed slirp4netns)."""
    base, opts = split_network_mode(mode)
    if base in ("host", "none", "pasta"):
        return True
    return (
        base == "slirp4netns"
        and opts.get("port_handler") == "slirp4netns"
        and (major(version) or 0) < 6
    )


# slirp4netns names the container's interface tap0 (slirp4netns(1): ``slirp4netns [OPTION]...
# PID|PATH TAPNAME``, Podman passes tap0); pasta copies the host's interface name (passt(1),
# ``-I``/``--ns-ifname`` defaults to the host's); bridge networks give eth0 (netavark / docker).
SLIRP_INTERFACE = "tap0"
BRIDGE_INTERFACE = "eth0"


def mode_interface(mode: str | None) -> str | None:
    """The interface name a container on this network mode has; None = the host's own name
    (pasta, host network)."""
    base, _ = split_network_mode(mode)
    if base == "slirp4netns":
        return SLIRP_INTERFACE
    if base in ("pasta", "host"):
        return None
    return BRIDGE_INTERFACE


# Linux net.ipv4.ip_unprivileged_port_start defaults to 1024 (kernel
# Documentation/networking/ip-sysctl.rst); rootless engines cannot bind below it.
PRIVILEGED_PORT_LIMIT = 1024


def port_limit(unprivileged_port_start: int | None) -> int:
    """The lowest port a rootless engine can bind: the sysctl when read, else the default."""
    return PRIVILEGED_PORT_LIMIT if unprivileged_port_start is None else unprivileged_port_start


def is_mailserver(image: str, env_keys: Iterable[str]) -> bool:
    """A docker-mailserver service: its image, or its own PERMIT_DOCKER setting (a custom-built
    image keeps docker-mailserver's environment; docker-mailserver docs config/environment.md)."""
    return "docker-mailserver" in image or "PERMIT_DOCKER" in set(env_keys)


# ------------------------------------------------------------------- no systemd user manager

FIX_DOCKER_RESTART = "rootless-doctor fix docker --restart"
# Where no user manager answers (WSL, containers, OpenRC, `su` sessions) there is no unit to
# restart: rootless Docker runs as dockerd-rootless.sh started by hand, with HOME and
# XDG_RUNTIME_DIR set (docs.docker.com/engine/security/rootless/tips, "run the daemon directly
# without systemd") and the DOCKERD_ROOTLESS_ROOTLESSKIT_* variables the unit would set
# (dockerd-rootless.sh's header lists them). `fix docker --restart` does that; these are the
# systemctl commands it stands for.
_SYSTEMCTL_DOCKER = (
    f"`{FIX_DOCKER}`, then `{RESTART_DOCKER}`",
    f"`{RESTART_DOCKER}`",
    "`systemctl --user restart docker`",
    "`systemctl --user start docker`",
)


def for_host_init(text: str, systemd_user: bool | None) -> str:
    """A remedy or detail as it works on this host: without a user manager every Docker
    restart is `rootless-doctor fix docker --restart` (which restarts dockerd-rootless.sh by
    hand with the drop-in's settings)."""
    if systemd_user is not False:
        return text
    for old in _SYSTEMCTL_DOCKER:
        text = text.replace(old, f"`{FIX_DOCKER_RESTART}`")
    return text


def docker_restart_by_hand(
    pid: int | None, script: str | None, env: Mapping[str, str], log: str
) -> tuple[str, ...]:
    """The shell commands that restart rootless Docker without systemd: stop the running
    RootlessKit (and wait for it), then start the launcher with ``env`` in the background."""
    cmds = []
    if pid:
        cmds.append(f"kill {pid} && while kill -0 {pid} 2>/dev/null; do sleep 0.2; done")
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    launcher = shlex.quote(script or "dockerd-rootless.sh")
    log_dir = log.rsplit("/", 1)[0]
    cmds.append(
        f"mkdir -p {log_dir} && {assigns} nohup {launcher} >>{log} 2>&1 &".replace("  ", " ")
    )
    return tuple(cmds)


# --------------------------------------------------------------------------- Quadlet

# Quadlet (systemd units from .container files) arrived in Podman 4.4 (podman 4.4.0 release
# notes; podman-systemd.unit(5) exists from 4.4 on).
QUADLET_SINCE = "4.4"
# Where the Quadlet generator looks for a rootless user's units, in podman-systemd.unit(5)
# ("Podman rootless unit search path"); subdirectories of these are searched too (quadlet's
# appendSubPaths). $XDG_RUNTIME_DIR/containers/systemd/ is listed from the 5.3 man page on.
QUADLET_RUNTIME_DIR_SINCE = "5.3"


def quadlet_available(podman_version: str | None) -> bool | None:
    """Does this Podman have Quadlet? None when the version is unknown."""
    return version_at_least(podman_version, QUADLET_SINCE)


def quadlet_user_dirs(
    podman_version: str | None,
    *,
    config_dir: Path,
    runtime_dir: Path | None,
    uid: int,
) -> tuple[Path, ...]:
    """The rootless Quadlet search path of this Podman (podman-systemd.unit(5))."""
    dirs = [config_dir / "containers/systemd"]
    if runtime_dir is not None and version_at_least(podman_version, QUADLET_RUNTIME_DIR_SINCE):
        dirs.insert(0, runtime_dir / "containers/systemd")
    dirs += [Path(f"/etc/containers/systemd/users/{uid}"), Path("/etc/containers/systemd/users")]
    return tuple(dirs)


# --------------------------------------------------------------------------- standalone RootlessKit


def rootlesskit_verdict(rk: RootlessKitFacts) -> Verdict:
    """A RootlessKit run by itself (not Docker's): its port driver decides (docs/port.md)."""
    return _port_driver_verdict(
        port=_implicit_if_pasta(rk.network_driver, rk.port_driver),
        net=rk.network_driver,
        rk_version=rk.version,
        docker=False,
        transparent_backend=rk.transparent_backend,
    )


# --------------------------------------------------------------------------- RootlessKit 3 (m7rk3)
# Issue 7's RootlessKit-3 and launcher decisions; the Docker rows above call into these.

# Before Docker 29.5 the launcher's last resort was vpnkit; without it dockerd-rootless.sh exits
# (moby contrib/dockerd-rootless.sh up to docker-v29.4.3: `echo "Either slirp4netns (>= v0.4.0)
# or vpnkit needs to be installed"; exit 1`). 29.5 falls back to gvisor-tap-vsock (5249b1d165).
LAUNCHER_EXIT_MESSAGE = "Either slirp4netns (>= v0.4.0) or vpnkit needs to be installed"


def go_bool_false(value: str | None) -> bool:
    """A boolean flag value RootlessKit (Go strconv.ParseBool, via urfave/cli) reads as false."""
    return value is not None and value.strip() in ("0", "f", "F", "false", "FALSE", "False")


def flags_transparent_off(d: DockerFacts) -> bool:
    """``--source-ip-transparent=false`` (last value wins) in the launcher's FLAGS."""
    flags = d.configured_env.get(FLAGS_ENV)
    return go_bool_false(launcher_flag(flags, "source-ip-transparent", boolean=True))


def docker_launcher_exits(d: DockerFacts, tools: Mapping[str, Tool] | None) -> Verdict | None:
    """The launcher of a Docker older than 29.5 exits when neither slirp4netns nor pasta (nor
    vpnkit) is installed and nothing names a network: a verdict saying so, else None."""
    tools = tools or {}
    if d.running is not None and (d.running.port_driver or d.running.network_driver):
        return None
    if d.configured_net or launcher_flag(d.configured_env.get(FLAGS_ENV), "net"):
        return None
    if version_at_least(d.version, DOCKER_GVISOR_DEFAULT) is not False:
        return None
    helpers = [tools.get(n) for n in ("slirp4netns", "pasta")]
    if any(t is None or t.path for t in helpers):
        return None  # not looked up, or installed: the launcher finds a network
    vpnkit = tools.get("vpnkit")
    if vpnkit is not None and vpnkit.path:
        return None
    return Verdict(
        preserved=None,
        reason=f"Docker {d.version}: neither slirp4netns nor pasta is installed, and before "
        f'Docker 29.5 dockerd-rootless.sh then exits ("{LAUNCHER_EXIT_MESSAGE}") unless vpnkit '
        "is: the daemon does not start; 29.5+ falls back to gvisor-tap-vsock",
        fix="install slirp4netns or passt (pasta), then `systemctl --user restart docker`",
    )


def rk3_backend_note(rk_version: str | None, backend: str | None, docker: bool) -> str:
    """For a builtin verdict on RootlessKit ≥ 3 that keeps source IPs: where the transparency
    comes from. RootlessKit reports the resolved backend in /v1/info
    ``portDriver.extra.sourceIPTransparentBackend`` from PR 613 on (rootlesskit
    pkg/port/builtin/builtin_test.go TestSourceIPTransparentBackend); without that key it is
    inferred, and 3.0.x turns it off silently when iptables is missing in its namespace (child.go
    setupTransparentRouting logs "falling back to non-transparent mode")."""
    if backend or version_at_least(rk_version, RK_SOURCE_IP_TRANSPARENT) is not True:
        return ""
    seen = SEEN_DOCKER_GATEWAY if docker else SEEN_LOOPBACK
    return (
        " (inferred: RootlessKit did not report sourceIPTransparentBackend; 3.0.x silently "
        f"turns it off when iptables is missing in its namespace, and the server then sees "
        f"{seen}: check `rootlessctl info --json`)"
    )


# "userland-proxy": false makes dockerd's bridge driver require br_netfilter; without it the
# daemon exits: "cannot restrict inter-container communication or run without the userland
# proxy" (moby daemon/libnetwork/drivers/bridge/setup_bridgenetfiltering.go @ docker-v29.7.2;
# tests/data/unrecognised/docker-29.8.2-rootless-userland-proxy-false-no-br-netfilter-...).
# A rootless daemon cannot load a module: the host does, now and at boot.
BR_NETFILTER_LOAD = (
    "sudo modprobe br_netfilter",
    "echo br_netfilter | sudo tee /etc/modules-load.d/br_netfilter.conf",
)
BR_NETFILTER_ERROR = (
    "cannot restrict inter-container communication or run without the userland proxy"
)


def br_netfilter_problem(d: DockerFacts) -> str | None:
    """Why dockerd with ``"userland-proxy": false`` cannot start on this host (br_netfilter
    absent, or not known to be present); None when it is present."""
    if d.br_netfilter is True:
        return None
    if d.br_netfilter is False:
        return (
            "br_netfilter is not loaded on this host (no /proc/sys/net/bridge/"
            'bridge-nf-call-iptables), so dockerd with "userland-proxy": false exits at start '
            f'("{BR_NETFILTER_ERROR}")'
        )
    return (
        "whether br_netfilter is loaded could not be read (/proc/sys/net/bridge/"
        'bridge-nf-call-iptables), and dockerd with "userland-proxy": false exits at start '
        "without it"
    )


def rk300_udp_ports(d: DockerFacts, c: ContainerFacts, tools: Mapping[str, Tool]) -> list[str]:
    """The UDP host ports of ``c`` that RootlessKit 3.0.0's builtin driver forwards without the
    replies reaching non-loopback clients (rootlesskit issue 592, fixed in 3.0.1 / Docker 29.5.3):
    "HOSTPORT/udp" each; empty when another RootlessKit or driver forwards them."""
    dr = docker_drivers(d, tools)
    if dr.port_driver != "builtin" or d.rootless is False:
        return []
    at3 = version_at_least(dr.rootlesskit_version, RK_SOURCE_IP_TRANSPARENT)
    if not at3 or version_at_least(dr.rootlesskit_version, RK_UDP_FIXED) is not False:
        return []
    return [f"{p.host_port}/udp" for p in c.ports if p.protocol.lower().startswith("udp")]


def launcher_flags_without(
    flags: str, names: Iterable[str], *, false_bools: Iterable[str] = ()
) -> str:
    """``flags`` (DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS, split on blanks as the launcher expands it)
    without the ``--NAME=V`` / ``--NAME V`` words of ``names`` and without boolean flags of
    ``false_bools`` set to false: what `fix docker` keeps so FLAGS no longer override the drivers
    it writes (they come last on rootlesskit's command line and win, see launcher_flag)."""
    drop, bools = set(names), set(false_bools)
    words = flags.split()[:_MAX_FLAG_WORDS]
    keep: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        key, eq, value = w.lstrip("-").partition("=")
        if w.startswith("-") and key in drop:
            if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                i += 1  # "--net pasta": the value is the next word
        elif not (w.startswith("-") and key in bools and eq and go_bool_false(value)):
            keep.append(w)
        i += 1
    return " ".join(keep)


# --------------------------------------------------------------------------- containerd (nerdctl)
# nerdctl `extras/rootless/containerd-rootless.sh` and `docs/rootless.md` (docs/facts.md
# "nerdctl / rootless containerd"): RootlessKit runs containerd with the drivers of these variables;
# `nerdctl run -p` asks RootlessKit's API for the port (pkg/rootlessutil/port_linux.go) and no
# userland proxy re-dials it, so the RootlessKit port driver alone decides (rootlesskit PR 565).

RESTART_CONTAINERD = "systemctl --user daemon-reload && systemctl --user restart containerd"
FIX_CONTAINERD = "rootless-doctor fix containerd"
CONTAINERD_VAR = "CONTAINERD_ROOTLESS_ROOTLESSKIT_"
DOCKERD_VAR = "DOCKERD_ROOTLESS_ROOTLESSKIT_"
# The variables both launchers read (the rest of each set below is the launcher's own).
_LAUNCHER_VARS = (
    "STATE_DIR", "NET", "MTU", "PORT_DRIVER", "SLIRP4NETNS_SANDBOX", "SLIRP4NETNS_SECCOMP",
    "DETACH_NETNS", "FLAGS",
)  # fmt: skip
# What containerd-rootless.sh reads (nerdctl @ 8da5040; IPV6 from 2.3.x, DETACH_NETNS from 2.0).
CONTAINERD_LAUNCHER_VARS = frozenset(CONTAINERD_VAR + v for v in (*_LAUNCHER_VARS, "IPV6"))
CONTAINERD_STATE_DIR = "containerd-rootless"  # the launcher's state dir under $XDG_RUNTIME_DIR


def flag_drivers(flags: str | None) -> tuple[str | None, str | None]:
    """``--net``/``--port-driver`` given in a launcher's ``..._FLAGS``: they come after the
    launcher's own, so the last one of each wins (``launcher_flag``; docs/facts.md)."""
    return launcher_flag(flags, "net"), launcher_flag(flags, "port-driver")


# What dockerd-rootless.sh reads (moby contrib/dockerd-rootless.sh; DETACH_NETNS from 29.5).
DOCKERD_LAUNCHER_VARS = frozenset(
    DOCKERD_VAR + v for v in (*_LAUNCHER_VARS, "DISABLE_HOST_LOOPBACK")
)


def _ignored_vars(names: Iterable[str], reads: frozenset[str]) -> list[str]:
    prefixes = (CONTAINERD_VAR, DOCKERD_VAR, "CONTAINERD_ROOTLESS_", "DOCKERD_ROOTLESS_")
    return sorted(n for n in names if n.startswith(prefixes) and n not in reads)


def containerd_ignored_vars(names: Iterable[str]) -> list[str]:
    """Launcher-looking variables containerd-rootless.sh never reads (``DOCKERD_ROOTLESS_*`` in
    a containerd drop-in, misspellings): setting them changes nothing."""
    return _ignored_vars(names, CONTAINERD_LAUNCHER_VARS)


def docker_ignored_vars(names: Iterable[str]) -> list[str]:
    """The same for dockerd-rootless.sh (``CONTAINERD_ROOTLESS_*`` in a docker drop-in, ...)."""
    return _ignored_vars(names, DOCKERD_LAUNCHER_VARS)


def containerd_default_drivers(tools: Mapping[str, Tool] | None = None) -> tuple[str | None, str]:
    """(net, port driver) containerd-rootless.sh picks with neither variable set: slirp4netns
    (≥ 0.4) if installed, else vpnkit if installed, else gvisor-tap-vsock (nerdctl ≥ 2.3.0; older
    launchers refuse to start); port driver builtin (never pasta by default)."""
    tools = tools or {}
    slirp, vpnkit = tools.get("slirp4netns"), tools.get("vpnkit")
    slirp_ok = slirp is not None and bool(slirp.path)
    if (
        slirp_ok
        and version_at_least(slirp.version if slirp else None, SLIRP4NETNS_FOR_DOCKER) is not False
    ):
        return "slirp4netns", "builtin"
    if vpnkit is not None and vpnkit.path:
        return "vpnkit", "builtin"
    if slirp is None and vpnkit is None:
        return "slirp4netns", "builtin"  # nothing known: what nearly every install has
    return "gvisor-tap-vsock", "builtin"


def containerd_configured(c: ContainerdFacts) -> tuple[str | None, str | None]:
    """The drivers its unit and drop-ins set (NET / PORT_DRIVER, then FLAGS, whose last wins)."""
    env = c.configured_env
    net, port = env.get(CONTAINERD_VAR + "NET") or None, env.get(CONTAINERD_VAR + "PORT_DRIVER")
    fnet, fport = flag_drivers(env.get(CONTAINERD_VAR + "FLAGS"))
    return fnet or net, fport or port or None


def containerd_drivers(
    c: ContainerdFacts, tools: Mapping[str, Tool] | None = None
) -> DockerDrivers:
    """Running RootlessKit first; else the unit/drop-ins, then the launcher's defaults."""
    rk = c.running
    if (drivers := running_drivers(rk)) is not None:
        return drivers
    net, port = containerd_configured(c)
    dnet, dport = containerd_default_drivers(tools)
    configured = net is not None or port is not None
    return DockerDrivers(
        network_driver=net or dnet,
        port_driver=_implicit_if_pasta(net or dnet, port or dport),
        rootlesskit_version=rk.version if rk else None,
        running=False,
        origin="configured; running daemon not read"
        if configured
        else "launcher default; running daemon not read",
    )


def containerd_verdict(c: ContainerdFacts, tools: Mapping[str, Tool] | None = None) -> Verdict:
    """What ``nerdctl run -p`` gets from this containerd."""
    if c.rootless is False:
        return Verdict(
            preserved=True,
            reason="rootful containerd: nerdctl publishes ports with CNI portmap DNAT, which "
            "keeps source IPs",
            seen=SEEN_CLIENT,
        )
    dr = containerd_drivers(c, tools)
    where = "" if dr.running else f" ({dr.origin})"
    v = _port_driver_verdict(
        port=dr.port_driver, net=dr.network_driver, rk_version=dr.rootlesskit_version,
        docker=False, where=where, transparent_backend=dr.transparent_backend,
    )  # fmt: skip
    if where and where not in v.reason:
        v = replace(v, reason=v.reason + where)
    if v.preserved is True and dr.port_driver == "builtin":
        no_proxy = " builtin port driver (containerd has no userland proxy)"
        v = replace(v, reason=v.reason.replace(" builtin port driver", no_proxy, 1))
    if v.preserved is False:
        v = replace(v, fix=f"`{FIX_CONTAINERD}`, then `{RESTART_CONTAINERD}`")
    elif v.preserved is None and dr.port_driver == "builtin":
        how = "`nerdctl version` (its rootlesskit component) or `rootlesskit --version`"
        v = replace(v, reason=v.reason.replace("`rootlesskit --version`", how))
    return v


def containerd_fix_options(c: ContainerdFacts, tools: Mapping[str, Tool]) -> list[FixOption]:
    """Driver choices that keep source IPs for rootless containerd, fastest first: Docker's list
    (same RootlessKit, same requirements) where "builtin-transparent" needs nothing but
    RootlessKit ≥ 3, as containerd has no userland proxy."""
    dr = containerd_drivers(c, tools)
    as_docker = DockerFacts(
        rootless=True,
        running=c.running,
        configured_net=dr.network_driver,
        configured_port_driver=dr.port_driver,
        userland_proxy=False,
    )
    return [replace(o, userland_proxy=None) for o in docker_fix_options(as_docker, tools)]


def containerd_container_verdict(
    c: ContainerdFacts,
    ct: ContainerFacts,
    tools: Mapping[str, Tool] | None = None,
    _depth: int = 0,
) -> Verdict:
    """What one nerdctl container gets: all containers of one rootless containerd share its
    RootlessKit port driver, so the engine's verdict applies to its published ports; host
    network involves no port driver; none has no ports."""
    base, _ = split_network_mode(ct.network_mode)
    if base == "host":
        inside = (
            ""
            if c.rootless is False
            else " (rootless containerd: this is RootlessKit's namespace; nerdctl publishes no "
            "host ports for it)"
        )
        return Verdict(
            preserved=True,
            reason=f"host network: no port driver involved, no rewrite{inside}",
            seen=SEEN_CLIENT,
        )
    if base == "none":
        return Verdict(preserved=None, reason="network none: no ports can be published")
    if base == "container":
        other = _find_container(c.containers, ct.network_mode)
        if other is not None and other is not ct and _depth < 8:  # bounded: A→B→A
            v = containerd_container_verdict(c, other, tools, _depth + 1)
            return replace(v, reason=f"shares {other.name}'s network: {v.reason}")
    v = containerd_verdict(c, tools)
    if not ct.id and ct.name.startswith("port "):
        v = replace(v, reason=v.reason + " (container not known: nerdctl not installed; "
                    "from RootlessKit's port list)")  # fmt: skip
    return v
