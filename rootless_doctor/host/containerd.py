"""Rootless containerd as nerdctl's ``containerd-rootless.sh`` runs it: its RootlessKit process
(a rootlesskit whose child is containerd, not dockerd), its state dir, its user unit and drop-ins,
and ``nerdctl version`` when nerdctl is installed (docs/facts.md "nerdctl / rootless containerd").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from .. import knowledge, parse_containerd
from ..model import CmdOutput, ContainerdFacts, ContainerFacts, HostPaths, Proc, PublishedPort
from .docker import unit_files
from .files import is_dir, is_socket, parsed, read_all
from .identity import runtime_path
from .rootlesskit import api_request, rootlesskit_facts, rootlesskit_from_proc, top_rootlesskits

UNIT = "containerd.service"


def containerd_kits(paths: HostPaths, procs: Sequence[Proc], notes: list[str]) -> list[Proc]:
    """This user's rootlesskit processes that run containerd (nerdctl's launcher)."""
    found = []
    for p in top_rootlesskits(paths, procs):
        kit = rootlesskit_from_proc(p, notes)
        if kit is None:
            continue
        owner = parse_containerd.kit_owner(kit)
        if owner == "containerd" or (
            owner is None and parse_containerd.runs_containerd(p.pid, procs)
        ):
            found.append(p)
    return found


def containerd_facts(
    paths: HostPaths,
    procs: Sequence[Proc],
    nerdctl: Callable[[Sequence[str]], CmdOutput | None],
    notes: list[str],
    sources: list[str],
) -> ContainerdFacts | None:
    """Rootless containerd of this user, or None when there is no trace of it. ``nerdctl(args)``
    runs ``nerdctl ARGS`` through the host's runner (None: nerdctl not installed); it is called
    only when a trace exists."""
    kits = containerd_kits(paths, procs, notes)
    units = unit_files(paths, UNIT)
    unit_texts = read_all(units, notes)
    sources.extend(name for name, _ in unit_texts)
    from_units, per_file = (
        parsed(lambda: parse_containerd.unit_facts(unit_texts), UNIT, notes) if unit_texts else None
    ) or (ContainerdFacts(), {})
    runtime = runtime_path(paths)
    state_dir = from_units.configured_env.get(knowledge.CONTAINERD_VAR + "STATE_DIR") or (
        str(runtime / knowledge.CONTAINERD_STATE_DIR) if runtime else None
    )
    state_there = state_dir is not None and is_dir(paths.at(state_dir))
    if not kits and not unit_texts and not state_there:
        return None
    ignored = [
        f"{name}: {v}" for name, names in per_file.items()
        for v in knowledge.containerd_ignored_vars(names)
    ]  # fmt: skip
    version_out = nerdctl(["version"])
    from_nerdctl = ContainerdFacts()
    if version_out is not None and version_out.ok:
        from_nerdctl = (
            parsed(
                lambda: parse_containerd.nerdctl_version(version_out.stdout),
                "nerdctl version",
                notes,
            )
            or from_nerdctl
        )
    elif version_out is not None:
        notes.append(version_out.why())
    proc = kits[0] if kits else None
    running = None
    if proc is not None or state_there:
        running = rootlesskit_facts(
            paths, proc, procs, notes, sources, state_dir_hint=state_dir,
            extra=[from_nerdctl.running],
        )  # fmt: skip
    published: tuple[PublishedPort, ...] = ()
    api = paths.at(state_dir) / "api.sock" if state_dir and proc is not None else None
    if api is not None and is_socket(api):
        status, body, err = api_request(api, "GET", "/v1/ports")
        if status == 200:
            sources.append(f"{api} GET /v1/ports")
            published = (
                parsed(lambda: parse_containerd.rootlesskit_ports(body), f"{api} /v1/ports", notes)
                or ()
            )
        elif err:
            notes.append(f"RootlessKit ports not read: {err}")
    containers = nerdctl_containers(nerdctl, notes, sources)
    if containers is None:  # no nerdctl: each port RootlessKit forwards stands for its container
        containers = parse_containerd.port_entries(published)
    if len(kits) > 1:
        notes.append(f"{len(kits)} rootless containerd RootlessKits running; read the first")
    stopped = proc is None and state_there
    return replace(
        from_units,
        rootless=True if proc is not None or from_nerdctl.running else None,
        rootless_reason="rootlesskit runs containerd" if proc is not None else "",
        version=from_nerdctl.version,
        nerdctl_version=from_nerdctl.nerdctl_version,
        running=running,
        published=published,
        containers=containers,
        ignored_vars=tuple(ignored),
        notes=(f"{state_dir} exists but no rootlesskit runs containerd (stopped?)",)
        if stopped
        else (),
    )


def nerdctl_containers(
    nerdctl: Callable[[Sequence[str]], CmdOutput | None], notes: list[str], sources: list[str]
) -> tuple[ContainerFacts, ...] | None:
    """Running containers from ``nerdctl ps --format '{{json .}}'`` then ``nerdctl inspect``
    (nerdctl docs/command-reference.md, "nerdctl ps" / "nerdctl inspect"); None when nerdctl is
    not installed. ps alone when inspect fails (no network modes then)."""
    ps = nerdctl(["ps", "--format", "{{json .}}"])
    if ps is None:
        return None
    if not ps.ok:
        notes.append(ps.why())
        return ()
    sources.append("nerdctl ps")
    listed = parsed(lambda: parse_containerd.nerdctl_ps(ps.stdout), "nerdctl ps", notes)
    if not ps.stdout.strip() or not listed:
        return ()
    ids = [c.id for c in listed if c.id][: parse_containerd.MAX_CONTAINERS]
    inspect = nerdctl(["inspect", "--mode=dockercompat", *ids]) if ids else None
    if inspect is not None and inspect.ok:
        got = parsed(
            lambda: parse_containerd.nerdctl_inspect(inspect.stdout), "nerdctl inspect", notes
        )
        if got:
            sources.append("nerdctl inspect")
            return tuple(got)
    elif inspect is not None:
        notes.append(inspect.why())
    return tuple(listed)
