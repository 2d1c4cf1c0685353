"""Text → facts for rootless containerd and nerdctl (pure, like parse.py; decides nothing).

- ``nerdctl version`` (text and ``--format '{{json .}}'``): the Server's components are containerd,
  runc and, when rootless (nerdctl ≥ 2.3.4, PR 4971), ``rootlesskit`` with Version and, in Go map
  order, ApiVersion / NetworkDriver / PortDriver / StateDir (cmd/nerdctl/version.go,
  pkg/infoutil/infoutil.go). No ``Engine`` component: that is what tells it from `docker version`.
- ``nerdctl info`` text: a ``Client:`` block with ``Namespace:``; ``rootless`` in Security Options.
- Which daemon a RootlessKit runs: its child (``containerd-rootless.sh``, ``dockerd-rootless.sh``),
  its state dir (``$XDG_RUNTIME_DIR/containerd-rootless``, ``.../dockerd-rootless``), or the
  processes below it (containerd straight below, not under dockerd).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from . import parse
from .model import ContainerdFacts, ContainerFacts, Proc, PublishedPort, RootlessKitFacts
from .parse import (
    ParseError,
    _get,
    _json,
    _kit_from_component,
    _kit_from_text,
    _str,
    port_range,
)

Owner = Literal["docker", "containerd"]


def _strip_v(version: str | None) -> str | None:
    return version[1:] if version and version[:1] in "vV" and version[1:2].isdigit() else version


def is_nerdctl_version_json(data: Any) -> bool:
    comps = _get(data, "Server", "Components")
    names = (
        {str(_get(c, "Name") or "").lower() for c in comps} if isinstance(comps, list) else set()
    )
    return "containerd" in names and "engine" not in names


def _components(text: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(server components, client fields) of the text form: ``Server:`` / `` name:`` /
    ``  Key:<tab or spaces>value``."""
    section, comp = "", ""
    comps: dict[str, dict[str, str]] = {}
    client: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        value = value.strip()
        if indent == 0:
            section, comp = key, ""
        elif section == "Server" and indent == 1 and not value:
            comp = key.lower()
            comps.setdefault(comp, {})
        elif section == "Server" and comp and indent >= 2:
            comps[comp][key.lower()] = value
        elif section == "Client" and indent == 1:
            client[key.lower()] = value
    return comps, client


def is_nerdctl_version_text(text: str) -> bool:
    # The text form has a `Server:` line and a ` containerd:` component line: found in one pass
    # before the per-line reader runs (it cost seconds on MiBs of pasted lines that hold neither).
    if not (re.search(r"(?m)^Server:", text) and re.search(r"(?m)^[ \t]containerd:", text)):
        return False
    comps, _ = _components(text)
    return "containerd" in comps and "engine" not in comps and "version" in comps["containerd"]


def nerdctl_version(text: str) -> ContainerdFacts:
    """``nerdctl version`` text or JSON → containerd's version, nerdctl's, and the RootlessKit
    it runs under (rootless) when the rootlesskit component is there."""
    data = _json(text)
    kit: RootlessKitFacts | None = None
    if isinstance(data, Mapping):
        if not is_nerdctl_version_json(data):
            raise ParseError("not nerdctl version output (no containerd component)")
        version = None
        for c in _get(data, "Server", "Components") or []:
            name = str(_get(c, "Name") or "").lower()
            if name == "containerd":
                version = _str(_get(c, "Version"))
            elif name == "rootlesskit":
                details = _get(c, "Details")
                kit = _kit_from_component(
                    details if isinstance(details, Mapping) else {}, _str(_get(c, "Version"))
                )
        client = _str(_get(data, "Client", "Version"))
    else:
        comps, fields = _components(text)
        if "containerd" not in comps:
            raise ParseError("not nerdctl version output (no containerd component)")
        version = comps["containerd"].get("version")
        client = fields.get("version")
        if "rootlesskit" in comps:
            kit = _kit_from_text(comps["rootlesskit"])
    if kit is not None:
        kit = RootlessKitFacts(
            version=kit.version,
            network_driver=kit.network_driver,
            port_driver=kit.port_driver,
            state_dir=kit.state_dir,
            source="nerdctl version",
        )
    return ContainerdFacts(
        version=_strip_v(version),
        nerdctl_version=_strip_v(client),
        running=kit,
        rootless=True if kit is not None else None,
        rootless_reason="nerdctl version lists a rootlesskit component" if kit else "",
    )


