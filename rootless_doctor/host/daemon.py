"""The running rootless dockerd as a process: its RootlessKit PID, its launcher script, the
DOCKERD_ROOTLESS_* environment it was started with, and whether a systemd user manager runs it.
What `fix docker --restart` needs where no user manager answers (apply.restart_docker_by_hand
does the restart)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..model import DockerLaunch, HostPaths, Proc
from .identity import locate
from .system import processes

SCRIPT = "dockerd-rootless.sh"
# Where packages put the launcher when it is not on PATH: Debian's docker.io ships it under
# contrib (not on PATH); docker-ce-rootless-extras installs /usr/bin.
SCRIPT_DIRS = ("/usr/share/docker.io/contrib", "/usr/bin", "/usr/local/bin")
_ENV_PREFIX = "DOCKERD_ROOTLESS_"
MAX_ENVIRON = 256 * 1024  # /proc/PID/environ of a launcher is a few KiB


def _prog(p: Proc) -> str:
    return Path(p.cmdline[0]).name if p.cmdline else ""


def _launched(p: Proc) -> bool:
    """The top RootlessKit of dockerd-rootless.sh (its re-exec'd child is /proc/self/exe)."""
    return _prog(p) == "rootlesskit" and any(a.endswith(SCRIPT) for a in p.cmdline[1:])


def docker_launch(paths: HostPaths, procs: Sequence[Proc] | None = None) -> DockerLaunch:
    procs = processes(paths) if procs is None else procs
    mine = [p for p in procs if p.uid == paths.uid and _launched(p)]
    found = locate(paths, SCRIPT, SCRIPT_DIRS)
    script = found[0] if found else None
    if len(mine) > 1:
        pids = ", ".join(str(p.pid) for p in mine)
        return DockerLaunch(
            script=script,
            problem=f"{len(mine)} rootless dockerd instances of this user run (PIDs {pids}): "
            "stop the extra ones first",
        )
    if not mine:
        problem = "" if script else f"{SCRIPT} not found on PATH or in {', '.join(SCRIPT_DIRS)}"
        return DockerLaunch(script=script, problem=problem)
    rk = mine[0]
    script = next((a for a in rk.cmdline[1:] if a.endswith(SCRIPT)), script)
    by_pid = {p.pid: p for p in procs}
    managed = ""
    parent = by_pid.get(rk.ppid)
    if parent is not None and _prog(parent) == "systemd":
        managed = f"{' '.join(parent.cmdline[:2])} (PID {parent.pid})"
    return DockerLaunch(
        pid=rk.pid,
        script=script,
        env=_launch_env(paths, rk.pid),
        managed_by=managed,
        problem=(
            f"it is run by {managed}, which this session cannot reach: log in as the user "
            "(ssh, or `machinectl shell USER@`) and `systemctl --user restart docker`"
            if managed
            else ""
        ),
    )


def _launch_env(paths: HostPaths, pid: int) -> dict[str, str]:
    """The DOCKERD_ROOTLESS_* variables of a process of this user (/proc/PID/environ)."""
    try:
        with paths.at(f"/proc/{pid}/environ").open("rb") as f:
            raw = f.read(MAX_ENVIRON)
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, eq, value = item.decode(errors="replace").partition("=")
        if eq and key.startswith(_ENV_PREFIX):
            env[key] = value
    return env
