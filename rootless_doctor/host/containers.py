"""Running containers: the ``ps`` → ``inspect`` chain of an engine's CLI, and the interfaces
inside the containers' network namespaces, all read in one pass by one helper process
(:mod:`.netns_dump`, run as a script) rather than an ``nsenter``/``ip`` exec per container."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import CmdOutput, ContainerFacts, DockerFacts, Interface, PodmanFacts
from .files import parsed
from .runner import Cmds, Runner, run

if TYPE_CHECKING:
    from .runner import Task


def ps_inspect(
    cmds: Cmds,
    cli: str,
    env: Mapping[str, str],
    ids: list[str] | None = None,
    reached: Task[CmdOutput] | None = None,
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


def engine_containers(
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
    return tuple(parsed(lambda: parser(inspect.stdout), f"{engine} inspect", notes) or ())


def fill_interfaces(
    cmds: Cmds,
    podman: PodmanFacts | None,
    docker: DockerFacts | None,
    owner: int,
    wanted: Callable[[ContainerFacts], bool] | None = None,
) -> tuple[PodmanFacts | None, DockerFacts | None]:
    """Read the interfaces of the running containers ``wanted`` picks (all when None), in one
    pass; the others stay unread (``interfaces`` None, no error: no check asked)."""
    engines = [e for e in (podman, docker) if e is not None]
    pick = [c for e in engines for c in e.containers if wanted is None or wanted(c)]
    pids = [c.pid for c in pick if c.pid is not None and c.pid > 0]
    answers = read_interfaces(pids, owner_uid=owner, timeout=cmds.timeout)
    picked = {id(c) for c in pick}

    def fill(c: ContainerFacts) -> ContainerFacts:
        if id(c) not in picked:
            return c
        if c.pid is None or c.pid <= 0:
            return replace(c, interfaces_error="not running")
        ifaces, why = answers.get(c.pid, (None, f"pid {c.pid}: not read"))
        return replace(c, interfaces=ifaces, interfaces_error=why)

    if podman is not None and podman.containers:
        podman = replace(podman, containers=tuple(fill(c) for c in podman.containers))
    if docker is not None and docker.containers:
        docker = replace(docker, containers=tuple(fill(c) for c in docker.containers))
    return podman, docker


Answer = tuple[tuple[Interface, ...] | None, str]  # (interfaces, "") or (None, the reason)
HELPER = Path(__file__).with_name("netns_dump.py")
MAX_HELPER_OUTPUT = 8 << 20  # characters read from the helper; real hosts need a few kB/container


def read_interfaces(
    pids: Iterable[int],
    *,
    owner_uid: int | None = None,
    timeout: float = 5.0,
    runner: Runner = run,
) -> dict[int, Answer]:
    """``{pid: (interfaces, "")}`` or ``{pid: (None, reason)}`` for each PID, read by one
    :mod:`.netns_dump` process per user namespace the containers live in (one, normally;
    Docker's RootlessKit next to Podman makes two).

    As root every namespace can be entered. Another user can read only the containers of
    ``owner_uid`` when that is itself (the kernel refuses the rest): else the reason says whom
    to run as.
    """
    todo = sorted({p for p in pids if p > 0})
    if not todo:
        return {}
    euid = os.geteuid()
    if euid != 0 and owner_uid is not None and owner_uid != euid:
        why = f"the containers belong to uid {owner_uid}; run as that user or as root"
        return {p: (None, why) for p in todo}
    done: dict[int, Answer] = {}
    python = sys.executable or "python3"
    while todo:
        out = runner([python, "-I", "-S", str(HELPER), *map(str, todo)], timeout=timeout)
        answers = _helper_answers(out.stdout[:MAX_HELPER_OUTPUT]) if out.ok else None
        if answers is None:
            why = out.why() if not out.ok else "the namespace reader's output is not JSON"
            done.update((p, (None, why)) for p in todo)
            break
        retry = []
        for p in todo:
            got = answers.get(str(p))
            if isinstance(got, dict) and got.get("error") == "other-userns":
                retry.append(p)
            else:
                done[p] = _helper_answer(p, got)
        if len(retry) == len(todo):  # each run settles at least one PID; never loop
            done.update((p, (None, "its user namespace could not be entered")) for p in retry)
            break
        todo = retry
    return done


def _helper_answers(text: str) -> dict[str, object] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _helper_answer(pid: int, got: object) -> Answer:
    if isinstance(got, dict):
        return None, str(got.get("error") or f"pid {pid}: no answer")
    if not isinstance(got, list):
        return None, f"pid {pid}: no answer from the namespace reader"
    try:
        return _interfaces_from_ip_json(got), ""
    except (KeyError, TypeError, ValueError) as e:
        return None, f"pid {pid}: unreadable interface list ({e})"


def container_interfaces(pid: int, *, owner_uid: int | None = None, timeout: float = 3.0) -> Answer:
    """The interfaces and CIDR addresses in the network namespace of process ``pid``
    (:func:`read_interfaces` of one PID); ``(None, reason)`` when they cannot be read."""
    return read_interfaces([pid], owner_uid=owner_uid, timeout=timeout).get(
        pid, (None, f"pid {pid}: not a process id")
    )


def _interfaces_from_ip_json(links: object) -> tuple[Interface, ...]:
    """Interfaces from ``ip -j addr``-shaped data (a list of links with ``addr_info``)."""
    if not isinstance(links, list):
        raise TypeError("not a list of links")
    result = []
    for link in links:
        addrs = tuple(
            f"{a['local']}/{int(a['prefixlen'])}" for a in link.get("addr_info", []) if "local" in a
        )
        result.append(Interface(name=str(link["ifname"]), addresses=addrs))
    return tuple(result)
