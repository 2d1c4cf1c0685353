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
from typing import Any, Literal

from . import parse
from .model import ContainerdFacts, Proc, PublishedPort, RootlessKitFacts
from .parse import ParseError, _get, _json, _kit_from_component, _kit_from_text, _str

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