def is_nerdctl_info_text(text: str) -> bool:
    return bool(
        re.search(r"(?m)^Client:\s*$", text)
        and re.search(r"(?m)^ Namespace:[ \t]", text)
        and re.search(r"(?m)^ Server Version:", text)
    )


def nerdctl_info(text: str) -> ContainerdFacts:
    """``nerdctl info`` text: containerd's version; rootless from Security Options."""
    m = re.search(r"(?m)^ Server Version:[ \t]*(\S+)", text)
    if not m:
        raise ParseError("no Server Version line")
    opts = re.search(r"(?m)^ Security Options:\n((?:  .*\n?)*)", text)
    names = {ln.strip() for ln in opts.group(1).splitlines()} if opts else set()
    rootless = "rootless" in names if opts else None
    return ContainerdFacts(
        version=_strip_v(m.group(1)),
        rootless=rootless,
        rootless_reason="nerdctl info: Security Options "
        + ("name rootless" if rootless else "do not name rootless")
        if rootless is not None
        else "",
    )


def unit_facts(units: Sequence[tuple[str, str]]) -> tuple[ContainerdFacts, dict[str, list[str]]]:
    """containerd's unit and drop-ins (systemd order) → the ``CONTAINERD_ROOTLESS_*`` they set and
    the settings outside a section; with the variables each file sets (by file name)."""
    env = parse.unit_environment(units)
    per_file = {name: list(parse.unit_environment([(name, text)])) for name, text in units}
    facts = ContainerdFacts(
        configured_env={k: v for k, v in env.items() if k.startswith("CONTAINERD_ROOTLESS_")},
        unit_files=tuple(n for n, _ in units),
        ignored_unit_lines=tuple(
            f"{name}: {line}" for name, text in units for line in parse.unit_outside_section(text)
        ),
    )
    return facts, per_file


def rootlesskit_ports(text: str) -> tuple[PublishedPort, ...]:
    """RootlessKit's ``GET /v1/ports`` (rootlesskit pkg/api/openapi.yaml PortStatus: ``id`` and
    ``spec`` with proto, parentIP, parentPort, childPort): the ports nerdctl published."""
    data = _json(text)
    if not isinstance(data, list):
        raise ParseError("not a list of ports")
    out = []
    for item in data[:1000]:
        spec = _get(item, "spec")
        parent, child = _get(spec, "parentPort"), _get(spec, "childPort")
        if isinstance(parent, int) and isinstance(child, int):
            out.append(
                PublishedPort(
                    host_port=parent,
                    container_port=child,
                    protocol=_str(_get(spec, "proto")) or "tcp",
                    host_ip=_str(_get(spec, "parentIP")) or "",
                )
            )
    return tuple(out)


def kit_owner(kit: RootlessKitFacts) -> Owner | None:
    """The daemon a RootlessKit runs, from its child or its state dir (None: neither says)."""
    child = (kit.child or "").rsplit("/", 1)[-1]
    state = (kit.state_dir or "").rstrip("/").rsplit("/", 1)[-1]
    if child.startswith(("dockerd", "docker")) or state == "dockerd-rootless":
        return "docker"
    if child.startswith("containerd") or state == "containerd-rootless":
        return "containerd"
    return None


DOCKERD_NAMES = ("dockerd", "dockerd-rootless.sh")


