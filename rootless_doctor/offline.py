"""``check --from FILE...``: facts from pasted outputs and copied config files, not from this host.

Pure: texts in, facts out (host/files.py ``read_pasted`` reads the files). Each text is
recognised by its content (never by its name), parsed with parse.py, and all of them are combined
into one ``HostFacts(offline=True)``. How facts combine lives in ``merge`` only: later non-None
values win, tuples of containers are de-duplicated by id/name.
Only stdlib at import time (``check --from`` must finish in under 50 ms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import knowledge, parse, parse_containerd, parse_pastes
from .model import (
    ComposeFacts,
    ContainerdFacts,
    ContainerFacts,
    DockerFacts,
    DoctorError,
    HostFacts,
    PodmanFacts,
    Proc,
    QuadletFacts,
    RootlessKitFacts,
)
from .parse import ParseError

if TYPE_CHECKING:
    from .envfile import ComposeEnv

KINDS = (
    "podman-info",
    "docker-version",
    "docker-info",
    "processes",
    "journal",
    "podman-inspect",
    "docker-inspect",
    "nerdctl-ps",
    "nerdctl-inspect",
    "containers-conf",
    "unit",
    "daemon-json",
    "compose",
    "env-file",
    "nerdctl-version",
    "nerdctl-info",
    "pstree",
    "quadlet",
    "rootlesskit-component",
    "dockerd-error",
    "processes-nopid",
    "rootlesskit-info",
)

# Top-level tables of containers.conf (containers/common pkg/config); Podman's TOML decoder
# matches them without case, so "[Network]" counts too.
_CONF_TABLES = {
    "containers",
    "engine",
    "network",
    "machine",
    "secrets",
    "configmaps",
    "farms",
    "podmansh",
}
# Keys only `podman inspect` prints (docker inspect has none of them).
_PODMAN_INSPECT_KEYS = {"OCIRuntime", "ConmonPidFile", "StaticDir", "IsInfra", "ExitCommand", "Pod"}
_PROC_NAMES = (
    r"\b(rootlesskit|dockerd|dockerd-rootless\.sh|slirp4netns|pasta|passt|rootlessport|conmon|"
    r"containerd|podman|catatonit|docker-proxy|rootlesskit-docker-proxy|vpnkit)\b"
)
_JOURNAL_LINE = (
    r"(?m)^(?:(?:\w{3}[ \t]+\d{1,2}[ \t]+\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\S+)[ \t]+\S+[ \t]+)?"
    r"[\w.@-]+\[\d+\]:\s"
)


# --------------------------------------------------------------------------- recognise


def _json_kind(v: Any) -> str:
    if isinstance(v, list):
        items = [i for i in v if isinstance(i, dict)]
        if not items:
            raise ParseError("a JSON list without objects")
        first = items[0]
        if "HostConfig" in first or ("State" in first and "Config" in first):
            if parse_containerd.is_nerdctl_inspect(items):
                return "nerdctl-inspect"
            return "podman-inspect" if _PODMAN_INSPECT_KEYS & first.keys() else "docker-inspect"
        if parse_containerd.is_nerdctl_ps_object(first):
            return "nerdctl-ps"
        if "Names" in first and "Ports" in first:
            raise ParseError(
                "`podman ps`/`docker ps` output shows no network modes; "
                "pass `podman inspect $(podman ps -q)` output instead"
            )
        if "subnets" in first or "network_interface" in first or "IPAM" in first:
            raise ParseError("network inspect output; pass container inspect output instead")
        raise ParseError("a JSON list but not container inspect output")
    if not isinstance(v, dict):
        raise ParseError("JSON but not an object or list")
    keys = set(v)
    low = {k.lower() for k in keys if isinstance(k, str)}
    if "host" in low and ("version" in low or "store" in low or "client" in low):
        return "podman-info"
    if parse_containerd.is_nerdctl_version_json(v):
        return "nerdctl-version"
    if parse_containerd.is_nerdctl_ps_object(v):  # `nerdctl ps` with one container
        return "nerdctl-ps"
    if ("Server" in keys or "Client" in keys) and not low & {"serverversion", "securityoptions"}:
        return "docker-version"
    if keys & {"ServerVersion", "SecurityOptions", "ClientInfo", "ServerErrors", "KernelVersion"}:
        return "docker-info"
    if low & {"networkdriver", "portdriver", "childpid"} or {"apiVersion", "stateDir"} <= keys:
        return "rootlesskit-info"
    if "HostConfig" in keys or ("State" in keys and "Config" in keys):
        if parse_containerd.is_nerdctl_inspect(v):
            return "nerdctl-inspect"
        return "podman-inspect" if _PODMAN_INSPECT_KEYS & keys else "docker-inspect"
    if all(isinstance(k, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]*", k) for k in keys):
        # daemon.json: dockerd's long option names, lower-case with dashes ("userland-proxy")
        return "daemon-json"
    raise ParseError("a JSON object of no known kind")


def _ini_kind(text: str) -> str | None:
    sections = re.findall(r"(?m)^[ \t]*\[([^\]\n]+)\][ \t]*$", text)
    if not sections:
        # a drop-in pasted without its header: only systemd-style "Key=value" lines (searched in
        # one pass each: a per-line Python loop took seconds on MiBs of short lines)
        other = re.search(r"(?m)^(?![ \t\r\f\v]*(?:$|[#;])|[ \t]*[A-Z][A-Za-z]+=)", text)
        if other is None and re.search(r"(?m)^[ \t\r\f\v]*[^\s#;]", text):
            return "unit"
        return None
    keys = re.findall(r"(?m)^[ \t]*([A-Za-z_][\w.-]*)[ \t]*=", text)
    if any(sec.strip() == "Container" for sec in sections):
        return "quadlet"  # a Quadlet .container unit (podman-systemd.unit(5))
    conf_tables = [s for s in sections if s.strip().split(".")[0].lower() in _CONF_TABLES]
    snake = sum(1 for k in keys if k == k.lower())
    camel = sum(1 for k in keys if k[:1].isupper())
    if conf_tables and (snake >= camel or not keys):
        return "containers-conf"
    if camel or any(s.strip() in ("Unit", "Service", "Install") for s in sections):
        return "unit"
    if conf_tables:
        return "containers-conf"
    return None


_ENV_LINE = r"[ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]*="


def _env_file(t: str) -> bool:
    """An env file (docker-mailserver's mailserver.env, a project's .env): comments and
    ``KEY=value`` lines only, some key with an underscore or a digit (systemd's keys have none)."""
    return (
        re.search(rf"(?m)^(?![ \t\r\f\v]*(?:$|#)|{_ENV_LINE})", t) is None
        and re.search(r"(?m)^[ \t\r\f\v]*[^\s#]", t) is not None
        and re.search(r"(?m)^[ \t]*(?:export[ \t]+)?\w*[_0-9]", t) is not None
    )


# Recognition reads line starts and headers: a line longer than this is cut for it (not for
# parsing), so a paste of a few MiB on one line costs no more than its first part.
_RECOGNISE_LINE = 1 << 16


def recognise(text: str) -> str:
    """The kind of output or file ``text`` is (one of ``KINDS``), by content alone.
    Raises ParseError with a hint when nothing fits."""
    t = text.lstrip("\ufeff").strip()
    if not t:
        raise ParseError("empty")
    if t[0] in "{[":
        v = parse._json(t)
        if v is not None:
            return _json_kind(v)
        if parse_containerd.is_nerdctl_ps(t):  # one JSON object a line
            return "nerdctl-ps"
        if t[0] == "{" or t.startswith("[{") or t.startswith("[\n"):
            try:
                parse._loads(t)
            except parse._JsonError as e:
                raise ParseError(f"looks like JSON but does not parse ({e})") from None
    lines = t.splitlines()
    if max(map(len, lines)) > _RECOGNISE_LINE:
        t = "\n".join(line[:_RECOGNISE_LINE] for line in lines)
    if re.search(r"(?m)^host:[ \t]*$", t) and re.search(r"(?m)^(version|store|Client):[ \t]*$", t):
        return "podman-info"
    if parse_containerd.is_nerdctl_info_text(t):
        return "nerdctl-info"
    if re.search(r"(?m)^ *(Server Version|Storage Driver|Security Options):", t):
        return "docker-info"
    if re.search(r"(?m)^(Client|Server)\b.*:", t) and re.search(r"(?m)^[ \t]+API version:", t):
        return "docker-version"
    if parse_containerd.is_nerdctl_version_text(t):
        return "nerdctl-version"
    if re.search(r"(?m)^- (Network Driver|Port Driver|REST API version|State Directory):", t):
        return "rootlesskit-info"
    if re.search(r"(?m)^CONTAINER ID\s+IMAGE", t):
        raise ParseError(
            "`podman ps`/`docker ps` output shows no network modes; "
            "pass `podman inspect $(podman ps -q)` output instead"
        )
    ini = _ini_kind(t)
    if ini:
        return ini
    if re.search(r"(?m)^services:[ \t]*$", t) or re.search(r"(?m)^services:[ \t]*\{", t):
        return "compose"
    if re.search(r"(?m)^[ \t]*●.*\.service\b", t) and "CGroup:" in t:
        return "processes"
    if re.search(r"(?m)^[ \t]*(?:(?:USER|UID)[ \t]+)?PID\b.*\b(COMMAND|CMD|ARGS)[ \t]*$", t):
        return "processes"
    if re.match(r"\s*(COMMAND|CMD|ARGS)\s*\n", t) and re.search(_PROC_NAMES, t):
        return "processes"  # ps -eo args
    if re.search(r"(?m)^[ \t|`│├└─┬+-]*-(rootlesskit|slirp4netns|pasta|conmon|dockerd),\d+\b", t):
        return "processes"  # pstree -ap
    if re.search(_JOURNAL_LINE, t) or re.search(r"(?m)^-- (Logs begin|Journal begins|Boot )", t):
        return "journal"
    if re.search(r"(?m)^[ \t]*\++[ \t]+exec[ \t]+\S", t):
        return "journal"  # dockerd-rootless.sh's `set -x` trace as the journal shows it
    if parse_pastes.lone_rootlesskit_block(t):
        return "rootlesskit-component"  # cut out of docker/nerdctl version
    if parse_pastes.dockerd_fatal(t):
        return "dockerd-error"
    if parse_pastes.ps_without_pid(t):
        return "processes-nopid"  # ps -o user,args and other layouts without a PID column
    if re.search(r"(?m)^[ \t]*(?:\S+[ \t]+)?\d+[ \t]", t) and re.search(_PROC_NAMES, t):
        try:
            parse.process_listing(t)
        except ParseError:
            pass
        else:
            return "processes"
    if _env_file(t):
        return "env-file"
    if parse_pastes.pstree_names(t):
        return "pstree"  # plain pstree: names only
    raise ParseError(
        "not a recognised output; expected podman info, docker version/info, ps, journal, "
        "podman/docker inspect, containers.conf, a systemd unit, daemon.json, a compose file "
        "or rootlessctl info"
    )


# --------------------------------------------------------------------------- merge

T = TypeVar("T")


def _same_container(a: ContainerFacts, b: ContainerFacts) -> bool:
    if a.engine != b.engine:
        return False
    if a.id and b.id:
        short = min(len(a.id), len(b.id))
        return bool(short >= 12 and a.id[:short] == b.id[:short])
    return bool(a.name) and a.name == b.name


def _merge_value(old: Any, new: Any, name: str) -> Any:
    if new is None:
        return old
    if old is None:
        return new
    if is_dataclass(old) and is_dataclass(new) and type(old) is type(new):
        return merge(old, new)
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **new} if new else old
    if isinstance(old, tuple) and isinstance(new, tuple):
        if name == "containers":
            out: list[ContainerFacts] = list(old)
            for c in new:
                for i, o in enumerate(out):
                    if _same_container(o, c):
                        out[i] = merge(o, c)
                        break
                else:
                    out.append(c)
            return tuple(out)
        if name in ("sources", "notes", "unit_files", "conf_files", "rootlesskits"):
            return old + tuple(x for x in new if x not in old)
        return new if new else old
    if isinstance(new, str) and not new:
        return old
    if name == "source" and isinstance(old, str) and isinstance(new, str) and new not in old:
        return f"{old} + {new}"
    return new


