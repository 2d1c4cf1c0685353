"""The only module that touches the OS: /proc, /sys, /etc, ~/.config, sockets, subprocesses.

Every path is built from a :class:`HostPaths` (``paths.at("/etc/subuid")``, ``paths.home``,
``paths.config_dir``), so a test builds a whole fake host in a temp dir out of real captured files.
Every command goes through one runner (:func:`run` by default; tests inject one that serves
captured outputs). Text is handed to :mod:`rootless_doctor.parse`; what comes back is plain data
(:class:`HostFacts`). Nothing here raises for a missing binary, a hung CLI or an unreadable file:
it becomes ``None`` plus a note saying why.

Reading order: the runner and file helpers, then :func:`gather`; the sections after it follow
gather's own order (prerequisites, processes, Podman, Docker, RootlessKit, container
interfaces). The last section is what the probe asks about this host (addresses, layout).

pyroute2 is imported only inside :func:`container_interfaces` (it is slow to import), psutil only
where processes or addresses are read (``probe --engine podman`` needs neither).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    import concurrent.futures as cf

from . import parse
from .model import (
    CmdOutput,
    ComposeFacts,
    ContainerFacts,
    DockerFacts,
    DoctorError,
    HostFacts,
    HostPaths,
    Interface,
    PodmanFacts,
    Proc,
    RootlessKitFacts,
    Tool,
)

# The environment that changes what the engines and their CLIs do. default_paths() keeps these.
ENV_KEYS = (
    "PATH",
    "XDG_RUNTIME_DIR",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CONTAINERS_CONF",
    "CONTAINERS_CONF_OVERRIDE",
    "SUDO_USER",  # run through sudo: whose engines the user meant (the RUN-AS check)
)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# iptables/nft/newuidmap live in sbin on some distributions and a user's PATH may lack it.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# Tools whose `--version` is read. podman and docker are found too, but their versions come
# from `podman info` / `docker version`: one process each fewer on a 2-core machine.
VERSIONED_TOOLS = ("slirp4netns", "pasta", "rootlesskit")
ENGINE_CLIS = ("podman", "docker")
ENGINES = ("docker", "podman", "rootlesskit")
# With gather(engines=...): the tool versions each engine's verdict reads (knowledge.py: Docker's
# default drivers depend on the slirp4netns/pasta/RootlessKit found; Podman's and a standalone
# RootlessKit's verdicts read only their own facts).
ENGINE_TOOLS = {"docker": ("slirp4netns", "pasta", "rootlesskit"), "podman": (), "rootlesskit": ()}
API_TIMEOUT = 1.0  # RootlessKit's api.sock answers in about a millisecond; never wait long
# compose-go's DefaultFileNames, in its order of preference.
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
# Drop-ins and units of the user manager, highest priority first (systemd.unit(5), "User Unit
# Search Path"). A drop-in file name in a higher directory masks the same name in a lower one.
USER_UNIT_DIRS = (
    "/etc/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
)
# Looked up to be run (or, for nft, only named by the firewall fact); not in HostFacts.tools.
_NOT_TOOLS = ("systemctl", "dockerd", "nsenter", "iptables", "nft")
SYSTEMD_STATES = {"initializing", "starting", "running", "degraded", "maintenance", "stopping"}

T = TypeVar("T")


class Runner(Protocol):
    """What :func:`run` looks like; tests pass their own to serve captured outputs."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = ...,
        env: Mapping[str, str] | None = ...,
    ) -> CmdOutput: ...


# ----------------------------------------------------------------------- paths and running commands


def default_paths() -> HostPaths:
    """This process's view: real root, this user's home/uid/name, its runtime and config dirs."""
    uid = os.getuid()
    try:
        pw = pwd.getpwuid(uid)
        user, pw_home = pw.pw_name, pw.pw_dir
    except KeyError:  # a uid without a passwd entry (containers, CI runners)
        user, pw_home = os.environ.get("USER", str(uid)), str(Path.home())
    home = Path(os.environ.get("HOME") or pw_home)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    config_home = os.environ.get("XDG_CONFIG_HOME")
    return HostPaths(
        root=Path("/"),
        home=home,
        uid=uid,
        user=user,
        runtime_dir=Path(runtime),
        config_home=Path(config_home) if config_home else None,
        env=tuple((k, os.environ[k]) for k in ENV_KEYS if k in os.environ),
    )


def _runtime_dir(paths: HostPaths) -> Path:
    """$XDG_RUNTIME_DIR as the engines see it; pam_systemd's default when it is unset."""
    return paths.runtime_dir or Path(f"/run/user/{paths.uid}")


def run(
    argv: Sequence[str], *, timeout: float = 5.0, env: Mapping[str, str] | None = None
) -> CmdOutput:
    """Run ``argv`` and capture its output. Never raises.

    A missing binary gives ``error="not installed"``; on timeout the child's whole process group
    (it runs in a new session, so only what this call started) is killed and
    ``error="timed out after N s"``.
    """
    args = tuple(str(a) for a in argv)
    started = _PREFETCHED.pop(_prefetch_key(args, env), None) or _start(args, env)
    if isinstance(started, CmdOutput):
        return started
    return _collect(started, args, timeout)


def _start(
    args: tuple[str, ...], env: Mapping[str, str] | None
) -> subprocess.Popen[bytes] | CmdOutput:
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CmdOutput(argv=args, error="not installed")
    except PermissionError:
        return CmdOutput(argv=args, error="not executable (permission denied)")
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return CmdOutput(argv=args, error=f"could not start: {e}")


def _collect(proc: subprocess.Popen[bytes], args: tuple[str, ...], timeout: float) -> CmdOutput:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            # A grandchild that left the group still holds the pipes: stop reading.
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait()
            out, err = b"", b""
        return CmdOutput(
            argv=args,
            stdout=_text(out),
            stderr=_text(err),
            error=f"timed out after {timeout:g} s",
        )
    return CmdOutput(argv=args, code=proc.returncode, stdout=_text(out), stderr=_text(err))


