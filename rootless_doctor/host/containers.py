"""Running containers: the ``ps`` → ``inspect`` chain of an engine's CLI, and the interfaces
inside each container's network namespace (pyroute2 as root, nsenter as the owner).

pyroute2 is imported only inside :func:`container_interfaces` (it is slow to import)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ..model import CmdOutput, ContainerFacts, DockerFacts, Interface, PodmanFacts
from .files import parsed
from .runner import Cmds, run

if TYPE_CHECKING:
    import concurrent.futures as cf


def ps_inspect(
    cmds: Cmds,
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
    cmds: Cmds, podman: PodmanFacts | None, docker: DockerFacts | None, owner: int
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
