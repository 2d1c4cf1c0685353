""":func:`gather`: the top level. Starts the engines' CLIs side by side, reads files and
/proc meanwhile, and hands each subject to its module (system, podman, docker, rootlesskit,
containers). Also the engine queries :func:`prefetch` starts before the CLI is imported."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..model import (
    CmdOutput,
    ContainerFacts,
    HostFacts,
    HostPaths,
    PodmanFacts,
    Proc,
    RootlessKitFacts,
)
from .containerd import containerd_facts
from .containers import fill_interfaces, ps_inspect
from .docker import docker_facts, docker_target, missing_docker_socket, unit_files
from .identity import SBIN_DIRS, engine_env, locate, runtime_path
from .podman import conmon_ids, containers_conf_files, podman_facts, read_conf
from .podman_info import INFO_ARGS, INFO_KEY, RAN, Refused, derive, euid_of, first_query, refusal
from .rootlesskit import standalone_rootlesskits
from .runner import PREFETCHED, Cmds, Runner, Task, run
from .system import (
    compose_facts,
    engine_owners,
    firewall_kind,
    prerequisites,
    processes,
    systemd_booted,
    systemd_user_state,
    tool_facts,
)

# Tools whose `--version` is read. podman and docker are found too, but their versions come
# from `podman info` / `docker version`: one process each fewer on a 2-core machine.
VERSIONED_TOOLS = ("slirp4netns", "pasta", "rootlesskit")


ENGINE_CLIS = ("podman", "docker")


ENGINES = ("docker", "podman", "rootlesskit")


# With gather(engines=...): the tool versions each engine's verdict reads (knowledge.py: Docker's
# default drivers depend on the slirp4netns/pasta/RootlessKit found; Podman's and a standalone
# RootlessKit's verdicts read only their own facts).
ENGINE_TOOLS = {"docker": ("slirp4netns", "pasta", "rootlesskit"), "podman": (), "rootlesskit": ()}


def cli_env(paths: HostPaths, engine: str | None = None) -> dict[str, str]:
    """The environment to run an engine's CLI with (for ``docker``: aimed at the rootless daemon
    when nothing else chooses one, see :func:`docker_target`)."""
    env = engine_env(paths)
    return docker_target(paths, env)[0] if engine == "docker" else env


def _engine_queries(
    paths: HostPaths,
    env: Mapping[str, str],
    engines: Iterable[str] = ENGINES,
    podman_info: bool = False,
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The engine commands a check always starts, with their environments: ``podman --version``
    (or ``podman info`` where its answers cannot be read from their sources, or ``podman_info``
    asks for it), ``docker version``. One list for :func:`gather` and the prefetch
    (:mod:`.early`, :func:`prefetch_rest`)."""
    out: dict[str, tuple[list[str], dict[str, str]]] = {}
    podman = locate(paths, "podman") if "podman" in engines else None
    if podman:
        key, argv = first_query(
            podman[1].as_posix(), podman[1], env, euid_of(paths), want_info=podman_info
        )
        out[key] = (argv, dict(env))
    docker = locate(paths, "docker") if "docker" in engines else None
    if docker:
        denv = docker_target(paths, dict(env))[0]
        d = docker[1].as_posix()
        if missing_docker_socket(paths, denv) is None:
            out["docker version"] = ([d, "version", "--format", "{{json .}}"], denv)
    return out


def _cli_paths(paths: HostPaths) -> dict[str, tuple[str, Path] | None]:
    """Where each CLI gather() may run or report is (None: not installed)."""
    found = {
        n: locate(paths, n)
        for n in (*VERSIONED_TOOLS, *ENGINE_CLIS, "systemctl", "nsenter", "dockerd")
    }
    for n in ("newuidmap", "newgidmap", "iptables", "nft"):
        found[n] = locate(paths, n, SBIN_DIRS)
    return found


def _tool_queries(
    cli_paths: Mapping[str, tuple[str, Path] | None], versioned: Iterable[str], full: bool
) -> dict[str, list[str]]:
    """The tools' commands a check runs (their versions, the user manager's state, the firewall
    CLI's version), in the environment of the engines. One list for gather() and prefetch()."""
    out: dict[str, list[str]] = {}
    for n in versioned:
        found = cli_paths[n]
        if found:
            out[f"{n} --version"] = [found[1].as_posix(), "--version"]
    systemctl, iptables = cli_paths["systemctl"], cli_paths["iptables"]
    if systemctl and full:
        out["systemctl"] = [systemctl[1].as_posix(), "--user", "is-system-running"]
    if iptables and full:
        out["iptables"] = [iptables[1].as_posix(), "--version"]
    return out


