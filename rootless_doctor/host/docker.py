"""Docker: which daemon the CLI asks (DOCKER_HOST, contexts, the rootless socket), the
user's docker.service and its drop-ins, daemon.json, and whether the daemon is rootless."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import knowledge, parse
from ..model import CmdOutput, DockerFacts, HostPaths, Proc
from .containers import engine_containers
from .files import exists, is_dir, is_file, parsed, read, read_all
from .identity import runtime_path
from .rootlesskit import (
    merge_rk,
    rootlesskit_facts,
    rootlesskit_from_proc,
    state_dir_facts,
    top_rootlesskits,
)

# Drop-ins and units of the user manager, highest priority first (systemd.unit(5), "User Unit
# Search Path"). A drop-in file name in a higher directory masks the same name in a lower one.
USER_UNIT_DIRS = (
    "/etc/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
)


def _docker_context(paths: HostPaths) -> tuple[str | None, str | None]:
    """(context name, its docker endpoint host) from DOCKER_CONTEXT or the CLI config."""
    config_dir = Path(paths.getenv("DOCKER_CONFIG") or paths.home / ".docker")
    name = paths.getenv("DOCKER_CONTEXT")
    if not name:
        text = read(config_dir / "config.json")
        with contextlib.suppress(ValueError, AttributeError):
            name = json.loads(text).get("currentContext") if text else None
    if not name or name == "default":
        return None, None
    import hashlib  # ~3 ms to load (OpenSSL): only for a named context

    meta = config_dir / "contexts/meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    host = None
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        text = read(meta)
        host = json.loads(text)["Endpoints"]["docker"]["Host"] if text else None
    return name, host


def docker_target(
    paths: HostPaths, env: Mapping[str, str]
) -> tuple[dict[str, str], str, str | None, str | None]:
    """(env for the docker CLI, note, context name, context host).

    A rootless user often has no DOCKER_HOST (the setup tool only prints it); then the CLI would
    ask the rootful /var/run/docker.sock. Aim it at the rootless socket when nothing (DOCKER_HOST,
    a docker context) chooses another daemon.
    """
    docker_env = dict(env)
    runtime_dir = runtime_path(paths)
    docker_sock = runtime_dir / "docker.sock"
    context, context_host = _docker_context(paths)
    note = ""
    if not paths.getenv("DOCKER_HOST") and context is None and exists(paths.at(docker_sock)):
        docker_env["DOCKER_HOST"] = f"unix://{docker_sock}"
        note = f"DOCKER_HOST unset: asked the rootless socket {docker_sock}"
    return docker_env, note, context, context_host


def missing_docker_socket(paths: HostPaths, docker_env: Mapping[str, str]) -> str | None:
    """The unix socket the docker CLI would dial when it does not exist (no daemon there to ask:
    not running the CLI saves a Go start-up, ~60 ms of a core); None when it exists or the
    target is not a local socket (tcp://, ssh://, a context's endpoint)."""
    host = docker_env.get("DOCKER_HOST") or ""
    if not host and _docker_context(paths)[0] is not None:
        return None
    target = host or "unix:///var/run/docker.sock"
    if not target.startswith("unix://"):
        return None
    sock = target[len("unix://") :]
    return None if exists(paths.at(sock)) else sock


def unit_files(paths: HostPaths, unit: str) -> list[Path]:
    """A user unit and its drop-ins in systemd's order: the unit (first found on the search
    path), then every ``unit.d/*.conf`` sorted by file name, a name in a higher directory
    masking the same name lower down."""
    dirs = [paths.config_dir / "systemd/user", *(paths.at(d) for d in USER_UNIT_DIRS)]
    main = next((d / unit for d in dirs if is_file(d / unit)), None)
    dropins: dict[str, Path] = {}
    for d in dirs:
        try:
            names = sorted(p for p in (d / f"{unit}.d").iterdir() if p.name.endswith(".conf"))
        except OSError:
            continue
        for p in names:
            dropins.setdefault(p.name, p)
    return ([main] if main else []) + [dropins[n] for n in sorted(dropins)]


def docker_facts(
    paths: HostPaths,
    cli_paths: Mapping[str, tuple[str, Path] | None],
    version: CmdOutput | None,
    info: CmdOutput | None,
    chain: tuple[CmdOutput, CmdOutput | None] | None,
    units: Sequence[Path],
    procs: Sequence[Proc],
    runtime_dir: Path,
    target_note: str,
    context: str | None,
    context_host: str | None,
    sources: list[str],
    missing_socket: str | None = None,
) -> DockerFacts | None:
    notes: list[str] = []
    docker_cli = cli_paths["docker"]
    rk_procs = []
    for p in top_rootlesskits(paths, procs):
        argv = rootlesskit_from_proc(p, [])
        if argv is not None and "dockerd" in (argv.child or ""):
            rk_procs.append(p)
    dockerd_procs = [p for p in procs if p.exe_name == "dockerd" and p.uid == paths.uid]
    daemon_json = paths.config_dir / "docker/daemon.json"
    sock = runtime_dir / "docker.sock"
    traces = [
        docker_cli is not None,
        cli_paths["dockerd"] is not None,
        bool(units),
        is_file(daemon_json),
        exists(paths.at(sock)),
        bool(rk_procs),
        bool(dockerd_procs),
    ]
    if not any(traces):
        return None
    if docker_cli is None:
        notes.append("docker CLI not installed: daemon not asked")

    v = i = None
    if version is not None:
        if version.ok:
            v = parsed(lambda: parse.docker_version(version.stdout), "docker version", notes)
        else:
            notes.append(version.why())
    if info is not None:
        if info.ok:
            i = parsed(lambda: parse.docker_info(info.stdout), "docker info", notes)
        else:
            notes.append(info.why())
    reachable: bool | None = None
    if missing_socket is not None and version is None:
        reachable = False
        notes.append(f"no Docker daemon socket at {missing_socket}: the daemon is not running")
    if version is not None or info is not None:
        answered = [o for o in (version, info) if o is not None]
        if any(o.ok for o in answered):
            reachable = True
        elif all(o.code is not None for o in answered):
            reachable = False  # ran and failed: no daemon at that address

    rootless, reasons = _docker_rootless(
        paths, i, v, rk_procs, runtime_dir, context, context_host, target_note
    )
    unit_texts = read_all(units, notes)
    sources.extend(name for name, _ in unit_texts)
    unit_env: dict[str, str] = {}
    if unit_texts:
        unit_env = parsed(lambda: parse.unit_environment(unit_texts), "docker.service", notes) or {}
    configured = {k: v for k, v in unit_env.items() if k.startswith("DOCKERD_ROOTLESS_")}

    userland_proxy = None
    daemon_json_path = None
    if is_file(daemon_json):
        daemon_json_path = str(daemon_json)
        sources.append(daemon_json_path)
        text = read(daemon_json) or ""
        cfg = parsed(lambda: parse.daemon_json(text), str(daemon_json), notes) or {}
        value = cfg.get("userland-proxy")
        userland_proxy = value if isinstance(value, bool) else None

    # Running: Docker ≥ 25 keeps RootlessKit state in $XDG_RUNTIME_DIR/dockerd-rootless; older
    # ones in /tmp/rootlesskitNNN unless the launcher got --state-dir.
    hint = configured.get("DOCKERD_ROOTLESS_ROOTLESSKIT_STATE_DIR")
    if hint is None and is_dir(paths.at(runtime_dir / "dockerd-rootless")):
        hint = str(runtime_dir / "dockerd-rootless")
    running = None
    if rk_procs or (v is not None and v.running is not None) or hint:
        running = rootlesskit_facts(
            paths, rk_procs[0] if rk_procs else None, procs, notes, sources,
            state_dir_hint=hint if not rk_procs else None,
            extra=[v.running if v is not None else None],
        )  # fmt: skip
        if rk_procs and hint and running is not None and running.state_dir is None:
            running = merge_rk([running, *state_dir_facts(paths, hint, notes, sources)])
    if len(rk_procs) > 1:
        notes.append(f"{len(rk_procs)} rootless dockerd instances run; read pid {rk_procs[0].pid}")

    # An unreachable daemon already has its note; `docker ps` would only repeat it.
    containers = engine_containers(
        "docker", chain, parse.docker_inspect, [] if reachable is False else notes
    )
    return DockerFacts(
        cli=docker_cli[0] if docker_cli else None,
        reachable=reachable,
        rootless=rootless,
        rootless_reason="; ".join(reasons),
        version=(i.version if i else None) or (v.version if v else None),
        running=running,
        configured_net=configured.get("DOCKERD_ROOTLESS_ROOTLESSKIT_NET"),
        configured_port_driver=configured.get("DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"),
        configured_env=configured,
        unit_files=tuple(name for name, _ in unit_texts),
        ignored_unit_lines=tuple(
            f"{name}: {line}"
            for name, text in unit_texts
            for line in parse.unit_outside_section(text)
        ),
        userland_proxy=userland_proxy,
        daemon_json=daemon_json_path,
        br_netfilter=br_netfilter(paths),
        containers=containers,
        notes=tuple(notes),
    )


# What dockerd stats before it runs with "userland-proxy": false (moby
# daemon/libnetwork/drivers/bridge/setup_bridgenetfiltering.go @ docker-v29.7.2): the sysctl
# exists once br_netfilter is loaded, or built in (CONFIG_BRIDGE_NETFILTER=y, as on the CI kernel,
# which has no /proc/modules: tests/data/proc/sys-net-bridge-ls-debian12-ci-machine.txt).
BR_NF_SYSCTL = "/proc/sys/net/bridge/bridge-nf-call-iptables"
_MODULES_CAP = 1 << 20  # /proc/modules: ~100 bytes a module


def br_netfilter(paths: HostPaths) -> bool | None:
    """Is br_netfilter present on the host: the sysctl dockerd stats, else the module in
    /sys/module or /proc/modules. None when /proc/sys/net cannot be seen (not a live root)."""
    if exists(paths.at(BR_NF_SYSCTL)) or exists(paths.at("/sys/module/br_netfilter")):
        return True
    modules = b""
    with contextlib.suppress(OSError), open(paths.at("/proc/modules"), "rb") as f:
        modules = f.read(_MODULES_CAP)
    if any(line.startswith(b"br_netfilter ") for line in modules.splitlines()):
        return True
    return False if is_dir(paths.at("/proc/sys/net")) else None


def _docker_rootless(
    paths: HostPaths,
    info: DockerFacts | None,
    version: DockerFacts | None,
    rk_procs: Sequence[Proc],
    runtime_dir: Path,
    context: str | None,
    context_host: str | None,
    target_note: str,
) -> tuple[bool | None, list[str]]:
    """The evidence of whether the daemon the CLI asks is rootless, as read here; knowledge
    weighs it (``docker_rootless_from_evidence``)."""
    sock = runtime_dir / "docker.sock"
    return knowledge.docker_rootless_from_evidence(
        info_rootless=info.rootless if info is not None else None,
        version_lists_rootlesskit=version is not None and version.rootless is True,
        rootlesskit=f"{rk_procs[0].pid}" if rk_procs else None,
        user=str(paths.user or paths.uid),
        docker_host=paths.getenv("DOCKER_HOST") or context_host or "",
        runtime_dir=str(runtime_dir),
        context=context,
        context_host=context_host,
        socket=str(sock) if exists(paths.at(sock)) else None,
        target_note=target_note,
    )