def runs_below(
    pid: int, procs: Sequence[Proc], names: Sequence[str], skip: Sequence[str] = ()
) -> bool:
    """A process named one of ``names`` below ``pid`` in a listing that shows parents (ps -ef,
    pstree -p, /proc), not looking inside the subtrees of processes named ``skip``."""
    if not pid:
        return False
    below, grew = {pid}, True
    while grew:
        grew = False
        for p in procs:
            if p.ppid in below and p.pid not in below:
                if p.exe_name in names:
                    return True
                if p.exe_name in skip:
                    continue
                below.add(p.pid)
                grew = True
    return False


def runs_containerd(pid: int, procs: Sequence[Proc]) -> bool:
    """A ``containerd`` below ``pid`` that no dockerd started (Docker's containerd is dockerd's
    child; nerdctl's is the RootlessKit child's own exec)."""
    return runs_below(pid, procs, ("containerd",), skip=DOCKERD_NAMES)


# --------------------------------------------------------------------------- nerdctl ps / inspect
# Forms documented in nerdctl docs/command-reference.md: `nerdctl ps --format '{{json .}}'` (one
# JSON object a line; `--format=json` is its alias) and `nerdctl inspect` (default mode
# "dockercompat": Docker's container inspect layout, pkg/inspecttypes/dockercompat). nerdctl
# keeps its own settings as container labels "nerdctl/name", "nerdctl/networks" (a JSON list) and
# "nerdctl/ports"; its `ps` JSON has "Platform" and "Runtime", which `docker ps` has not.

MAX_CONTAINERS = 1000
_NERDCTL_LABEL = "nerdctl/"
# One entry of the Ports column: nerdctl prints one port an entry (pkg/formatter FormatPorts:
# "%s:%d->%d/%s"); a range, as Docker's CLI writes it (8000-8010->80-90), is read whole.
_PS_PORT = re.compile(
    r"(?:\[?(?P<ip>[0-9A-Fa-f.:]*)\]?:)?(?P<host>\d{1,5}(?:-\d{1,5})?)->"
    r"(?P<ctr>\d{1,5}(?:-\d{1,5})?)/(?P<proto>[a-z]{1,8})"
)
MAX_PORTS = 4096  # of one container's Ports column (each range is capped by parse.port_range)


def _labels(c: Any) -> Mapping[str, Any]:
    labels = _get(c, "Config", "Labels")
    return labels if isinstance(labels, Mapping) else {}


def is_nerdctl_inspect(data: Any) -> bool:
    """Container inspect JSON whose containers carry nerdctl's own labels or its state dir."""
    items = data if isinstance(data, list) else [data]
    return any(
        isinstance(c, Mapping)
        and (
            any(isinstance(k, str) and k.startswith(_NERDCTL_LABEL) for k in _labels(c))
            # its state dir (/var/lib/nerdctl/HASH/containers/..., ~/.local/share/nerdctl/...)
            or "/nerdctl/" in (_str(_get(c, "ResolvConfPath")) or "")
        )
        for c in items[:MAX_CONTAINERS]
    )


def _first_network(value: Any) -> str | None:
    """The first name of a "nerdctl/networks" label (a JSON list as a string)."""
    nets = _json(value) if isinstance(value, str) else value
    if isinstance(nets, list) and nets and isinstance(nets[0], str):
        return nets[0]
    return None


def _mode(mode: str | None) -> str | None:
    # nerdctl's default network is named "bridge" (command-reference: --network default "bridge")
    return "bridge" if mode == "default" else mode


def nerdctl_inspect(text: str) -> list[ContainerFacts]:
    """`nerdctl inspect` JSON (dockercompat) → containers: network mode from
    HostConfig.NetworkMode, else from the "nerdctl/networks" label; ports from
    NetworkSettings.Ports."""
    out = []
    for c in parse._inspect_list(text)[:MAX_CONTAINERS]:
        mode = _str(_get(c, "HostConfig", "NetworkMode")) or _first_network(
            _labels(c).get("nerdctl/networks")
        )
        base = parse._container(c, "docker", _mode(mode), None)
        name = base.name or _str(_labels(c).get("nerdctl/name")) or base.id[:12]
        out.append(replace(base, engine="containerd", name=name))
    return out