def merge(a: T, b: T) -> T:
    """Combine two facts records of one type: ``b``'s known values win (``None``, ``""`` and empty
    collections are "not known" and keep ``a``'s); nested records merge the same way; notes,
    sources and file lists are concatenated; containers are de-duplicated by id (prefix) or name
    and merged field by field; dicts are updated key by key; ``source`` strings are joined."""
    if a is None:
        return b
    if b is None:
        return a
    assert is_dataclass(a) and is_dataclass(b)
    changes = {
        f.name: _merge_value(getattr(a, f.name), getattr(b, f.name), f.name) for f in fields(b)
    }
    return replace(a, **changes)  # type: ignore[type-var]


# --------------------------------------------------------------------------- gather


def _systemctl_show(text: str) -> bool:
    """``systemctl show`` output rather than a unit file: Key=value lines only, no section
    header, no comment, no quotes (a drop-in whose [Service] line is missing has the quotes its
    author typed; systemd ignores its settings, and check says so)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (
        bool(lines)
        and all(re.fullmatch(r"[A-Z][A-Za-z]*=[^\"']*", ln) for ln in lines)
        and any(ln.startswith("Environment=") for ln in lines)
    )


def _runs_dockerd(procs: Sequence[Proc], pid: int) -> bool:
    """A dockerd below ``pid`` in the listing (when it shows parents, as pstree and ps -ef do)."""
    return parse_containerd.runs_below(pid, procs, parse_containerd.DOCKERD_NAMES)


def _is_docker_child(child: str | None) -> bool:
    return bool(child) and (child or "").startswith(("dockerd", "docker"))


def _docker_rootless_env(env: dict[str, str]) -> DockerFacts:
    rk = {k: v for k, v in env.items() if k.startswith("DOCKERD_ROOTLESS_")}
    return DockerFacts(
        configured_net=rk.get("DOCKERD_ROOTLESS_ROOTLESSKIT_NET") or None,
        configured_port_driver=rk.get("DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER") or None,
        configured_env=rk,
    )


class _Acc:
    """What the files said so far, before the final combination."""

    def __init__(self) -> None:
        self.docker: DockerFacts | None = None
        self.containerd: ContainerdFacts | None = None
        self.quadlets: list[QuadletFacts] = []
        self.podman: PodmanFacts | None = None
        self.kits: list[RootlessKitFacts] = []
        self.api_kits: list[tuple[str, RootlessKitFacts]] = []
        self.compose: ComposeFacts | None = None
        self.compose_text: tuple[str, str] | None = None  # parsed last, with its env files
        self.env_files: dict[str, str] = {}  # env files given with --from, by name
        self.confs: list[tuple[str, str]] = []
        self.units: list[tuple[str, str]] = []
        self.procs: list[Proc] = []
        self.notes: list[str] = []
        self.proc_handlers: dict[str, str] = {}  # container id → port handler seen in processes

    def add_docker(self, d: DockerFacts) -> None:
        self.docker = merge(self.docker, d) if self.docker else d

    def add_podman(self, p: PodmanFacts) -> None:
        self.podman = merge(self.podman, p) if self.podman else p

    def add_containerd(self, c: ContainerdFacts) -> None:
        self.containerd = merge(self.containerd, c) if self.containerd else c


def _add(acc: _Acc, kind: str, name: str, text: str) -> None:
    if kind == "podman-info":
        acc.add_podman(parse.podman_info(text))
    elif kind == "docker-version":
        acc.add_docker(parse.docker_version(text))
    elif kind == "docker-info":
        acc.add_docker(parse.docker_info(text))
    elif kind in ("processes", "journal"):
        acc.procs.extend(parse.process_listing(text))
    elif kind == "podman-inspect":
        acc.add_podman(PodmanFacts(containers=tuple(parse.podman_inspect(text))))
    elif kind == "docker-inspect":
        rootless = parse.docker_inspect_rootless(text)
        acc.add_docker(
            DockerFacts(
                containers=tuple(parse.docker_inspect(text)),
                rootless=rootless,
                rootless_reason="docker inspect: the daemon keeps its containers under "
                + ("the user's runtime/home dirs" if rootless else "/var")
                if rootless is not None
                else "",
            )
        )
    elif kind == "containers-conf":
        parse.containers_conf([(name, text)])  # fail on this file, naming it
        acc.confs.append((name, text))
    elif kind == "unit":
        text = _unit_only(acc, name, text)
        if _systemctl_show(text):
            # `systemctl --user show docker [-p Environment]`: the service's merged settings,
            # printed without a section header; they are the [Service] section.
            text = "[Service]\n" + text
        parse.unit_environment([(name, text)])
        acc.units.append((name, text))
    elif kind == "daemon-json":
        d = parse.daemon_json(text)
        up = d.get("userland-proxy")
        acc.add_docker(
            DockerFacts(userland_proxy=up if isinstance(up, bool) else None, daemon_json=name)
        )
    elif kind == "compose":
        parse.compose(text, name)  # fail on this file, naming it
        acc.compose_text = (name, text)
    elif kind == "env-file":
        acc.env_files[name] = text
    elif kind == "rootlesskit-info":
        acc.api_kits.append((name, parse.rootlesskit_api_info(text)))
    elif kind == "nerdctl-version":
        acc.add_containerd(parse_containerd.nerdctl_version(text))
    elif kind == "nerdctl-ps":
        acc.add_containerd(ContainerdFacts(containers=tuple(parse_containerd.nerdctl_ps(text))))
    elif kind == "nerdctl-inspect":
        acc.add_containerd(
            ContainerdFacts(containers=tuple(parse_containerd.nerdctl_inspect(text)))
        )
    elif kind == "nerdctl-info":
        acc.add_containerd(parse_containerd.nerdctl_info(text))
    elif kind == "processes-nopid":
        procs = parse_pastes.ps_without_pid(text) or []
        if re.search(r"[ \t](?:\.\.\.|…)(?:[ \t]|$)", text, re.M):
            acc.notes.append(
                f"{name}: command lines cut with '...' by the author: the flags shown are read, "
                "the ones cut away are unknown (not taken as defaults)"
            )
        acc.procs.extend(procs)
    elif kind == "rootlesskit-component":
        _from_component(acc, name, text)
    elif kind == "dockerd-error":
        line = parse_pastes.dockerd_fatal(text) or ""
        acc.add_docker(
            DockerFacts(
                notes=(f"{name}: dockerd did not start: {line.strip()}",),
                br_netfilter=False if "bridge-nf-call-iptables: no such file" in line else None,
                userland_proxy=False if "without the userland proxy" in line else None,
            )
        )
    elif kind == "quadlet":
        acc.quadlets.append(parse_pastes.quadlet(name, text))
    elif kind == "pstree":
        _from_pstree(acc, name, parse_pastes.pstree_names(text) or [])


def _from_component(acc: _Acc, name: str, text: str) -> None:
    """A lone ``rootlesskit:`` block: Docker's (spaces) or nerdctl's (tabs), unless its state dir
    says whose it is."""
    found = parse_pastes.lone_rootlesskit_block(text)
    if found is None:
        return
    kit, tabs = found
    owner = parse_containerd.kit_owner(kit) or ("containerd" if tabs else "docker")
    cli = "docker" if owner == "docker" else "nerdctl"
    why = f"{name}: a rootlesskit component (cut out of `{cli} version`)"
    if owner == "containerd":
        acc.add_containerd(
            ContainerdFacts(
                running=replace(kit, source="nerdctl version"), rootless=True, rootless_reason=why
            )
        )
    else:
        acc.add_docker(DockerFacts(running=kit, rootless=True, rootless_reason=why))


def _from_pstree(acc: _Acc, name: str, names: list[str]) -> None:
    """A plain pstree shows which daemons run under a RootlessKit, not its drivers."""
    if "rootlesskit" not in names:
        acc.notes.append(f"{name}: pstree without a rootlesskit process")
        return
    how = "pstree without -a shows no arguments, so no drivers: paste `ps -eo pid,ppid,args`"
    if "dockerd" in names:
        acc.add_docker(
            DockerFacts(
                rootless=True,
                rootless_reason="pstree: dockerd under rootlesskit",
                notes=(f"{name}: {how}",),
            )
        )
    elif "containerd" in names:
        acc.add_containerd(
            ContainerdFacts(
                rootless=True,
                rootless_reason="pstree: containerd under rootlesskit, no dockerd",
                notes=(f"{name}: {how} or `systemctl --user status containerd`",),
            )
        )
    else:
        acc.notes.append(f"{name}: pstree shows rootlesskit without its arguments ({how})")


def _from_units(acc: _Acc) -> None:
    if not acc.units:
        return
    # systemd order: the unit (the file with ExecStart=) first, then drop-ins by file name
    mains = [u for u in acc.units if parse.unit_exec_start(u[1])]
    drops = sorted((u for u in acc.units if u not in mains), key=lambda u: Path(u[0]).name)
    ordered = mains + drops
    containerd_related = [u for u in ordered if _unit_owner(*u) == "containerd"]
    docker_related = [u for u in ordered if _unit_owner(*u) == "docker"]
    ignored = tuple(
        f"{name}: {line}"
        for name, text in docker_related
        for line in parse.unit_outside_section(text)
    )
    others = [u for u in ordered if u not in docker_related and u not in containerd_related]
    for name, _ in others:
        acc.notes.append(
            f"{name}: a systemd unit without dockerd, containerd-rootless.sh or their "
            "*_ROOTLESS_* variables (ignored)"
        )
    if containerd_related:
        _containerd_units(acc, containerd_related)
    for uname, utext in docker_related:
        for var in knowledge.docker_ignored_vars(parse.unit_environment([(uname, utext)])):
            acc.notes.append(f"{uname}: {var} is ignored: dockerd-rootless.sh never reads it")
    if docker_related:
        env = parse.unit_environment(docker_related)
        d = _docker_rootless_env(env)
        acc.add_docker(
            replace(d, unit_files=tuple(n for n, _ in docker_related), ignored_unit_lines=ignored)
        )


_UNIT_LINE = re.compile(r"[ \t]*(?:$|[#;]|\[[^\]\n]{1,64}\][ \t]*$|[A-Za-z][\w.-]{0,64}[ \t]*=)")


def _unit_only(acc: _Acc, name: str, text: str) -> str:
    """A pasted unit without the lines around it that are no unit lines (a command's error
    output after `cat`): they are skipped and listed in the notes."""
    kept: list[str] = []
    cut: list[str] = []
    for line in text.splitlines(keepends=True):
        (kept if _UNIT_LINE.match(line) else cut).append(line)
    if cut and kept:
        acc.notes.append(
            f"{name}: skipped {len(cut)} line(s) that are not unit lines: {cut[0].strip()[:80]!r}"
        )
        return "".join(kept)
    return text


def _unit_owner(name: str, text: str) -> str | None:
    """Whose unit or drop-in this is: the ``X.service.d`` directory it sits in says; else its
    ExecStart or the launcher variables it sets."""
    parts = Path(name).parts
    for d in reversed(parts[:-1]):
        if d.endswith(".service.d"):
            unit = d[: -len(".service.d")]
            return "containerd" if unit == "containerd" else "docker" if unit == "docker" else None
    if Path(name).name in ("containerd.service", "docker.service"):
        return Path(name).name.split(".")[0]
    exec_start = parse.unit_exec_start(text) or ""
    if "containerd-rootless" in exec_start or "CONTAINERD_ROOTLESS" in text:
        return "containerd"
    if "DOCKERD_ROOTLESS" in text or "dockerd" in exec_start:
        return "docker"
    return None


def _containerd_units(acc: _Acc, units: list[tuple[str, str]]) -> None:
    facts, per_file = parse_containerd.unit_facts(units)
    ignored = [
        f"{name}: {v}" for name, names in per_file.items()
        for v in knowledge.containerd_ignored_vars(names)
    ]  # fmt: skip
    acc.add_containerd(replace(facts, ignored_vars=tuple(ignored)))


def _from_procs(acc: _Acc) -> None:
    if not acc.procs:
        return
    # one Proc per PID (the same process can appear in two listings)
    seen: dict[tuple[int, tuple[str, ...]], Proc] = {}
    for p in acc.procs:
        seen.setdefault((p.pid, p.cmdline), p)
    procs = list(seen.values())
    for p in procs:
        if p.exe_name != "rootlesskit":
            continue
        kit = replace(parse.rootlesskit_argv(p.cmdline), pid=p.pid if p.pid > 0 else None)
        owner = parse_containerd.kit_owner(kit)
        if owner == "containerd" or (
            owner is None and parse_containerd.runs_containerd(p.pid, procs)
        ):
            acc.add_containerd(
                ContainerdFacts(
                    running=kit,
                    rootless=True,
                    rootless_reason=f"rootlesskit runs {kit.child or 'containerd'}",
                )
            )
        elif owner == "docker" or _is_docker_child(kit.child) or _runs_dockerd(procs, p.pid):
            acc.add_docker(
                DockerFacts(
                    running=kit,
                    rootless=True,
                    rootless_reason=f"rootlesskit runs {kit.child}",
                )
            )
        else:
            acc.kits.append(kit)
    names = {p.exe_name for p in procs}
    if names & {"dockerd", "dockerd-rootless.sh"} and acc.docker is None:
        acc.add_docker(DockerFacts(notes=("dockerd seen in the process listing",)))
    podman_seen = names & {"conmon", "rootlessport", "podman"}
    if podman_seen:
        handlers: dict[str, str] = {}
        for p in procs:
            if p.exe_name != "slirp4netns":
                continue
            args = list(p.cmdline)
            for i, a in enumerate(args):
                sock = None
                if a == "--api-socket" and i + 1 < len(args):
                    sock = args[i + 1]
                elif a.startswith("--api-socket="):
                    sock = a.split("=", 1)[1]
                # Podman gives slirp4netns an API socket "<tmpdir>/<container id>.net" only for
                # port_handler=slirp4netns (libpod/networking_slirp4netns.go)
                if sock and sock.endswith(".net"):
                    cid = Path(sock).name[: -len(".net")]
                    handlers[cid] = "slirp4netns"
        acc.proc_handlers.update(handlers)
        n_rp = sum(1 for p in procs if p.exe_name == "rootlessport")
        note = f"processes: {n_rp} rootlessport process(es)" if n_rp else ""
        acc.add_podman(PodmanFacts(notes=(note,) if note else ()))


def _from_api(acc: _Acc) -> None:
    for _name, kit in acc.api_kits:
        if parse_containerd.kit_owner(kit) == "containerd":
            acc.add_containerd(ContainerdFacts(running=kit, rootless=True))
            continue
        running = acc.docker.running if acc.docker else None
        docker_state = "dockerd-rootless" in (kit.state_dir or "")
        same_dir = running is not None and running.state_dir in (None, kit.state_dir)
        if docker_state or same_dir:
            acc.add_docker(DockerFacts(running=kit, rootless=True))
            continue
        for i, k in enumerate(acc.kits):
            if k.state_dir and k.state_dir == kit.state_dir:
                acc.kits[i] = merge(k, kit)
                break
        else:
            acc.kits.append(kit)


# What pastes carry besides the output: the shell prompt with the command, and the engines' own
# log lines (logrus "WARN[0000] ...", `time="..." level=warning msg=...`, docker's "WARNING: ...").
_PROMPT = (
    r"\S*[$#%>][ \t]*(?:sudo[ \t]+)?(?:podman|docker|systemctl|journalctl|ps|pstree|cat|"
    r"rootlessctl|rootlesskit)\b[^\n]*"
)
_LOG_LINE = (
    r"(?:(?:WARN|ERRO|INFO|DEBU|FATA|TRAC)\[\d+\]\s|time=\"[^\"\n]*\" level=\w+ |WARNING: )[^\n]*"
)
# One pass in C over the whole paste (a per-line Python loop took seconds on MiBs of short lines).
_NOISE = re.compile(rf"(?m)^(?:{_PROMPT}|{_LOG_LINE})(?:\n|\Z)")


def strip_paste_noise(text: str) -> str:
    """``text`` without prompt lines and engine log lines (kept when that leaves nothing)."""
    out = _NOISE.sub("", text)
    return out if out.strip() else text


# containers.conf keys that exist only from a Podman major version on (containers/common
# pkg/config/containers.conf per release; docs/facts.md "Podman"): with no `podman info` given,
# the config tells the version line. Only the major is claimed.
_CONF_KEY_SINCE = {"network.rootless_port_forwarder": "6"}


def _version_from_conf(acc: _Acc, p: PodmanFacts) -> PodmanFacts:
    for key, major in _CONF_KEY_SINCE.items():
        if key in p.conf:
            acc.notes.append(
                f"containers.conf sets {key.split('.')[1]}, a Podman {major}.x key: read as "
                f"Podman {major}.x (no `podman info` given)"
            )
            return replace(p, version=major)
    return p


def compose_texts(texts: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(name, text)`` pairs that are compose files: the host reads their ``.env`` and
    env files (host.compose_env) before :func:`from_texts`."""
    out = []
    for name, raw in texts:
        if "services" not in raw:
            continue  # no compose file: not worth a second full recognition of a long paste
        text = strip_paste_noise(raw)
        try:
            if recognise(text) == "compose":
                out.append((name, text))
        except ParseError:
            continue
    return out