def prefetch_rest(paths: HostPaths, env: Mapping[str, str]) -> None:
    """:func:`rootless_doctor.host.early.prefetch` after the first Podman query: ``docker
    version``, the tools' commands (``slirp4netns --version``, ...) and, once the process list is
    read, ``podman inspect`` of the owner's running containers. :func:`gather` later takes them
    over through :func:`run` (the process list through ``PREFETCHED.claim``). Unclaimed ones are
    ended at exit (they are ours: we started them, in their own process group)."""
    for argv, qenv in _engine_queries(paths, env, ("docker",)).values():
        PREFETCHED.start(argv, qenv)
    cli_paths = _cli_paths(paths)
    for argv in _tool_queries(cli_paths, VERSIONED_TOOLS, True).values():
        PREFETCHED.start(argv, env)
    # The process list now, on this thread: podman inspect of the owner's running containers
    # can then start before the imports (with hundreds of containers it is the longest wait).
    # Not on a thread of its own: while the imports hold the GIL, its thousands of short /proc
    # reads each waited for a switch interval (measured: a 40 ms scan took 300-650 ms).
    podman = cli_paths["podman"]
    procs = processes(paths)
    ids = conmon_ids(procs, paths.uid) if podman else []
    if podman and ids:
        PREFETCHED.start([podman[1].as_posix(), "inspect", *ids], env)
    PREFETCHED.keep(("processes", paths), procs)