def _text(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", errors="replace")


_Key = tuple[tuple[str, ...], tuple[tuple[str, str], ...] | None]


# Engine queries started early by prefetch(), keyed by (argv, env); run() takes them over.
_PREFETCHED: dict[_Key, subprocess.Popen[bytes] | CmdOutput] = {}


def _prefetch_key(args: tuple[str, ...], env: Mapping[str, str] | None) -> _Key:
    return args, (tuple(sorted(env.items())) if env is not None else None)


def prefetch(paths: HostPaths) -> None:
    """Start the slow engine queries of a live check now (``podman info`` takes ~200 ms), before
    the CLI framework and the checks are imported: :func:`gather` later takes them over through
    :func:`run`, so Python's start-up runs while the engines answer. Unclaimed ones are ended at
    exit (they are ours: we started them, in their own process group)."""
    for argv, env in _engine_queries(paths, _cli_env(paths)).values():
        args = tuple(argv)
        _PREFETCHED[_prefetch_key(args, env)] = _start(args, env)
    if _PREFETCHED:
        import atexit

        atexit.register(end_prefetched)


def end_prefetched() -> None:
    """End the prefetched queries nobody took over (only ours, by process group)."""
    for started in _PREFETCHED.values():
        if isinstance(started, subprocess.Popen) and started.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(started.pid, signal.SIGKILL)
            started.wait()
    _PREFETCHED.clear()


# --------------------------------------------------------------------------- files


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _read_all(files: Iterable[Path], notes: list[str]) -> list[tuple[str, str]]:
    """(name, text) of each readable file, in order; a note for each unreadable one."""
    texts = []
    for f in files:
        text = _read(f)
        if text is None:
            notes.append(f"{f}: not readable")
        else:
            texts.append((str(f), text))
    return texts


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _exists(p: Path) -> bool:
    try:
        p.lstat()
    except OSError:
        return False
    return True


def _is_socket(p: Path) -> bool:
    try:
        return stat.S_ISSOCK(p.stat().st_mode)
    except (OSError, ValueError):
        return False


# Path.is_file()/is_dir() raise PermissionError on Python < 3.12 (a dir we may not search).
def _is_file(p: Path) -> bool:
    try:
        return stat.S_ISREG(p.stat().st_mode)
    except (OSError, ValueError):
        return False


def _is_dir(p: Path) -> bool:
    try:
        return stat.S_ISDIR(p.stat().st_mode)
    except (OSError, ValueError):
        return False


def _parsed(fn: Callable[[], T], what: str, notes: list[str]) -> T | None:
    """Call a parser; a ParseError becomes a note naming ``what`` (file or command)."""
    try:
        return fn()
    except (DoctorError, ValueError) as e:
        notes.append(f"{what}: {e}")
        return None


# -------------------------------------------------------- programs and the engines' CLI environment


def _which(paths: HostPaths, name: str, extra: Sequence[str] = ()) -> tuple[str, Path] | None:
    """(host path, path on this filesystem) of ``name`` on the host's PATH (plus ``extra``)."""
    dirs = (paths.getenv("PATH") or DEFAULT_PATH).split(":")
    for d in [*dirs, *extra]:
        if not d.startswith("/"):
            continue  # relative PATH entries depend on the cwd; engines' users do not rely on them
        real = paths.at(d) / name
        if _is_file(real) and os.access(real, os.X_OK):
            return str(Path(d) / name), real
    return None


def which(paths: HostPaths, name: str) -> str | None:
    """The program ``name`` on the host's PATH (plus the sbin dirs), as a path to run, or None."""
    found = _which(paths, name, SBIN_DIRS)
    return found[1].as_posix() if found else None


def cli_env(paths: HostPaths, engine: str | None = None) -> dict[str, str]:
    """The environment to run an engine's CLI with (for ``docker``: aimed at the rootless daemon
    when nothing else chooses one, see :func:`_docker_target`)."""
    env = _cli_env(paths)
    return _docker_target(paths, env)[0] if engine == "docker" else env


def _cli_env(paths: HostPaths) -> dict[str, str]:
    """The environment the engines' CLIs run with: ours, with the host's values of ENV_KEYS."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(paths.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(paths.home)
    if paths.runtime_dir is not None:
        env["XDG_RUNTIME_DIR"] = str(paths.runtime_dir)
    if paths.config_home is not None:
        env["XDG_CONFIG_HOME"] = str(paths.config_home)
    env.setdefault("LC_ALL", "C")  # stable, parseable messages
    return env


def _engine_queries(
    paths: HostPaths, env: Mapping[str, str], engines: Iterable[str] = ENGINES
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The engine commands a check always starts, with their environments: ``podman info``,
    ``docker version``. One list for :func:`gather` and :func:`prefetch`."""
    out: dict[str, tuple[list[str], dict[str, str]]] = {}
    podman = _which(paths, "podman") if "podman" in engines else None
    if podman:
        out["podman info"] = ([podman[1].as_posix(), "info", "--format", "json"], dict(env))
    docker = _which(paths, "docker") if "docker" in engines else None
    if docker:
        denv = _docker_target(paths, dict(env))[0]
        d = docker[1].as_posix()
        if _missing_docker_socket(paths, denv) is None:
            out["docker version"] = ([d, "version", "--format", "{{json .}}"], denv)
    return out


def _docker_context(paths: HostPaths) -> tuple[str | None, str | None]:
    """(context name, its docker endpoint host) from DOCKER_CONTEXT or the CLI config."""
    config_dir = Path(paths.getenv("DOCKER_CONFIG") or paths.home / ".docker")
    name = paths.getenv("DOCKER_CONTEXT")
    if not name:
        text = _read(config_dir / "config.json")
        with contextlib.suppress(ValueError, AttributeError):
            name = json.loads(text).get("currentContext") if text else None
    if not name or name == "default":
        return None, None
    meta = config_dir / "contexts/meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    host = None
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        text = _read(meta)
        host = json.loads(text)["Endpoints"]["docker"]["Host"] if text else None
    return name, host


def _docker_target(
    paths: HostPaths, env: Mapping[str, str]
) -> tuple[dict[str, str], str, str | None, str | None]:
    """(env for the docker CLI, note, context name, context host).

    A rootless user often has no DOCKER_HOST (the setup tool only prints it); then the CLI would
    ask the rootful /var/run/docker.sock. Aim it at the rootless socket when nothing (DOCKER_HOST,
    a docker context) chooses another daemon.
    """
    docker_env = dict(env)
    runtime_dir = _runtime_dir(paths)
    docker_sock = runtime_dir / "docker.sock"
    context, context_host = _docker_context(paths)
    note = ""
    if not paths.getenv("DOCKER_HOST") and context is None and _exists(paths.at(docker_sock)):
        docker_env["DOCKER_HOST"] = f"unix://{docker_sock}"
        note = f"DOCKER_HOST unset: asked the rootless socket {docker_sock}"
    return docker_env, note, context, context_host


def _missing_docker_socket(paths: HostPaths, docker_env: Mapping[str, str]) -> str | None:
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
    return None if _exists(paths.at(sock)) else sock


# --------------------------------------- gather: the top level; the sections below follow its order


class _Cmds:
    """Runs the CLIs side by side in a thread pool; each result is a future."""

    def __init__(self, runner: Runner, env: Mapping[str, str], timeout: float) -> None:
        self.runner = runner
        self.env = dict(env)
        self.timeout = timeout
        # Imported here: concurrent.futures (and the logging it pulls in) costs ~9 ms at start-up,
        # which would delay prefetch().
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="rd-host")
        self.ran: list[CmdOutput] = []

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> CmdOutput:
        out = self.runner(argv, timeout=self.timeout, env=env if env is not None else self.env)
        self.ran.append(out)
        return out

    def submit(self, fn: Callable[..., T], *args: object) -> cf.Future[T]:
        return self.pool.submit(fn, *args)

    def cmd(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> cf.Future[CmdOutput]:
        return self.pool.submit(self.call, argv, env)


def gather(
    paths: HostPaths,
    *,
    compose_file: Path | None = None,
    timeout: float = 5.0,
    interfaces: bool = True,
    runner: Runner = run,
    cwd: Path | None = None,
    engines: Iterable[str] | None = None,
) -> HostFacts:
    """Read everything the checks need from the host ``paths`` describes. Never raises for a
    missing engine, CLI or file: those become ``None`` and notes.

    The CLIs run side by side, each with ``timeout``; ``runner`` replaces :func:`run` (tests serve
    captured outputs through it). ``interfaces`` reads each running container's interfaces.

    ``engines`` (a subset of :data:`ENGINES`) reads only what those engines' own verdicts need
    (``probe --engine``): the other engines stay ``None``/empty, and their containers, the user
    manager, the firewall, the compose file and the tool versions no verdict reads are not read.
    """
    want = set(ENGINES if engines is None else engines)
    full = engines is None
    notes: list[str] = []
    sources: list[str] = []
    env = _cli_env(paths)
    runtime_dir = _runtime_dir(paths)

    cli_paths = {
        n: _which(paths, n)
        for n in (*VERSIONED_TOOLS, *ENGINE_CLIS, "systemctl", "nsenter", "dockerd")
    }
    for n in ("newuidmap", "newgidmap", "iptables", "nft"):
        cli_paths[n] = _which(paths, n, SBIN_DIRS)
    versioned = VERSIONED_TOOLS if full else tuple(t for e in sorted(want) for t in ENGINE_TOOLS[e])

    docker_env, docker_target_note, context, context_host = (
        _docker_target(paths, env) if "docker" in want else (env, "", None, None)
    )

    cmds = _Cmds(runner, env, timeout)
    try:
        fut: dict[str, cf.Future[CmdOutput]] = {}
        docker_info: cf.Future[CmdOutput | None] | None = None
        chains: dict[str, cf.Future[tuple[CmdOutput, CmdOutput | None] | None]] = {}
        podman_cli = cli_paths["podman"] if "podman" in want else None
        docker_cli = cli_paths["docker"] if "docker" in want else None
        for key, (argv, qenv) in _engine_queries(paths, env, want).items():
            fut[key] = cmds.cmd(argv, qenv)
        if docker_cli and "docker version" in fut:
            # `docker info` only once `docker version` reached the daemon: with no daemon it
            # would fail the same way, and every Go CLI start costs a core for ~60 ms.
            info_argv = [docker_cli[1].as_posix(), "info", "--format", "{{json .}}"]
            docker_info = cmds.submit(
                _if_answered, cmds, fut["docker version"], info_argv, docker_env
            )
        if docker_cli and full and "docker version" in fut:
            chains["docker"] = cmds.submit(
                _ps_inspect, cmds, docker_cli[1].as_posix(), docker_env, None, fut["docker version"]
            )
        for n in versioned:
            found = cli_paths[n]
            if found:
                fut[f"{n} --version"] = cmds.cmd([found[1].as_posix(), "--version"])
        if cli_paths["systemctl"] and full:
            systemctl = cli_paths["systemctl"][1].as_posix()
            fut["systemctl"] = cmds.cmd([systemctl, "--user", "is-system-running"])
        if cli_paths["iptables"] and full:
            fut["iptables"] = cmds.cmd([cli_paths["iptables"][1].as_posix(), "--version"])

        # Files and /proc while the CLIs run.
        procs = _processes(paths) if full or want & {"docker", "rootlesskit"} else []
        if podman_cli and full:
            # Every running Podman container has a conmon of its owner whose `-c` names it: no
            # `podman ps` round trip, and no podman process at all when nothing runs.
            ids = _conmon_ids(procs, paths.uid)
            chains["podman"] = cmds.submit(_ps_inspect, cmds, podman_cli[1].as_posix(), env, ids)
        host = _prerequisites(paths, notes, sources)
        compose = _compose(compose_file, cwd, notes, sources) if full else None
        conf_files = containers_conf_files(paths) if podman_cli else []
        units = _unit_files(paths, "docker.service") if "docker" in want else []

        def result(key: str) -> CmdOutput | None:
            return fut[key].result() if key in fut else None

        tools = _tools(paths, cli_paths, result, notes)

        systemd_user = (
            _systemd_user(result("systemctl"), paths, runtime_dir, notes) if full else None
        )
        nft = cli_paths["nft"][0] if cli_paths["nft"] else None
        firewall = _firewall(result("iptables"), nft) if full else None

        podman = None
        if podman_cli:
            podman = _podman(
                paths, podman_cli[0], result("podman info"),
                chains["podman"].result() if "podman" in chains else None,
                conf_files, procs, sources,
            )  # fmt: skip
        if podman is not None and "podman" in tools:
            tools["podman"] = replace(tools["podman"], version=podman.version)
        docker = None
        if "docker" in want:
            docker = _docker(
                paths, cli_paths, result("docker version"),
                docker_info.result() if docker_info else None,
                chains["docker"].result() if "docker" in chains else None,
                units, procs, runtime_dir, docker_target_note, context, context_host, sources,
                _missing_docker_socket(paths, docker_env) if docker_cli else None,
            )  # fmt: skip
        rootlesskits: tuple[RootlessKitFacts, ...] = ()
        if "rootlesskit" in want:
            rootlesskits = _standalone_rootlesskits(paths, procs, notes, sources)

        if interfaces and paths.root == Path("/"):  # a fake root's PIDs are not real processes
            owner = paths.uid
            podman, docker = _fill_interfaces(cmds, podman, docker, owner)
    finally:
        cmds.pool.shutdown(wait=False, cancel_futures=True)

    sources.extend(" ".join(c.argv) for c in cmds.ran)
    return replace(
        host,
        docker=docker,
        podman=podman,
        rootlesskits=rootlesskits,
        tools=tools,
        systemd_user=systemd_user,
        firewall=firewall,
        compose=compose,
        sources=tuple(dict.fromkeys(sources)),
        notes=tuple(notes),
    )


def _tools(
    paths: HostPaths,
    cli_paths: Mapping[str, tuple[str, Path] | None],
    result: Callable[[str], CmdOutput | None],
    notes: list[str],
) -> dict[str, Tool]:
    """The tools the checks report: where each is, its ``--version`` (from ``result``), and how
    newuidmap/newgidmap get their privilege."""
    tools: dict[str, Tool] = {}
    for n, found in cli_paths.items():
        if n in _NOT_TOOLS:
            continue
        version = None
        out = result(f"{n} --version")
        if out is not None:
            if out.ok or out.stdout:
                text = out.stdout + out.stderr
                version = _parsed(functools.partial(parse.tool_version, n, text), n, notes)
            else:
                notes.append(out.why())
        if version is None and n == "pasta" and found is not None:
            # Debian's build prints "pasta unknown version"; its package version carries the
            # date ("0.0~git20230309.7c7625d-1"), as podman info reports it too.
            pkg = _dpkg_version(paths, "passt")
            version = parse.tool_version("pasta", pkg) if pkg else None
        setid = _setid_mode(found[1]) if found and n in ("newuidmap", "newgidmap") else None
        tools[n] = Tool(name=n, path=found[0] if found else None, version=version, setid=setid)
    return tools


def _dpkg_version(paths: HostPaths, package: str) -> str | None:
    """An installed Debian package's version, from dpkg's status file (no subprocess)."""
    text = _read(paths.at("/var/lib/dpkg/status"))
    if text is None:
        return None
    for stanza in text.split("\n\n"):
        if stanza.startswith(f"Package: {package}\n") and "Status: install ok installed" in stanza:
            m = re.search(r"(?m)^Version: (\S+)$", stanza)
            return m.group(1) if m else None
    return None


def _ps_inspect(
    cmds: _Cmds,
    cli: str,
    env: Mapping[str, str],
    ids: list[str] | None = None,
    reached: cf.Future[CmdOutput] | None = None,
) -> tuple[CmdOutput, CmdOutput | None] | None:
    """``CLI ps -q --no-trunc`` (unless the running ids are known already) then
    ``CLI inspect IDs`` (None when nothing runs). None when ``reached`` (the engine's first
    query) did not reach the daemon: nothing to list."""
    if reached is not None and not reached.result().ok:
        return None
    if ids is None:
        ps = cmds.call([cli, "ps", "-q", "--no-trunc"], env)
        ids = ps.stdout.split() if ps.ok else []
    else:
        ps = CmdOutput(argv=("conmon", "processes"), code=0, stdout="\n".join(ids))
    if not ids:
        return ps, None
    return ps, cmds.call([cli, "inspect", *ids], env)


def _if_answered(
    cmds: _Cmds, first: cf.Future[CmdOutput], argv: list[str], env: Mapping[str, str]
) -> CmdOutput | None:
    """Run ``argv`` once ``first`` has succeeded; None when it did not."""
    return cmds.call(argv, env) if first.result().ok else None


def _conmon_ids(procs: Sequence[Proc], uid: int) -> list[str]:
    """Container ids of ``uid``'s running Podman containers, from their conmon command lines."""
    ids = []
    for p in procs:
        if p.exe_name == "conmon" and p.uid in (uid, None) and "-c" in p.cmdline[:-1]:
            ids.append(p.cmdline[p.cmdline.index("-c") + 1])
    return ids


# ---------------------------------------------- prerequisites, user manager, firewall, compose file


def _prerequisites(paths: HostPaths, notes: list[str], sources: list[str]) -> HostFacts:
    xdg = paths.getenv("XDG_RUNTIME_DIR")
    runtime_dir = _runtime_dir(paths)
    if not _is_dir(paths.at(runtime_dir)):
        notes.append(f"runtime dir {runtime_dir} does not exist (no login session or linger)")
    sources.extend(("/etc/subuid", "/etc/subgid", "/proc/sys/user/max_user_namespaces"))
    userns_clone_path = paths.at("/proc/sys/kernel/unprivileged_userns_clone")
    return HostFacts(
        user=paths.user,
        uid=paths.uid,
        sudo_user=paths.getenv("SUDO_USER") or None,
        subuid=_subids(paths, "/etc/subuid"),
        subgid=_subids(paths, "/etc/subgid"),
        max_user_namespaces=_read_int(paths.at("/proc/sys/user/max_user_namespaces")),
        userns_clone=_read_int(userns_clone_path),
        dev_net_tun=_dev_net_tun(paths),
        unprivileged_port_start=_read_int(
            paths.at("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        ),
        linger=_exists(paths.at(f"/var/lib/systemd/linger/{paths.user}")) if paths.user else None,
        xdg_runtime_dir=xdg,
    )


def _subids(paths: HostPaths, file: str) -> tuple[tuple[int, int], ...] | None:
    """(start, count) ranges of this user in /etc/subuid or /etc/subgid, by name or by UID."""
    text = _read(paths.at(file))
    if text is None:
        return None
    keys = {paths.user, str(paths.uid)} - {""}
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in keys and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((int(parts[1]), int(parts[2])))
    return tuple(ranges)


def _setid_mode(real: Path) -> str:
    """How newuidmap gets its privilege: "setuid", "file caps", or "neither"."""
    try:
        st = real.stat()
    except OSError:
        return "neither"
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return "setuid"
    try:
        if os.getxattr(real, "security.capability"):
            return "file caps"
    except OSError:
        pass
    return "neither"


def _dev_net_tun(paths: HostPaths) -> Literal["ok", "missing", "no-access"]:
    tun = paths.at("/dev/net/tun")
    try:
        st = tun.stat()
    except OSError:
        return "missing"
    if paths.uid == os.geteuid():
        return "ok" if os.access(tun, os.R_OK | os.W_OK) else "no-access"
    # Asked about another user (root running for them): judge by the mode bits.
    if paths.uid == 0:
        return "ok"
    if st.st_uid == paths.uid:
        bits = (st.st_mode >> 6) & 0o7
    else:
        try:
            groups = set(os.getgrouplist(paths.user, pwd.getpwnam(paths.user).pw_gid))
        except (KeyError, OSError):
            groups = set()
        bits = (st.st_mode >> 3) & 0o7 if st.st_gid in groups else st.st_mode & 0o7
    return "ok" if bits & 0o6 == 0o6 else "no-access"


def _systemd_user(
    out: CmdOutput | None, paths: HostPaths, runtime_dir: Path, notes: list[str]
) -> bool | None:
    """Is a user manager reachable? ``systemctl --user is-system-running`` prints its state (exit
    code non-zero for "degraded"); without systemctl, the user bus socket is the hint."""
    if out is not None:
        state = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if state in SYSTEMD_STATES:
            return True
        if out.error:
            notes.append(out.why())
            return None
        return False
    return _exists(paths.at(runtime_dir / "bus")) or _exists(
        paths.at(runtime_dir / "systemd/private")
    )


def _firewall(iptables: CmdOutput | None, nft: str | None) -> str | None:
    text = (iptables.stdout + iptables.stderr) if iptables is not None and iptables.ok else ""
    if "(legacy)" in text:
        return "iptables-legacy"
    if "(nf_tables)" in text:
        return "iptables-nft"
    if nft:
        return "nftables"
    return None


def find_compose(directory: Path) -> Path | None:
    """The compose file ``docker compose`` would pick in ``directory`` (COMPOSE_NAMES order)."""
    return next((directory / n for n in COMPOSE_NAMES if _is_file(directory / n)), None)


def _compose(
    compose_file: Path | None, cwd: Path | None, notes: list[str], sources: list[str]
) -> ComposeFacts | None:
    """The compose file given (unreadable: a DoctorError, it is bad input), else the one in the
    working directory (unreadable: ComposeFacts.error, reported by the COMPOSE-FILE check)."""
    given = compose_file is not None
    if compose_file is None:
        compose_file = find_compose(cwd or Path.cwd())
        if compose_file is None:
            return None
    text = _read(compose_file)
    try:
        if text is None:
            raise DoctorError("not readable; check its permissions")
        facts = parse.compose(text, str(compose_file))
    except DoctorError as e:
        if given:
            raise DoctorError(f"{compose_file}: {e}") from None
        return ComposeFacts(path=str(compose_file), error=str(e))
    sources.append(str(compose_file))
    return facts


# --------------------------------------------------------------------------- processes


def _processes(paths: HostPaths) -> list[Proc]:
    """Every process: psutil on the real root, else the fake ``root/proc``."""
    return _live_processes() if paths.root == Path("/") else _proc_dir_processes(paths.at("/proc"))


def _live_processes() -> list[Proc]:
    """psutil's process list without our own children: they are the commands this check runs
    side by side (``rootlesskit --version`` is not a RootlessKit instance)."""
    import psutil

    procs = []
    me = os.getpid()
    for p in psutil.process_iter(["pid", "ppid", "uids", "cmdline"]):
        info = p.info
        if info.get("ppid") == me:
            continue
        uids = info.get("uids")
        procs.append(
            Proc(
                pid=int(info["pid"]),
                ppid=int(info.get("ppid") or 0),
                uid=int(uids.real) if uids is not None else None,
                cmdline=tuple(info.get("cmdline") or ()),
            )
        )
    return procs


def _proc_dir_processes(proc_dir: Path) -> list[Proc]:
    """The processes of a (fake) ``/proc``: ``cmdline`` and the PPid/Uid lines of ``status``."""
    try:
        entries = sorted(
            (e for e in proc_dir.iterdir() if e.name.isdigit()), key=lambda e: int(e.name)
        )
    except OSError:
        return []
    procs = []
    for entry in entries:
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        status = _read(entry / "status") or ""
        status_of = dict(
            line.split(":", 1) for line in status.splitlines() if ":" in line
        )  # "PPid:\t1", "Uid:\t1000\t1000\t1000\t1000"
        ppid = int(status_of["PPid"].strip()) if status_of.get("PPid", "").strip().isdigit() else 0
        uid_field = status_of.get("Uid", "").split()
        uid = int(uid_field[0]) if uid_field and uid_field[0].isdigit() else None
        cmdline = tuple(a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0") if raw)
        procs.append(Proc(pid=int(entry.name), ppid=ppid, uid=uid, cmdline=cmdline))
    return procs


def _netns_ino(paths: HostPaths, path: str | Path) -> int | None:
    """The inode of a network namespace (``/proc/PID/ns/net`` or a bind-mounted netns file)."""
    try:
        return paths.at(path).stat().st_ino
    except (OSError, ValueError):
        return None


def _is_rootlesskit(p: Proc) -> bool:
    return p.exe_name in ("rootlesskit", "docker-rootlesskit")


def _top_rootlesskits(paths: HostPaths, procs: Sequence[Proc]) -> list[Proc]:
    """This user's rootlesskit parents (the re-exec'd ``/proc/self/exe`` children are skipped)."""
    by_pid = {p.pid: p for p in procs}
    found = []
    for p in procs:
        if not _is_rootlesskit(p) or (p.uid is not None and p.uid != paths.uid):
            continue
        parent = by_pid.get(p.ppid)
        if parent is not None and _is_rootlesskit(parent):
            continue
        found.append(p)
    return found


# --------------------------------------------------------------------------- Podman


def _conf_dir_files(d: Path) -> list[Path]:
    try:
        return sorted(
            (p for p in d.iterdir() if p.name.endswith(".conf") and _is_file(p)),
            key=lambda p: p.name,
        )
    except OSError:
        return []


def containers_conf_files(paths: HostPaths) -> list[Path]:
    """containers.conf files in Podman's load order (containers/common ``systemConfigs``)."""
    override = paths.getenv("CONTAINERS_CONF_OVERRIDE")
    env_conf = paths.getenv("CONTAINERS_CONF")
    if env_conf:
        files = [paths.at(env_conf)]
    else:
        files = [
            paths.at("/usr/share/containers/containers.conf"),
            paths.at("/etc/containers/containers.conf"),
            *_conf_dir_files(paths.at("/etc/containers/containers.conf.d")),
        ]
        if paths.uid > 0:
            rootless = paths.at("/etc/containers/containers.rootless.conf")
            files += [
                rootless,
                *_conf_dir_files(paths.at("/etc/containers/containers.rootless.conf.d")),
                *_conf_dir_files(
                    paths.at(f"/etc/containers/containers.rootless.conf.d/{paths.uid}")
                ),
            ]
        user = paths.config_dir / "containers"
        files += [user / "containers.conf", *_conf_dir_files(user / "containers.conf.d")]
    if override:
        files.append(paths.at(override))
    # Keep an existing but unreadable file: Podman fails on it too, and _podman notes it.
    return [f for f in files if _exists(f) and not _is_dir(f)]


def _podman(
    paths: HostPaths,
    cli: str,
    info: CmdOutput | None,
    chain: tuple[CmdOutput, CmdOutput | None] | None,
    conf_files: Sequence[Path],
    procs: Sequence[Proc],
    sources: list[str],
) -> PodmanFacts:
    notes: list[str] = []
    facts = PodmanFacts()
    if info is not None and info.ok:
        parsed = _parsed(lambda: parse.podman_info(info.stdout), "podman info", notes)
        facts = parsed or facts
    elif info is not None:
        notes.append(info.why())

    texts = _read_all(conf_files, notes)
    sources.extend(name for name, _ in texts)
    conf = _parsed(lambda: parse.containers_conf(texts), "containers.conf", notes) or {}

    containers = _containers("podman", chain, parse.podman_inspect, notes)
    containers = tuple(_podman_port_handler(paths, c, procs) for c in containers)
    return replace(
        facts,
        cli=cli,
        conf=dict(conf),
        conf_files=tuple(name for name, _ in texts),
        containers=containers,
        notes=(*facts.notes, *notes),
    )


def _containers(
    engine: str,
    chain: tuple[CmdOutput, CmdOutput | None] | None,
    parser: Callable[[str], list[ContainerFacts]],
    notes: list[str],
) -> tuple[ContainerFacts, ...]:
    if chain is None:
        return ()
    ps, inspect = chain
    if not ps.ok:
        notes.append(ps.why())
        return ()
    if inspect is None:
        return ()
    if not inspect.ok and not inspect.stdout.strip():
        notes.append(inspect.why())  # a container that exited between ps and inspect: keep the rest
        return ()
    return tuple(_parsed(lambda: parser(inspect.stdout), f"{engine} inspect", notes) or ())


def _podman_port_handler(
    paths: HostPaths, c: ContainerFacts, procs: Sequence[Proc]
) -> ContainerFacts:
    """The port handler from the processes when ``CreateCommand`` did not tell (the parser
    then guessed Podman's default, which containers.conf may have changed).

    slirp4netns with ``--api-socket .../<id>.net`` (or into this container's netns with an API
    socket) = handler slirp4netns; a ``rootlessport-child`` in the container's netns = Podman's
    rootlessport (option name ``port_handler=rootlesskit`` on slirp4netns networks); a ``pasta``
    process into its netns = pasta.
    """
    explicit = any("port_handler=" in a for a in (*c.create_command, c.network_mode or ""))
    if explicit or c.pid is None or not c.ports:
        return c
    ino = _netns_ino(paths, f"/proc/{c.pid}/ns/net")
    mode = c.network_mode or ""
    handler = None
    for p in procs:
        if p.uid is not None and p.uid != paths.uid:
            continue
        name = p.exe_name
        if name == "slirp4netns":
            api = _flag(p.cmdline, "--api-socket", "-a")
            if api and c.id and c.id in api:
                handler = "slirp4netns"
                break
            if api and ino is not None and _slirp_target_ino(paths, p.cmdline) == ino:
                handler = "slirp4netns"
                break
        elif name == "rootlessport-child" and ino is not None:
            if _netns_ino(paths, f"/proc/{p.pid}/ns/net") == ino:
                handler = "rootlesskit" if mode.startswith("slirp4netns") else "rootlessport"
                break
        elif (
            name in ("pasta", "passt")
            and ino is not None
            and _slirp_target_ino(paths, p.cmdline) == ino
        ):
            handler = "pasta"
            break
    return replace(c, port_handler=handler) if handler else c


def _flag(argv: Sequence[str], *names: str) -> str | None:
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def _slirp_target_ino(paths: HostPaths, argv: Sequence[str]) -> int | None:
    """The netns a slirp4netns/pasta process serves: ``--netns-type=path PATH tap0``,
    ``PID tap0``, or pasta's ``--netns PATH``."""
    ns = _flag(argv, "--netns")
    if ns:
        return _netns_ino(paths, ns)
    positional = [a for a in argv[1:] if not a.startswith("-")]
    # slirp4netns [OPTIONS] PID|PATH TAPNAME: the target is the second to last positional word.
    if len(positional) >= 2:
        target = positional[-2]
        if target.isdigit():
            return _netns_ino(paths, f"/proc/{target}/ns/net")
        if target.startswith("/"):
            return _netns_ino(paths, target)
    return None


# --------------------------------------------------------------------------- Docker


def _unit_files(paths: HostPaths, unit: str) -> list[Path]:
    """A user unit and its drop-ins in systemd's order: the unit (first found on the search
    path), then every ``unit.d/*.conf`` sorted by file name, a name in a higher directory
    masking the same name lower down."""
    dirs = [paths.config_dir / "systemd/user", *(paths.at(d) for d in USER_UNIT_DIRS)]
    main = next((d / unit for d in dirs if _is_file(d / unit)), None)
    dropins: dict[str, Path] = {}
    for d in dirs:
        try:
            names = sorted(p for p in (d / f"{unit}.d").iterdir() if p.name.endswith(".conf"))
        except OSError:
            continue
        for p in names:
            dropins.setdefault(p.name, p)
    return ([main] if main else []) + [dropins[n] for n in sorted(dropins)]


def _docker(
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
    for p in _top_rootlesskits(paths, procs):
        argv = _rootlesskit_from_proc(p, [])
        if argv is not None and "dockerd" in (argv.child or ""):
            rk_procs.append(p)
    dockerd_procs = [p for p in procs if p.exe_name == "dockerd" and p.uid == paths.uid]
    daemon_json = paths.config_dir / "docker/daemon.json"
    sock = runtime_dir / "docker.sock"
    traces = [
        docker_cli is not None,
        cli_paths["dockerd"] is not None,
        bool(units),
        _is_file(daemon_json),
        _exists(paths.at(sock)),
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
            v = _parsed(lambda: parse.docker_version(version.stdout), "docker version", notes)
        else:
            notes.append(version.why())
    if info is not None:
        if info.ok:
            i = _parsed(lambda: parse.docker_info(info.stdout), "docker info", notes)
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
    unit_texts = _read_all(units, notes)
    sources.extend(name for name, _ in unit_texts)
    unit_env: dict[str, str] = {}
    if unit_texts:
        unit_env = (
            _parsed(lambda: parse.unit_environment(unit_texts), "docker.service", notes) or {}
        )
    configured = {k: v for k, v in unit_env.items() if k.startswith("DOCKERD_ROOTLESS_")}

    userland_proxy = None
    daemon_json_path = None
    if _is_file(daemon_json):
        daemon_json_path = str(daemon_json)
        sources.append(daemon_json_path)
        text = _read(daemon_json) or ""
        cfg = _parsed(lambda: parse.daemon_json(text), str(daemon_json), notes) or {}
        value = cfg.get("userland-proxy")
        userland_proxy = value if isinstance(value, bool) else None

    # Running: Docker ≥ 25 keeps RootlessKit state in $XDG_RUNTIME_DIR/dockerd-rootless; older
    # ones in /tmp/rootlesskitNNN unless the launcher got --state-dir.
    hint = configured.get("DOCKERD_ROOTLESS_ROOTLESSKIT_STATE_DIR")
    if hint is None and _is_dir(paths.at(runtime_dir / "dockerd-rootless")):
        hint = str(runtime_dir / "dockerd-rootless")
    running = None
    if rk_procs or (v is not None and v.running is not None) or hint:
        running = _rootlesskit_facts(
            paths, rk_procs[0] if rk_procs else None, procs, notes, sources,
            state_dir_hint=hint if not rk_procs else None,
            extra=[v.running if v is not None else None],
        )  # fmt: skip
        if rk_procs and hint and running is not None and running.state_dir is None:
            running = _merge_rk([running, *_state_dir_facts(paths, hint, notes, sources)])
    if len(rk_procs) > 1:
        notes.append(f"{len(rk_procs)} rootless dockerd instances run; read pid {rk_procs[0].pid}")

    # An unreachable daemon already has its note; `docker ps` would only repeat it.
    containers = _containers(
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
        containers=containers,
        notes=tuple(notes),
    )


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
    """Is the daemon the CLI asks rootless, and why: the most direct evidence decides, the
    weaker hints only fill in an unknown (docker info's security options, then docker version's
    rootlesskit component, then a rootlesskit running dockerd, DOCKER_HOST, the socket)."""
    reasons: list[str] = []
    rootless: bool | None = None
    if info is not None and info.rootless is not None:
        rootless = info.rootless
        reasons.append(
            "docker info: " + ("rootless" if info.rootless else "no rootless") + " security option"
        )
    if version is not None and version.rootless:
        rootless = True
        reasons.append("docker version lists a rootlesskit component")
    if rk_procs:
        rootless = True if rootless is None else rootless
        reasons.append(
            f"rootlesskit (pid {rk_procs[0].pid}) runs dockerd for {paths.user or paths.uid}"
        )
    host = paths.getenv("DOCKER_HOST") or context_host or ""
    if host.startswith(f"unix://{runtime_dir}/"):
        rootless = True if rootless is None else rootless
        reasons.append(f"DOCKER_HOST {host} is in XDG_RUNTIME_DIR")
    if context:
        reasons.append(f"docker context {context}" + (f" ({context_host})" if context_host else ""))
    sock = runtime_dir / "docker.sock"
    if _exists(paths.at(sock)):
        rootless = True if rootless is None else rootless
        reasons.append(f"socket {sock} exists")
    if target_note:
        reasons.append(target_note)
    return rootless, reasons


# -------------------------------------------------------- RootlessKit: process, state dir, api.sock


def _standalone_rootlesskits(
    paths: HostPaths, procs: Sequence[Proc], notes: list[str], sources: list[str]
) -> tuple[RootlessKitFacts, ...]:
    """This user's rootlesskit instances that do not run dockerd."""
    found = []
    for p in _top_rootlesskits(paths, procs):
        argv = _rootlesskit_from_proc(p, notes)
        if argv is None or "dockerd" in (argv.child or ""):
            continue
        facts = _rootlesskit_facts(paths, p, procs, notes, sources)
        if facts is not None:
            found.append(facts)
    return tuple(found)


def _rootlesskit_facts(
    paths: HostPaths,
    proc: Proc | None,
    procs: Sequence[Proc],
    notes: list[str],
    sources: list[str],
    *,
    state_dir_hint: str | None = None,
    extra: Iterable[RootlessKitFacts | None] = (),
) -> RootlessKitFacts | None:
    """One RootlessKit from its process, its state dir and any ``extra`` (e.g. docker version)."""
    argv_facts = _rootlesskit_from_proc(proc, notes) if proc is not None else None
    extra = list(extra)
    state_dir = (
        (argv_facts.state_dir if argv_facts else None)
        or state_dir_hint
        or next((f.state_dir for f in extra if f is not None and f.state_dir), None)
    )
    if state_dir is None:
        state_dir = _tmp_state_dir(paths, proc.pid if proc else None, procs)
    from_dir = _state_dir_facts(paths, state_dir, notes, sources) if state_dir else []
    return _merge_rk([*from_dir, argv_facts, *extra])


def _rootlesskit_from_proc(p: Proc, notes: list[str]) -> RootlessKitFacts | None:
    facts = _parsed(lambda: parse.rootlesskit_argv(p.cmdline), f"rootlesskit pid {p.pid}", notes)
    if facts is None:
        return None
    return replace(facts, pid=p.pid, source="command line")


def _merge_rk(facts: Iterable[RootlessKitFacts | None]) -> RootlessKitFacts | None:
    """Fill each field from the first source that knows it (most direct source first)."""
    present = [f for f in facts if f is not None]
    if not present:
        return None
    known = {
        f.name: next((v for r in present if (v := getattr(r, f.name)) is not None), None)
        for f in fields(RootlessKitFacts)
        if f.name != "source"
    }
    return RootlessKitFacts(
        **known, source=" + ".join(dict.fromkeys(f.source for f in present if f.source))
    )


def _tmp_state_dir(paths: HostPaths, rk_pid: int | None, procs: Sequence[Proc]) -> str | None:
    """RootlessKit < Docker 25 keeps state in a random ``/tmp/rootlesskitNNN`` owned by the user.

    With a PID, pick the dir whose ``child_pid`` is a child of it; else the newest one.
    """
    ppid_of = {p.pid: p.ppid for p in procs}
    candidates: list[tuple[float, str]] = []
    try:
        entries = list(paths.at("/tmp").glob("rootlesskit*"))
    except OSError:
        return None
    for d in entries:
        try:
            st = d.stat()
        except OSError:
            continue
        if not _is_dir(d) or (paths.root == Path("/") and st.st_uid != paths.uid):
            continue
        host = f"/tmp/{d.name}"
        child = _read_int(d / "child_pid")
        if rk_pid is not None and child is not None and ppid_of.get(child) == rk_pid:
            return host
        if _exists(d / "api.sock"):
            candidates.append((st.st_mtime, host))
    if rk_pid is not None and len(candidates) != 1:
        return None  # several daemons' dirs and none matched: do not guess
    return max(candidates)[1] if candidates else None


def _state_dir_facts(
    paths: HostPaths, state_dir: str, notes: list[str], sources: list[str]
) -> list[RootlessKitFacts]:
    """What a RootlessKit state dir shows: the port driver's socket file and api.sock's info."""
    real = paths.at(state_dir)
    found: list[RootlessKitFacts] = []
    api = real / "api.sock"
    if _exists(api):
        if _is_socket(api):
            body, err = _api_get(api)
            if body is not None:
                sources.append(f"{api} GET /v1/info")
                info = _parsed(lambda: parse.rootlesskit_api_info(body), f"{api} /v1/info", notes)
                if info is not None:
                    found.append(replace(info, state_dir=state_dir, source="api.sock"))
            else:
                notes.append(f"RootlessKit API not readable: {err}")
        else:
            notes.append(f"{api} is not a socket")
    # The port driver's own socket tells the running driver without an API call (domain.md).
    port_driver = None
    if _exists(real / ".bp.sock"):
        port_driver = "builtin"
    elif _exists(real / ".s4nn.sock"):
        port_driver = "slirp4netns"
    if port_driver is not None:
        found.append(
            RootlessKitFacts(state_dir=state_dir, port_driver=port_driver, source="state dir")
        )
    elif _is_dir(real):
        found.append(RootlessKitFacts(state_dir=state_dir, source="state dir"))
    return found


def _api_get(
    sock: Path, url: str = "/v1/info", timeout: float = API_TIMEOUT
) -> tuple[str | None, str]:
    """GET ``url`` over RootlessKit's api.sock: (body, error)."""
    status, body, err = api_request(sock, "GET", url, timeout=timeout)
    if err:
        return None, err
    if status != 200:
        return None, f"{sock}: GET {url} answered {status}: {body.strip()[:200]!r}"
    return body, ""


def api_request(
    sock: Path, method: str, url: str, body: object = None, timeout: float = API_TIMEOUT
) -> tuple[int, str, str]:
    """One request to RootlessKit's REST API on ``sock`` (HTTP/1.0, host ``rootlesskit``, the API
    ``rootlessctl`` speaks; ``body`` is sent as JSON): (status, body, error). Never raises."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd: int | None = None
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {url} HTTP/1.0\r\nHost: rootlesskit\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    try:
        s.settimeout(timeout)
        target = str(sock)
        if len(target.encode()) > 100:  # sun_path holds 108 bytes: reach it through an O_PATH fd
            dir_fd = os.open(sock.parent, os.O_PATH)
            target = f"/proc/self/fd/{dir_fd}/{sock.name}"
        s.connect(target)
        s.sendall(head.encode() + b"\r\n" + payload)
        data = b""
        while len(data) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return 0, "", f"{sock}: {e.strerror or e}"
    finally:
        s.close()
        if dir_fd is not None:
            os.close(dir_fd)
    head_b, _, answer = data.partition(b"\r\n\r\n")
    status = head_b.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return 0, "", f"{sock}: {method} {url} answered {status or 'nothing'!r}"
    return int(parts[1]), answer.decode(errors="replace"), ""


def rootlesskit_child_pid(state_dir: str | Path) -> tuple[int | None, str]:
    """The PID of a RootlessKit's child (whose namespaces the containers share): ``childPID`` of
    ``GET /v1/info``, else the ``child_pid`` file of its state dir. (pid, why not)."""
    body, err = _api_get(Path(state_dir, "api.sock"))
    if body is not None:
        with contextlib.suppress(ValueError, AttributeError):
            child = json.loads(body).get("childPID")
            if isinstance(child, int):
                return child, ""
    child_file = Path(state_dir, "child_pid")
    child = _read_int(child_file)
    if child is None:
        return None, err or f"{child_file}: not readable"
    return child, ""


# --------------------------------------------------------------------------- container interfaces


def _fill_interfaces(
    cmds: _Cmds, podman: PodmanFacts | None, docker: DockerFacts | None, owner: int
) -> tuple[PodmanFacts | None, DockerFacts | None]:
    """Read every running container's interfaces, side by side."""

    def read(c: ContainerFacts) -> ContainerFacts:
        if c.pid is None or c.pid <= 0:
            return replace(c, interfaces_error="not running")
        ifaces, why = container_interfaces(c.pid, owner_uid=owner, timeout=cmds.timeout)
        return replace(c, interfaces=ifaces, interfaces_error=why)

    def all_of(cs: tuple[ContainerFacts, ...]) -> tuple[ContainerFacts, ...]:
        return tuple(cmds.pool.map(read, cs))

    if podman is not None and podman.containers:
        podman = replace(podman, containers=all_of(podman.containers))
    if docker is not None and docker.containers:
        docker = replace(docker, containers=all_of(docker.containers))
    return podman, docker


def container_interfaces(
    pid: int, *, owner_uid: int | None = None, timeout: float = 3.0
) -> tuple[tuple[Interface, ...] | None, str]:
    """The interfaces and CIDR addresses in the network namespace of process ``pid``.

    As root: pyroute2 ``NetNS("/proc/PID/ns/net")``. As the unprivileged owner the kernel refuses
    ``setns`` into a netns owned by the container's user namespace, so a child first enters that
    user namespace: ``nsenter -U -n --preserve-credentials -t PID ip -j addr`` (``ip`` from the
    host's /usr; a pyroute2 script with this Python when ``ip`` is missing). Returns
    ``(None, reason)`` when neither works.
    """
    euid = os.geteuid()
    if euid == 0:
        try:
            return _interfaces_pyroute2(pid), ""
        except Exception as e:  # pyroute2 raises many types (NetlinkError, OSError, ...)
            return None, f"pid {pid}: cannot read its network namespace: {e}"
    if owner_uid is not None and owner_uid != euid:
        return None, f"pid {pid} belongs to uid {owner_uid}; run as that user or as root"
    enter = ["nsenter", "-U", "-n", "--preserve-credentials", "-t", str(pid)]
    tries = [
        [*enter, "ip", "-j", "addr", "show"],
        [*enter, sys.executable, "-c", _PYROUTE2_DUMP],
    ]
    reasons = []
    for argv in tries:
        out = run(argv, timeout=timeout)
        if out.ok:
            try:
                return _interfaces_from_ip_json(out.stdout), ""
            except (ValueError, KeyError, TypeError) as e:
                reasons.append(f"`{' '.join(argv[:8])}`: unreadable output ({e})")
                continue
        reasons.append(out.why())
        if out.error == "not installed":
            break  # no nsenter (both tries run through it)
        if "No such process" in out.stderr or "Operation not permitted" in out.stderr:
            break  # the namespace is gone or refused; another reader will not do better
    return None, "; ".join(reasons)


# Run inside the container's namespaces when ``ip`` is missing: prints ``ip -j addr`` JSON.
_PYROUTE2_DUMP = """\
import json
from pyroute2 import IPRoute
with IPRoute() as ipr:
    names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}
    out = {i: {"ifindex": i, "ifname": n, "addr_info": []} for i, n in names.items()}
    for a in ipr.get_addr():
        local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
        if a["index"] in out and local:
            out[a["index"]]["addr_info"].append({"local": local, "prefixlen": a["prefixlen"]})
print(json.dumps([out[i] for i in sorted(out)]))
"""


def _interfaces_from_ip_json(text: str) -> tuple[Interface, ...]:
    links = json.loads(text)
    result = []
    for link in links:
        addrs = tuple(
            f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if "local" in a
        )
        result.append(Interface(name=str(link["ifname"]), addresses=addrs))
    return tuple(result)


def _interfaces_pyroute2(pid: int) -> tuple[Interface, ...]:
    from pyroute2 import NetNS  # slow import; only here

    ns = NetNS(f"/proc/{pid}/ns/net")
    try:
        names: dict[int, str] = {}
        for link in ns.get_links():
            names[int(link["index"])] = str(link.get_attr("IFLA_IFNAME"))
        addrs: dict[int, list[str]] = {i: [] for i in names}
        for a in ns.get_addr():
            local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if local and int(a["index"]) in addrs:
                addrs[int(a["index"])].append(f"{local}/{a['prefixlen']}")
    finally:
        ns.close()
    return tuple(Interface(name=names[i], addresses=tuple(addrs[i])) for i in sorted(names))


# ---------------------------------------------------------------- this host's layout, for the probe
# What the probe builds its listener from: the host's addresses, its top-level directories, a
# python3 under /usr and a static busybox. Real root only (the probe runs real processes).

ROOT_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def local_addresses() -> list[tuple[str, str]]:
    """(interface, address) for every IPv4/IPv6 address of this host, kernel order (psutil)."""
    import psutil

    out: list[tuple[str, str]] = []
    for name, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.append((name, a.address.split("%", 1)[0]))
    return out


def is_local_address(addr: str) -> bool:
    """Is ``addr`` an address of this host? A socket binds to it only then (EADDRNOTAVAIL
    otherwise; net.ipv4.ip_nonlocal_bind aside). Without psutil: ``probe --source`` asks only
    this, and psutil's import costs ~8 ms of the CLI's start."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
    except (OSError, ValueError, OverflowError):
        return False
    return True


def root_layout() -> dict[str, str | None]:
    """The top-level program/library dirs of ``/`` that exist: name → symlink target (merged
    /usr, e.g. ``bin`` → ``usr/bin``), or None for a real directory."""
    out: dict[str, str | None] = {}
    for name in ROOT_DIRS:
        p = Path("/", name)
        if p.is_symlink():
            out[name] = os.readlink(p)
        elif _is_dir(p):
            out[name] = None
    return out


def usr_python() -> str | None:
    """A python3 under /usr (so visible in a container that mounts the host's /usr), or None."""
    import shutil

    for cand in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if cand and cand.startswith("/usr/") and os.access(cand, os.X_OK):
            return cand
    return None


def static_busybox() -> str | None:
    """The host's busybox when it is statically linked (so it runs in any image), else None."""
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        try:
            with open(cand, "rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            continue
        if _static_elf(head):
            return cand
    return None


def _static_elf(head: bytes) -> bool:
    """True for a 64-bit ELF image without a PT_INTERP program header (no dynamic loader)."""
    import struct

    if head[:4] != b"\x7fELF" or head[4] != 2:  # only 64-bit
        return False
    order = "<" if head[5] == 1 else ">"
    (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
    phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(head):
            return False
        (ptype,) = struct.unpack_from(order + "I", head, off)
        if ptype == 3:  # PT_INTERP
            return False
    return True