def _ps_objects(text: str) -> list[Mapping[str, Any]]:
    data = _json(text)
    if isinstance(data, list):
        return [d for d in data[:MAX_CONTAINERS] if isinstance(d, Mapping)]
    if isinstance(data, Mapping):
        return [data]
    out = []
    for line in text.splitlines()[:MAX_CONTAINERS]:
        obj = _json(line)
        if isinstance(obj, Mapping):
            out.append(obj)
    return out


def is_nerdctl_ps_object(o: Any) -> bool:
    """One `nerdctl ps` JSON object: Names, Ports and nerdctl's Platform/Runtime."""
    return (
        isinstance(o, Mapping)
        and {"Names", "Ports"} <= o.keys()
        and bool({"Platform", "Runtime"} & o.keys())
        and "RunningFor" not in o
    )


def is_nerdctl_ps(text: str) -> bool:
    """`nerdctl ps --format '{{json .}}'` output (one object a line, or a JSON list)."""
    objs = _ps_objects(text) if text.lstrip()[:1] in "{[" else []
    return bool(objs) and all(is_nerdctl_ps_object(o) for o in objs)


def _ps_ports(value: str) -> tuple[PublishedPort, ...]:
    """nerdctl ps's Ports column, "0.0.0.0:8080->80/tcp, :::8080->80/tcp"; a range is every
    port of it, as parse.py reads compose's (``port_range``)."""
    out: list[PublishedPort] = []
    for m in _PS_PORT.finditer(value[:10000]):
        out.extend(
            PublishedPort(host_port=h, container_port=c, protocol=m["proto"], host_ip=m["ip"] or "")
            for h, c in port_range(m["host"], m["ctr"])
            if 0 < h < 65536 and 0 < c < 65536
        )
        if len(out) >= MAX_PORTS:
            break
    return tuple(out[:MAX_PORTS])


def nerdctl_ps(text: str) -> list[ContainerFacts]:
    """`nerdctl ps --format '{{json .}}'` → containers (name, ID, ports; the network from the
    "nerdctl/networks" label in its Labels string when shown)."""
    objs = _ps_objects(text)
    if not objs:
        raise ParseError("no JSON objects (expected `nerdctl ps --format '{{json .}}'` output)")
    out = []
    for o in objs:
        labels = _str(o.get("Labels")) or ""
        m = re.search(r"nerdctl/networks=(\[[^\]]{0,2000}\])", labels)
        ports = o.get("Ports")
        out.append(
            ContainerFacts(
                engine="containerd",
                name=(_str(o.get("Names")) or "").split(",")[0].lstrip("/")
                or (_str(o.get("ID")) or "?")[:12],
                id=_str(o.get("ID")) or "",
                network_mode=_mode(_first_network(m.group(1)) if m else None),
                ports=_ps_ports(ports) if isinstance(ports, str) else (),
            )
        )
    return out


def ps_ids(text: str) -> list[str]:
    """The container IDs of `nerdctl ps --format '{{json .}}'` output (for `nerdctl inspect`)."""
    return [c.id for c in nerdctl_ps(text) if re.fullmatch(r"[0-9a-zA-Z_.-]{1,128}", c.id)]


def port_entries(published: Sequence[PublishedPort]) -> tuple[ContainerFacts, ...]:
    """Without nerdctl: one entry per port RootlessKit forwards (the container is not known)."""
    return tuple(
        ContainerFacts(engine="containerd", name=f"port {p.host_port}/{p.protocol}", ports=(p,))
        for p in published[:MAX_CONTAINERS]
    )