def _compose(acc: _Acc, envs: Mapping[str, ComposeEnv]) -> None:
    """The compose file given, with the env files the host read next to it; an env file given
    with --from stands in for one of the same name that could not be read there."""
    if acc.compose_text is None:
        for name in acc.env_files:
            acc.notes.append(f"{name}: an env file, but no compose file was given to use it")
        return
    from .envfile import ComposeEnv, EnvFileText  # only with a compose file

    name, text = acc.compose_text
    env = envs.get(name) or ComposeEnv()
    acc.notes.extend(env.notes)
    wanted = {r.path for s in parse.compose(text, name, env).services for r in s.env_files}
    given = {Path(n).name: t for n, t in acc.env_files.items()}
    files = dict(env.env_files)
    for p in sorted(wanted):
        got = files.get(p)
        if (got is None or got.text is None) and Path(p).name in given:
            files[p] = EnvFileText(text=given.pop(Path(p).name))
    for n in given:
        acc.notes.append(f"{n}: an env file no service of {name} names (env_file:); not used")
    acc.compose = parse.compose(text, name, replace(env, env_files=files))


def from_texts(
    texts: Sequence[tuple[str, str]], compose_env: Mapping[str, ComposeEnv] | None = None
) -> HostFacts:
    """Recognise, parse and combine ``(name, text)`` pairs (the files given to ``check --from``,
    read by host.read_pasted) into one ``HostFacts(offline=True)``; ``compose_env`` holds what
    the host read next to each compose file (its ``.env`` and env files). An unrecognised or
    malformed text raises a one-line DoctorError naming it (exit code 2)."""
    acc = _Acc()
    for name, raw in texts:
        text, cut = parse_pastes.clean(strip_paste_noise(raw))
        acc.notes.extend(f"{name}: {n}" for n in cut)
        try:
            kind = recognise(text)
        except ParseError as e:
            raise DoctorError(f"{name}: not recognised: {e}", exit_code=2) from None
        try:
            _add(acc, kind, name, text)
        except ParseError as e:
            raise DoctorError(f"{name}: {kind}: {e}", exit_code=2) from None
    _from_units(acc)
    _from_procs(acc)
    _from_api(acc)
    try:
        _compose(acc, compose_env or {})
    except ParseError as e:
        raise DoctorError(
            f"{acc.compose_text[0] if acc.compose_text else ''}: compose: {e}", exit_code=2
        ) from None

    podman = acc.podman
    if acc.confs:
        origin: dict[str, str] = {}
        conf = parse.containers_conf(acc.confs, origin)
        podman = merge(
            podman or PodmanFacts(),
            PodmanFacts(conf=conf, conf_files=tuple(n for n, _ in acc.confs), conf_origin=origin),
        )
    if podman is not None and podman.version is None:
        podman = _version_from_conf(acc, podman)
    if podman is not None and acc.proc_handlers:
        # processes outrank the defaults, but only for containers the inspect output named
        seen = []
        for c in podman.containers:
            for cid, handler in acc.proc_handlers.items():
                if c.id and (c.id.startswith(cid) or cid.startswith(c.id)):
                    seen.append(replace(c, port_handler=handler))
        podman = merge(podman, PodmanFacts(containers=tuple(seen)))

    return HostFacts(
        offline=True,
        sources=tuple(name for name, _ in texts),
        docker=acc.docker,
        containerd=acc.containerd,
        podman=podman,
        rootlesskits=tuple(acc.kits),
        compose=acc.compose,
        quadlets=tuple(acc.quadlets),
        notes=tuple(acc.notes),
    )