def gather(
    paths: HostPaths,
    *,
    compose_file: Path | None = None,
    timeout: float = 5.0,
    interfaces: bool | Callable[[ContainerFacts], bool] = True,
    runner: Runner = run,
    cwd: Path | None = None,
    engines: Iterable[str] | None = None,
    podman_info: bool = False,
) -> HostFacts:
    """Read everything the checks need from the host ``paths`` describes. Never raises for a
    missing engine, CLI or file: those become ``None`` and notes.

    The CLIs run side by side, each with ``timeout``; ``runner`` replaces :func:`run` (tests serve
    captured outputs through it). ``interfaces``: read the interfaces of every running container
    (True), of those the predicate picks (the checks pass the containers they look at), or none.

    ``engines`` (a subset of :data:`ENGINES`) reads only what those engines' own verdicts need
    (``probe --engine``): the other engines stay ``None``/empty, and their containers, the user
    manager, the firewall, the compose file and the tool versions no verdict reads are not read.

    ``podman_info``: run ``podman info`` even where its answers can be read from their sources
    (``collect``: a bug report carries its whole output).
    """
    want = set(ENGINES if engines is None else engines)
    full = engines is None
    notes: list[str] = []
    sources: list[str] = []
    env = engine_env(paths)
    runtime_dir = runtime_path(paths)

    cli_paths = _cli_paths(paths)
    versioned = VERSIONED_TOOLS if full else tuple(t for e in sorted(want) for t in ENGINE_TOOLS[e])

    docker_env, docker_target_note, context, context_host = (
        docker_target(paths, env) if "docker" in want else (env, "", None, None)
    )

    cmds = Cmds(runner, env, timeout)
    fut: dict[str, Task[CmdOutput]] = {}
    docker_info: Task[CmdOutput | None] | None = None
    chains: dict[str, Task[tuple[CmdOutput, CmdOutput | None] | None]] = {}
    podman_cli = cli_paths["podman"] if "podman" in want else None
    docker_cli = cli_paths["docker"] if "docker" in want else None
    for key, (argv, qenv) in _engine_queries(paths, env, want, podman_info).items():
        fut[key] = cmds.cmd(argv, qenv)
    if docker_cli and "docker version" in fut:
        # `docker info` only once `docker version` reached the daemon: with no daemon it
        # would fail the same way, and every Go CLI start costs a core for ~60 ms.
        info_argv = [docker_cli[1].as_posix(), "info", "--format", "{{json .}}"]
        docker_info = cmds.submit(_if_answered, cmds, fut["docker version"], info_argv, docker_env)
    if docker_cli and full and "docker version" in fut:
        chains["docker"] = cmds.submit(
            ps_inspect, cmds, docker_cli[1].as_posix(), docker_env, None, fut["docker version"]
        )
    for key, argv in _tool_queries(cli_paths, versioned, full).items():
        fut[key] = cmds.cmd(argv)

    # Files and /proc while the CLIs run.
    early: list[Proc] | None = PREFETCHED.claim(("processes", paths))
    procs: list[Proc] = []
    if full or want & {"docker", "rootlesskit"}:
        procs = early if early is not None else processes(paths)
    if podman_cli and full:
        # Every running Podman container has a conmon of its owner whose `-c` names it: no
        # `podman ps` round trip, and no podman process at all when nothing runs.
        ids = conmon_ids(procs, paths.uid)
        chains["podman"] = cmds.submit(ps_inspect, cmds, podman_cli[1].as_posix(), env, ids)
    host = prerequisites(paths, notes, sources)
    compose = compose_facts(compose_file, cwd, notes, sources) if full else None
    conf_files = containers_conf_files(paths) if podman_cli else []
    units = unit_files(paths, "docker.service") if "docker" in want else []

    def result(key: str) -> CmdOutput | None:
        return fut[key].result() if key in fut else None

    tools = tool_facts(paths, cli_paths, result, notes)

    systemd_user = (
        systemd_user_state(result("systemctl"), paths, runtime_dir, notes) if full else None
    )
    booted = systemd_booted(paths) if full else None
    owners = engine_owners(procs) if full and paths.uid == 0 else ()
    nft = cli_paths["nft"][0] if cli_paths["nft"] else None
    firewall = firewall_kind(result("iptables"), nft) if full else None

    podman = None
    if podman_cli:
        conf_read = read_conf(conf_files, sources)

        def helper_version(p: Path) -> CmdOutput:
            # the `--version` already running for the tools, when Podman picks the same file
            for n in ("slirp4netns", "pasta"):
                found, key = cli_paths.get(n), f"{n} --version"
                if found and found[1] == p and key in fut:
                    return fut[key].result()
            return cmds.call([p.as_posix(), "--version"])

        info: CmdOutput | PodmanFacts | None = result(INFO_KEY)
        if info is None:
            try:
                info, note = derive(
                    paths, env, fut["podman --version"].result(),
                    conf_read.merged if conf_read.clean else None, helper_version,
                )  # fmt: skip
            except Refused as e:
                note = f"{RAN}: {e}"
                info = cmds.call([podman_cli[1].as_posix(), *INFO_ARGS], env)
        else:
            why = refusal(podman_cli[1], env, euid_of(paths))
            note = f"{RAN}: {why or 'its whole answer was asked for'}"
        notes.append(note)
        podman = podman_facts(
            paths, podman_cli[0], info,
            chains["podman"].result() if "podman" in chains else None,
            conf_read, procs,
        )  # fmt: skip
    if podman is not None and "podman" in tools:
        tools["podman"] = replace(tools["podman"], version=podman.version)
    docker = None
    if "docker" in want:
        docker = docker_facts(
            paths, cli_paths, result("docker version"),
            docker_info.result() if docker_info else None,
            chains["docker"].result() if "docker" in chains else None,
            units, procs, runtime_dir, docker_target_note, context, context_host, sources,
            missing_docker_socket(paths, docker_env) if docker_cli else None,
        )  # fmt: skip
    rootlesskits: tuple[RootlessKitFacts, ...] = ()
    if "rootlesskit" in want:
        rootlesskits = standalone_rootlesskits(paths, procs, notes, sources)
    containerd = None
    if full:
        nerdctl = locate(paths, "nerdctl")

        def run_nerdctl(args: Sequence[str]) -> CmdOutput | None:
            # only when containerd left a trace: a Go CLI start costs a core for ~60 ms
            if not nerdctl:
                return None
            return cmds.cmd([nerdctl[1].as_posix(), *args], env).result()

        containerd = containerd_facts(paths, procs, run_nerdctl, notes, sources)

    if interfaces and paths.root == Path("/"):  # a fake root's PIDs are not real processes
        owner = paths.uid
        wanted = None if interfaces is True else interfaces
        podman, docker = fill_interfaces(cmds, podman, docker, owner, wanted)

    sources.extend(" ".join(c.argv) for c in cmds.ran)
    return replace(
        host,
        docker=docker,
        containerd=containerd,
        podman=podman,
        rootlesskits=rootlesskits,
        tools=tools,
        systemd_user=systemd_user,
        systemd_booted=booted,
        engine_owners=owners,
        firewall=firewall,
        compose=compose,
        sources=tuple(dict.fromkeys(sources)),
        notes=tuple(notes),
    )


def _if_answered(
    cmds: Cmds, first: Task[CmdOutput], argv: list[str], env: Mapping[str, str]
) -> CmdOutput | None:
    """Run ``argv`` once ``first`` has succeeded; None when it did not."""
    return cmds.call(argv, env) if first.result().ok else None
