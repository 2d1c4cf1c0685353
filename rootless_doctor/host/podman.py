"""Podman: containers.conf in its load order, ``podman info``, and each container's port
handler read from the processes serving its network namespace."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from .. import parse
from ..model import CmdOutput, ContainerFacts, HostPaths, PodmanFacts, Proc
from .containers import engine_containers
from .files import exists, is_dir, is_file, parsed, read_all
from .system import netns_ino


def conmon_ids(procs: Sequence[Proc], uid: int) -> list[str]:
    """Container ids of ``uid``'s running Podman containers, from their conmon command lines,
    each once: a ``podman exec`` session runs a second conmon with the same ``-c ID`` (inspect
    would then list, and check judge, that container twice). Only a full 64-hex id is taken, so
    nothing from a command line can reach ``podman inspect`` as an option."""
    ids: dict[str, None] = {}
    for p in procs:
        if p.exe_name == "conmon" and p.uid in (uid, None) and "-c" in p.cmdline[:-1]:
            cid = p.cmdline[p.cmdline.index("-c") + 1]
            if _CONTAINER_ID.fullmatch(cid):
                ids[cid] = None
    return list(ids)


def _conf_dir_files(d: Path) -> list[Path]:
    try:
        return sorted(
            (p for p in d.iterdir() if p.name.endswith(".conf") and is_file(p)),
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
    # Keep an existing but unreadable file: Podman fails on it too, and podman_facts notes it.
    return [f for f in files if exists(f) and not is_dir(f)]


class PodmanConf(NamedTuple):
    """containers.conf as read: the files read, the merged settings, and whether every file of
    the chain was read and parsed (``clean``; the notes say which was not). A NamedTuple: a
    dataclass costs ~1 ms of every live check's start-up."""

    files: tuple[str, ...]
    merged: dict[str, object]
    clean: bool
    notes: tuple[str, ...]
    origins: dict[str, str]  # "table.key" → the file that set it


def read_conf(conf_files: Sequence[Path], sources: list[str]) -> PodmanConf:
    notes: list[str] = []
    texts = read_all(conf_files, notes)
    sources.extend(name for name, _ in texts)
    origins: dict[str, str] = {}
    conf = parsed(lambda: parse.containers_conf(texts, origins), "containers.conf", notes)
    return PodmanConf(
        files=tuple(name for name, _ in texts),
        merged=dict(conf or {}),
        clean=conf is not None and len(texts) == len(conf_files),
        notes=tuple(notes),
        origins=origins if conf is not None else {},
    )


def podman_facts(
    paths: HostPaths,
    cli: str,
    info: CmdOutput | PodmanFacts | None,
    chain: tuple[CmdOutput, CmdOutput | None] | None,
    conf_read: PodmanConf,
    procs: Sequence[Proc],
) -> PodmanFacts:
    """``info``: the output of ``podman info``, or its answers derived from their sources
    (:mod:`.podman_info`)."""
    notes: list[str] = []
    facts = PodmanFacts()
    if isinstance(info, PodmanFacts):
        facts = info
    elif info is not None and info.ok:
        got = parsed(lambda: parse.podman_info(info.stdout), "podman info", notes)
        facts = got or facts
    elif info is not None:
        notes.append(info.why())
    notes.extend(conf_read.notes)

    containers = engine_containers("podman", chain, parse.podman_inspect, notes)
    handlers = PortHandlers(paths, procs) if containers else None
    containers = tuple(handlers.of(c) for c in containers) if handlers else containers
    return replace(
        facts,
        cli=cli,
        conf=dict(conf_read.merged),
        conf_files=conf_read.files,
        conf_origin=dict(conf_read.origins),
        containers=containers,
        notes=(*facts.notes, *notes),
    )


class PortHandlers:
    """The owner's port-handler processes, indexed once: each container is then one lookup
    (a scan of every process per container made ``check`` quadratic in the containers).

    slirp4netns with ``--api-socket .../<id>.net`` (or into this container's netns with an API
    socket) = handler slirp4netns; a ``rootlessport-child`` in the container's netns = Podman's
    rootlessport (option name ``port_handler=rootlesskit`` on slirp4netns networks); a ``pasta``
    process into its netns = pasta. When several processes fit, the first in process order wins.
    """

    def __init__(self, paths: HostPaths, procs: Sequence[Proc]) -> None:
        self.paths = paths
        self.by_ino: dict[int, tuple[int, str]] = {}  # netns inode -> (process order, kind)
        self.apis: list[tuple[int, str]] = []  # (process order, slirp4netns --api-socket)
        self.by_id: dict[str, int] = {}  # a container id in an API socket path -> order
        for order, p in enumerate(procs):
            if p.uid is not None and p.uid != paths.uid:
                continue
            name = p.exe_name
            if name == "slirp4netns":
                api = _flag(p.cmdline, "--api-socket", "-a")
                if not api:
                    continue
                self.apis.append((order, api))
                for cid in _CONTAINER_ID.findall(api):
                    self.by_id.setdefault(cid, order)
                kind, ino = "slirp4netns", _slirp_target_ino(paths, p.cmdline)
            elif name == "rootlessport-child":
                kind, ino = name, netns_ino(paths, f"/proc/{p.pid}/ns/net")
            elif name in ("pasta", "passt"):
                kind, ino = "pasta", _slirp_target_ino(paths, p.cmdline)
            else:
                continue
            if ino is not None:
                self.by_ino.setdefault(ino, (order, kind))

    def of(self, c: ContainerFacts) -> ContainerFacts:
        """``c`` with the port handler from the processes, when ``CreateCommand`` did not tell
        (the parser then guessed Podman's default, which containers.conf may have changed)."""
        explicit = any("port_handler=" in a for a in (*c.create_command, c.network_mode or ""))
        if explicit or c.pid is None or not c.ports:
            return c
        found: list[tuple[int, str]] = []
        if c.id:
            order = self.by_id.get(c.id)
            if order is None and not _CONTAINER_ID.fullmatch(c.id):  # a short id
                order = next((o for o, api in self.apis if c.id in api), None)
            if order is not None:
                found.append((order, "slirp4netns"))
        ino = netns_ino(self.paths, f"/proc/{c.pid}/ns/net")
        if ino is not None and ino in self.by_ino:
            found.append(self.by_ino[ino])
        if not found:
            return c
        handler = min(found)[1]
        if handler == "rootlessport-child":
            mode = c.network_mode or ""
            handler = "rootlesskit" if mode.startswith("slirp4netns") else "rootlessport"
        return replace(c, port_handler=handler)


# Podman's full container id: 64 hex digits (an API socket is named after it).
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


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
        return netns_ino(paths, ns)
    positional = [a for a in argv[1:] if not a.startswith("-")]
    # slirp4netns [OPTIONS] PID|PATH TAPNAME: the target is the second to last positional word.
    if len(positional) >= 2:
        target = positional[-2]
        if target.isdigit():
            return netns_ino(paths, f"/proc/{target}/ns/net")
        if target.startswith("/"):
            return netns_ino(paths, target)
    return None
