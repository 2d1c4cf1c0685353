"""Text → facts. Pure parsers of what engines print and what config files say.

Used by host.py (live: it runs the command / reads the file and hands the text here) and by
offline.py (``check --from``: the text a user pasted). Nothing here touches the OS.
Every parser raises ``ParseError`` (a DoctorError) with a one-line reason on text it cannot read.

Unknown stays ``None``: a parser never fills a value the text does not show. Where a value the
text leaves out has a documented default (RootlessKit's flags, Podman's port handlers) or where a
fact implies a verdict (no rootlesskit component ⇒ rootful), knowledge.py decides; parse.py only
hands it what the text shows.

Only stdlib at import time: ``check --from`` must start fast. tomllib and ruamel.yaml are imported
inside the functions that need them.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import knowledge
from .model import (
    ComposeFacts,
    ComposeService,
    ContainerFacts,
    DockerFacts,
    DoctorError,
    PodmanFacts,
    Proc,
    PublishedPort,
    RootlessKitFacts,
)

if TYPE_CHECKING:
    from .envfile import ComposeEnv


class ParseError(DoctorError):
    """Text that is not what it claims to be. The message says why, without the file name;
    callers add the file name (and ``line``, where the parser knows it)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# --------------------------------------------------------------------------- small helpers


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


class _JsonError(ValueError):
    pass


def _loads(t: str) -> Any:
    """``json.loads`` for untrusted text: nesting deeper than the interpreter's stack (1,000
    unclosed ``[``) is a ``_JsonError`` like any other malformed JSON, not a RecursionError."""
    try:
        return json.loads(t)
    except json.JSONDecodeError as e:
        raise _JsonError(f"{e.msg} at line {e.lineno}") from None
    except (ValueError, RecursionError) as e:
        raise _JsonError("nested too deeply" if isinstance(e, RecursionError) else str(e)) from None


def _json(text: str) -> Any:
    """The JSON value of ``text``, or ``None`` when it is not JSON."""
    t = _strip_bom(text).strip()
    if not t or t[0] not in "{[":
        return None
    try:
        return _loads(t)
    except _JsonError:
        return None


def _get(d: Any, *path: str) -> Any:
    """``d[path[0]][path[1]]...`` with case-insensitive keys; ``None`` where anything is missing.

    Podman and Docker changed key casing over the years (``Version``/``version``,
    ``cpu_utilization``/``cpuUtilization``); matching without case covers both."""
    cur = d
    for key in path:
        if type(cur) is dict and key in cur:  # JSON's dicts: no ABC check (per container)
            cur = cur[key]
            continue
        if not isinstance(cur, Mapping):
            return None
        if key in cur:
            cur = cur[key]
            continue
        low = key.lower().replace("_", "")
        for k, v in cur.items():
            if isinstance(k, str) and k.lower().replace("_", "") == low:
                cur = v
                break
        else:
            return None
    return cur


def _str(v: Any) -> str | None:
    """A non-empty string value, else None (``""``/null/absent mean "not known")."""
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v).strip()
    return s or None


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


# --------------------------------------------------------------------------- YAML

# ruamel.yaml is the one YAML reader (fixes/compose.py edits with its round-trip mode, so check and
# fix see a compose file alike); YAML 1.2, so `25:25` is a string, not a base-60 number.
# Pasted input is untrusted: anchors/aliases are allowed (compose files use `<<: *default`), but
# the document, with every alias expanded, may hold at most this many nodes (no alias bombs).
YAML_MAX_NODES = 100_000
# A compose file or `podman info` is KiBs; composing YAML costs ~2 s and ~16x the text in memory
# per MiB (ruamel, pure Python), so a bigger document is refused before it is parsed.
YAML_MAX_BYTES = 1 << 20


# Compose files nest a few levels; the YAML readers recurse per level (ruamel's round-trip
# loader took 34 s to fail on 2,000 nested `[`), so deeper flow nesting is refused unread.
YAML_MAX_FLOW_DEPTH = 64


class _YamlError(ValueError):
    pass


def yaml_guard(text: str) -> None:
    """Refuse YAML too big or too deeply nested to parse within bounds (``_YamlError``). Every
    bracket counts, in strings and comments too: this may over-count, never under-count."""
    if len(text) > YAML_MAX_BYTES:
        raise _YamlError(
            f"larger than {YAML_MAX_BYTES >> 20} MiB, more than a YAML file here holds"
        )
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    if deepest > YAML_MAX_FLOW_DEPTH:
        raise _YamlError(f"nested deeper than {YAML_MAX_FLOW_DEPTH} levels")


def _expanded_size(node: Any, budget: int) -> int:
    """Nodes of ``node`` with aliases expanded, counting down from ``budget`` (stops below 0)."""
    stack = [node]
    while stack and budget >= 0:
        n = stack.pop()
        budget -= 1
        value = getattr(n, "value", None)
        if isinstance(value, list):
            for item in value:
                stack.extend(item if isinstance(item, tuple) else (item,))
    return budget


def _yaml(text: str) -> Any:
    """YAML → Python value (ruamel.yaml, safe, imported only here). Raises ``_YamlError``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml_guard(text)
    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)  # the node graph first: its size is checked before building
        if node is None:
            return None
        if _expanded_size(node, YAML_MAX_NODES) < 0:
            raise _YamlError(f"more than {YAML_MAX_NODES} nodes with aliases expanded")
        return yaml.constructor.construct_document(node)
    except YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _YamlError(first) from None
    except _YamlError:
        raise
    except Exception as e:  # ruamel raises a few non-YAMLError types on odd input
        raise _YamlError(type(e).__name__) from None


def _data(text: str, what: str) -> Any:
    """JSON or YAML text → value, or ParseError("not JSON or YAML")."""
    if not text.strip():
        raise ParseError("empty")
    v = _json(text)
    if v is not None:
        return v
    t = _strip_bom(text).lstrip()
    if t[:1] in "{[":
        try:
            _loads(t)
        except _JsonError as e:
            raise ParseError(f"not valid JSON ({e})") from None
    try:
        return _yaml(text)
    except _YamlError as e:
        raise ParseError(f"not JSON or YAML ({e})") from None


# --------------------------------------------------------------------------- podman info


def podman_info(text: str) -> PodmanFacts:
    """`podman info` as JSON (``--format json``) or YAML, also the remote ``Client:``/``host:``
    form."""
    data = _data(text, "podman info")
    if not isinstance(data, Mapping):
        raise ParseError("not a podman info mapping")
    host = _get(data, "host")
    version = _get(data, "version")
    if not isinstance(host, Mapping) and not isinstance(version, Mapping):
        raise ParseError("no host or version section")
    host = host if isinstance(host, Mapping) else {}
    # Podman ≥ 1.x: host.security.rootless; Podman 1.x also had host.rootless.
    rootless = _bool(_get(host, "security", "rootless"))
    if rootless is None:
        rootless = _bool(_get(host, "rootless"))
    ver = _str(_get(version, "Version")) if isinstance(version, Mapping) else None
    backend = _str(_get(host, "networkBackend")) or _str(
        _get(host, "networkBackendInfo", "backend")
    )
    notes: list[str] = []
    if _bool(_get(host, "serviceIsRemote")) or _get(data, "Client") is not None:
        notes.append("podman info from a remote service (podman machine / --remote)")
    return PodmanFacts(
        version=ver,
        rootless=rootless,
        network_backend=backend,
        rootless_network_cmd=_str(_get(host, "rootlessNetworkCmd")),
        rootless_port_forwarder=_str(_get(host, "rootlessPortForwarder")),
        pasta_version=tool_version("pasta", _str(_get(host, "pasta", "version")) or ""),
        slirp4netns_version=tool_version(
            "slirp4netns", _str(_get(host, "slirp4netns", "version")) or ""
        ),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- docker version / info


def _indented_sections(text: str) -> list[tuple[int, str, str]]:
    """``Key: value`` lines of Docker's text output as (indent, key, value)."""
    out = []
    for line in _strip_bom(text).splitlines():
        if not line.strip():
            continue
        m = re.match(r"^(\s*)(\S[^:]*?):(?:\s+(.*))?$", line.rstrip())
        if m:
            out.append((len(m.group(1)), m.group(2).strip(), (m.group(3) or "").strip()))
        else:
            out.append((len(line) - len(line.lstrip()), line.strip(), ""))
    return out


def _kit_from_component(details: Mapping[str, Any], version: str | None) -> RootlessKitFacts:
    net = _str(_get(details, "NetworkDriver"))
    port = _str(_get(details, "PortDriver"))
    if port is None and net == "pasta":
        # Docker omits PortDriver when RootlessKit runs without one: with pasta that is the
        # implicit driver (moby api/server/router/system: rootlesskit component).
        port = "implicit"
    return RootlessKitFacts(
        version=version,
        network_driver=net,
        port_driver=port,
        state_dir=_str(_get(details, "StateDir")),
        source="docker version",
    )


def _kit_from_text(fields: Mapping[str, str]) -> RootlessKitFacts:
    """The ``rootlesskit:`` component of a text ``docker version``/``nerdctl version`` (keys
    lower-cased): Version, NetworkDriver, PortDriver, StateDir."""
    return _kit_from_component(
        {
            "NetworkDriver": fields.get("networkdriver"),
            "PortDriver": fields.get("portdriver"),
            "StateDir": fields.get("statedir"),
        },
        _str(fields.get("version")),
    )


def _answered_version(engine_version: str | None, kit: RootlessKitFacts | None) -> DockerFacts:
    """A daemon that answered `docker version`: its Engine version and RootlessKit component."""
    rootless, why = knowledge.docker_rootless_from_components(engine_version, kit is not None)
    return DockerFacts(
        reachable=True,
        version=engine_version,
        rootless=rootless,
        rootless_reason=why,
        running=kit,
    )


def docker_version(text: str) -> DockerFacts:
    """`docker version` text or ``--format '{{json .}}'`` JSON. Engine version, rootless (a
    ``rootlesskit`` component present), ``running`` RootlessKitFacts from that component."""
    if not text.strip():
        raise ParseError("empty")
    data = _json(text)
    if isinstance(data, Mapping):
        if _get(data, "Client") is None and _get(data, "Server") is None:
            raise ParseError("no Client or Server section")
        server = _get(data, "Server")
        if not isinstance(server, Mapping):
            return DockerFacts(reachable=False, notes=("docker version: no Server section",))
        engine_version = _str(_get(server, "Version"))
        kit: RootlessKitFacts | None = None
        comp_list = _get(server, "Components")
        for comp in comp_list if isinstance(comp_list, list) else []:
            name = (_str(_get(comp, "Name")) or "").lower()
            if name == "engine":
                engine_version = _str(_get(comp, "Version")) or engine_version
            elif name == "rootlesskit":
                details = _get(comp, "Details")
                kit = _kit_from_component(
                    details if isinstance(details, Mapping) else {}, _str(_get(comp, "Version"))
                )
        return _answered_version(engine_version, kit)
    if data is not None:
        raise ParseError("JSON but not docker version output")

    rows = _indented_sections(text)
    if not any(i == 0 and k.startswith(("Client", "Server")) for i, k, _ in rows):
        raise ParseError("no Client or Server section")
    if not any(k in ("API version", "Engine", "Version") and i > 0 for i, k, _ in rows):
        raise ParseError("no Version field")
    if any(k in ("Server Version", "Storage Driver") for _, k, _ in rows):
        raise ParseError("docker info output, not docker version")
    section = ""
    component = ""
    comp_indent = 0
    comps: dict[str, dict[str, str]] = {}
    server_seen = False
    for indent, key, value in rows:
        if indent == 0:
            section = key.split(":")[0]
            component = ""
            if section.startswith("Server"):
                server_seen = True
            continue
        if not section.startswith("Server"):
            continue
        if not value and (component == "" or indent <= comp_indent):
            component = key.lower()
            comp_indent = indent
            comps.setdefault(component, {})
            continue
        if component and indent > comp_indent:
            comps[component][key.lower()] = value
    unreachable = bool(
        re.search(r"Cannot connect to the Docker daemon|Is the docker daemon running", text)
    )
    if not server_seen:
        return DockerFacts(
            reachable=False if unreachable else None,
            notes=("docker version: no Server section",),
        )
    engine_version = _str(comps.get("engine", {}).get("version"))
    kit = _kit_from_text(comps["rootlesskit"]) if "rootlesskit" in comps else None
    return _answered_version(engine_version, kit)


def docker_info(text: str) -> DockerFacts:
    """`docker info` text or JSON: server version, ``rootless`` in Security Options."""
    if not text.strip():
        raise ParseError("empty")
    data = _json(text)
    if isinstance(data, Mapping):
        if not any(
            _get(data, k) is not None
            for k in ("ServerVersion", "SecurityOptions", "ClientInfo", "ServerErrors", "ID")
        ):
            raise ParseError("no ServerVersion or SecurityOptions field")
        version = _str(_get(data, "ServerVersion"))
        opts = _get(data, "SecurityOptions")
        errors = _get(data, "ServerErrors")
        rootless: bool | None = None
        if isinstance(opts, list):
            names = set()
            for o in opts:
                for part in str(o).split(","):
                    k, _, v = part.partition("=")
                    names.add((v if k == "name" else k).strip().lower())
            rootless = "rootless" in names
        reachable: bool | None = True if version else None
        if errors and not version:
            reachable = False
        return DockerFacts(
            reachable=reachable,
            version=version,
            rootless=rootless,
            rootless_reason="docker info Security Options" if rootless is not None else "",
        )
    if data is not None:
        raise ParseError("JSON but not docker info output")
    rows = _indented_sections(text)
    keys = {k for _, k, _ in rows}
    if not keys & {"Server Version", "Security Options", "Storage Driver", "Containers"}:
        raise ParseError("no Server Version or Security Options field")
    version = None
    rootless = None
    in_sec = False
    sec_indent = 0
    item_indent: int | None = None
    sec_names: list[str] = []
    for indent, key, value in rows:
        if key == "Server Version":
            version = _str(value)
        if key == "Security Options":
            in_sec, sec_indent, item_indent = True, indent, None
            continue
        if in_sec:
            if indent <= sec_indent:
                in_sec = False
                continue
            if item_indent is None:
                item_indent = indent
            if indent == item_indent:  # "  rootless"; "   Profile: builtin" is a detail
                sec_names.append(key.lower())
    if any(k == "Security Options" for _, k, _ in rows):
        rootless = "rootless" in sec_names
    unreachable = bool(re.search(r"Cannot connect to the Docker daemon", text))
    return DockerFacts(
        reachable=False if unreachable and not version else (True if version else None),
        version=version,
        rootless=rootless,
        rootless_reason="docker info Security Options" if rootless is not None else "",
    )


# --------------------------------------------------------------------------- rootlesskit

# Flags of rootlesskit (v0.14 … v3) that take no value; every other flag takes one.
_RK_BOOL_FLAGS = {
    "debug",
    "pidns",
    "cgroupns",
    "utsns",
    "ipcns",
    "disable-host-loopback",
    "ipv6",
    "detach-netns",
    "help",
    "h",
    "version",
    "v",
    "source-ip-transparent",
}


def rootlesskit_argv(argv: Sequence[str]) -> RootlessKitFacts:
    """Flags of one rootlesskit command line (``--net=``, ``--port-driver``, ``--state-dir``, the
    child command). Defaults as rootlesskit applies them (net host, port driver none)."""
    args = list(argv)
    start = 0
    for i, a in enumerate(args):
        if a.rsplit("/", 1)[-1] == "rootlesskit":
            start = i + 1
            break
    else:
        start = 1 if args else 0
    flags: dict[str, str] = {}
    child: str | None = None
    i = start
    while i < len(args):
        a = args[i]
        if a == "--":
            if i + 1 < len(args):
                child = args[i + 1]
            break
        if not a.startswith("-") or a == "-":
            child = a
            break
        name, eq, value = a.lstrip("-").partition("=")
        if not eq:
            if name in _RK_BOOL_FLAGS:
                value = "true"
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                value = ""
        flags[name] = value
        i += 1
    # A listing that cut the line ("pstree -a" ends long ones with "..."): what is missing is
    # unknown, not rootlesskit's default.
    cut = any(a in ("...", "…") for a in args)
    net, port = knowledge.rootlesskit_cli_drivers(
        flags.get("net") or None, flags.get("port-driver") or None, cut=cut
    )
    return RootlessKitFacts(
        network_driver=net,
        port_driver=port,
        state_dir=flags.get("state-dir") or None,
        child=child.rsplit("/", 1)[-1] if child and child not in ("...", "…") else None,
        source="command line",
        # RootlessKit 3: --source-ip-transparent (default true) turned off by hand
        transparent_backend="none"
        if knowledge.go_bool_false(flags.get("source-ip-transparent"))
        else None,
    )


def rootlesskit_api_info(text: str) -> RootlessKitFacts:
    """JSON of RootlessKit's ``GET /v1/info`` (or ``rootlessctl info --json``)."""
    data = _json(text)
    if data is None and text.strip():
        return _rootlessctl_info_text(text)
    if not isinstance(data, Mapping):
        raise ParseError("not a JSON object")
    if not any(
        _get(data, k) is not None
        for k in ("apiVersion", "version", "stateDir", "networkDriver", "portDriver")
    ):
        raise ParseError("no apiVersion, networkDriver or portDriver field")
    net = _str(_get(data, "networkDriver", "driver"))
    port_obj = _get(data, "portDriver")
    port = _str(_get(port_obj, "driver")) if isinstance(port_obj, Mapping) else None
    if port is None and net == "pasta":
        port = "implicit"  # /v1/info reports portDriver null with the implicit driver
    # RootlessKit ≥ 3 builtin (PR 613): the backend the child resolved, "nft", "iptables" or
    # "none" (rootlesskit pkg/port/builtin/builtin_test.go TestSourceIPTransparentBackend;
    # hack/integration-port-source-ip.sh reads .portDriver.extra.sourceIPTransparentBackend).
    backend = _get(port_obj, "extra", "sourceIPTransparentBackend")
    return RootlessKitFacts(
        version=_str(_get(data, "version")),
        network_driver=net,
        port_driver=port,
        state_dir=_str(_get(data, "stateDir")),
        source="api.sock",
        transparent_backend=backend.strip()[:32] if isinstance(backend, str) else None,
    )


def _rootlessctl_info_text(text: str) -> RootlessKitFacts:
    """``rootlessctl info`` without ``--json``: ``- Network Driver: slirp4netns`` lines."""
    vals: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^-\s+(\S[^:]*):\s*(.*)$", line.strip())
        if m and not line.startswith(("  ", "\t")):
            vals[m.group(1).strip().lower()] = m.group(2).strip()
    if not vals.keys() & {"network driver", "port driver", "implementation version"}:
        raise ParseError("not RootlessKit info (no networkDriver or portDriver)")
    net = _str(vals.get("network driver"))
    port = _str(vals.get("port driver"))
    if port is None and net == "pasta":
        port = "implicit"
    return RootlessKitFacts(
        version=_str(vals.get("implementation version")),
        network_driver=net,
        port_driver=port,
        state_dir=_str(vals.get("state directory")),
        source="rootlessctl info",
    )


# --------------------------------------------------------------------------- processes

_PS_CMD_COLS = ("COMMAND", "CMD", "ARGS", "COMMAND_LINE")
_TREE_ART = r"^[\s|`\\_│├└─┬]*(?:\\_\s*)?"
# No two repeats that can match the same character follow each other (a line of blanks would
# make that quadratic): the lazy class-star stops at the first branch.
_SYSTEMCTL_TREE = r"^[\s│├└─|`-]*?[├└]─\s*(\d+)\s+(.+)$"
# "Nov 24 10:00:00 host unit[1234]: msg", "2026-11-24T10:00:00+0100 host unit[1234]: msg",
# or without time and host ("journalctl -o cat"-like pastes): "dockerd-rootless.sh[1234]: msg"
_JOURNAL_PREFIX = (
    r"^(?:(?:\w{3}\s+\d{1,2}\s+\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\S+)\s+\S+\s+"
    r"([^\s\[:]+)(?:\[(\d+)\])?|([^\s\[:]+)\[(\d+)\]):\s?(.*)$"
)


def _split_cmd(cmd: str, *, shell_quoted: bool = False) -> tuple[str, ...]:
    if shell_quoted:
        import shlex

        try:
            return tuple(shlex.split(cmd))
        except ValueError:
            pass
    return tuple(cmd.split())


# pstree -a shows comm (not argv[0]) and may cut long argument lists with "...".
_PSTREE_LINE = r"^[\s|`│├└─┬+-]*?([A-Za-z0-9_.][\w.+-]*),(\d+)(?:\s+(.*))?$"

_PS_AUX_LINE = (
    r"^(\S+)\s+(\d+)\s+\d+(?:\.\d+)?\s+\d+(?:\.\d+)?\s+\d+\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s(.*)$"
)


def _exec_argv(cmd: str) -> tuple[str, ...]:
    """The argv of a shell ``exec`` (bash ``set -x`` quotes words with '...')."""
    argv = _split_cmd(cmd, shell_quoted=True)
    # "exec env FOO=1 rootlesskit ...": drop the environment prefix
    while argv and (argv[0] == "env" or re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0])):
        argv = argv[1:]
    return argv


def process_listing(text: str) -> list[Proc]:
    """Command lines out of ``ps`` output (with or without a header, also ``ps -eo args``),
    ``pstree -ap``, ``systemctl status`` trees, or journal lines with ``exec rootlesskit ...``.
    PIDs/ppids/uids where the text shows them, else 0/None."""
    procs: list[Proc] = []
    lines = _strip_bom(text).splitlines()
    header: list[str] | None = None
    tree: list[tuple[int, int]] = []  # pstree: (column, pid) of the open ancestors
    for line in lines:
        if not line.strip():
            continue
        # systemctl status: "├─1234 rootlesskit --net=..."
        m = re.match(_SYSTEMCTL_TREE, line)
        if m and "─" in line:
            procs.append(
                Proc(pid=int(m.group(1)), ppid=0, uid=None, cmdline=_split_cmd(m.group(2)))
            )
            continue
        # journal: "... dockerd-rootless.sh[1234]: + exec rootlesskit --net=..."
        m = re.match(_JOURNAL_PREFIX, line)
        if m:
            msg = m.group(5)
            jpid = m.group(2) or m.group(4)
            em = re.search(r"(?:^|\s)(?:\++\s+)?exec\s+(.+)$", msg)
            if em:
                argv = _exec_argv(em.group(1))
                if argv:
                    # the shell's PID: `exec` makes it rootlesskit's PID
                    pid = int(jpid) if jpid else 0
                    procs.append(Proc(pid=pid, ppid=0, uid=None, cmdline=argv))
            continue
        # dockerd-rootless.sh under `set -x` (journal without prefix): "+ exec rootlesskit ..."
        m = re.match(r"^\s*\++\s+exec\s+(.+)$", line)
        if m:
            argv = _exec_argv(m.group(1))
            if argv:
                procs.append(Proc(pid=0, ppid=0, uid=None, cmdline=argv))
            continue
        tokens = line.split()
        if (
            header is None
            and tokens[-1:]
            and tokens[-1] in _PS_CMD_COLS
            and ("PID" in tokens or len(tokens) == 1)
        ):
            header = tokens  # ["COMMAND"] alone: `ps -eo args`, one command line a row
            continue
        if header is not None and len(header) == 1:
            procs.append(Proc(pid=0, ppid=0, uid=None, cmdline=_split_cmd(line.strip())))
            continue
        # pstree -ap: "  |-rootlesskit,1234 --net=slirp4netns ..." (threads "{name},N": skip);
        # the parent is the nearest line above that starts further left.
        m = re.match(_PSTREE_LINE, line)
        if m:
            col, pid = m.start(1), int(m.group(2))
            while tree and tree[-1][0] >= col:
                tree.pop()
            ppid = tree[-1][1] if tree else 0
            tree.append((col, pid))
            args = _split_cmd(m.group(3) or "")
            procs.append(Proc(pid=pid, ppid=ppid, uid=None, cmdline=(m.group(1), *args)))
            continue
        if header is not None:
            parts = line.split(None, len(header) - 1)
            if len(parts) < len(header):
                continue
            cols = dict(zip(header, parts, strict=False))
            row_pid = _int(cols.get("PID"))
            if row_pid is None:
                continue
            cmd = re.sub(_TREE_ART, "", parts[-1])
            uid: int | None = _int(cols.get("UID")) if "UID" in cols else None
            procs.append(
                Proc(
                    pid=row_pid,
                    ppid=_int(cols.get("PPID")) or 0,
                    uid=uid,
                    cmdline=_split_cmd(cmd),
                )
            )
            continue
        # `ps aux` without its header: USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND
        m = re.match(_PS_AUX_LINE, line)
        if m:
            procs.append(
                Proc(
                    pid=int(m.group(2)),
                    ppid=0,
                    uid=_int(m.group(1)),
                    cmdline=_split_cmd(re.sub(_TREE_ART, "", m.group(3))),
                )
            )
            continue
        # pgrep -a / ps -o pid=,ppid=,args=: "1234 [1] cmd ..."
        m = re.match(r"^\s*(\d+)\s+(?:(\d+)\s+)?(\S.*)$", line)
        if m:
            cmd = re.sub(_TREE_ART, "", m.group(3))
            procs.append(
                Proc(
                    pid=int(m.group(1)),
                    ppid=int(m.group(2)) if m.group(2) else 0,
                    uid=None,
                    cmdline=_split_cmd(cmd),
                )
            )
    procs = [p for p in procs if p.cmdline]
    if not procs:
        raise ParseError("no process lines (expected ps, systemctl status or journal output)")
    return procs


# --------------------------------------------------------------------------- inspect


def _inspect_list(text: str) -> list[Mapping[str, Any]]:
    if not text.strip():
        raise ParseError("empty")
    data = _json(text)
    if data is None:
        raise ParseError("not JSON")
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(c, Mapping) for c in data):
        raise ParseError("not a JSON list of containers")
    for c in data:
        if _get(c, "Config") is None and _get(c, "HostConfig") is None:
            raise ParseError("no Config or HostConfig field (not container inspect output)")
    return data


def _ports(settings_ports: Any, bindings: Any) -> tuple[PublishedPort, ...]:
    """Published ports: what a running container has (NetworkSettings.Ports), else what it was
    created with (HostConfig.PortBindings, where the host IP is "" for "all")."""
    out: list[PublishedPort] = []
    seen: set[tuple[int, int, str, str]] = set()
    live = isinstance(settings_ports, Mapping) and any(
        isinstance(b, list) and b for b in settings_ports.values()
    )
    for src in (settings_ports,) if live else (bindings,):
        if not isinstance(src, Mapping):
            continue
        for key, binds in src.items():
            cport, _, proto = str(key).partition("/")
            cp = _int(cport)
            if cp is None or not isinstance(binds, list):
                continue
            for b in binds:
                hp = _int(_get(b, "HostPort"))
                if hp is None:
                    continue
                ip = _str(_get(b, "HostIp")) or ""
                k = (hp, cp, proto or "tcp", ip)
                if k not in seen:
                    seen.add(k)
                    out.append(
                        PublishedPort(
                            host_port=hp, container_port=cp, protocol=proto or "tcp", host_ip=ip
                        )
                    )
    return tuple(out)


def _env(v: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in v if isinstance(v, list) else []:
        k, eq, val = str(item).partition("=")
        if eq and k:
            out[k] = val
    return out


def _network_flag(cmd: Sequence[str]) -> str | None:
    """The value of ``--network``/``--net`` in a podman create/run command line (the last)."""
    value = None
    for i, a in enumerate(cmd):
        if not a.startswith("--net"):
            continue
        if a in ("--network", "--net"):
            if i + 1 < len(cmd):
                value = cmd[i + 1]
        elif a.startswith(("--network=", "--net=")):
            value = a.split("=", 1)[1]
    return value


def _rootful_paths(c: Mapping[str, Any]) -> bool | None:
    """Podman inspect shows storage paths: /var/lib/containers → root, ~/.local/share → rootless."""
    for key in ("StaticDir", "ConmonPidFile", "OCIConfigPath", "ResolvConfPath"):
        p = _str(_get(c, key)) or ""
        if p.startswith(("/var/lib/containers/", "/run/containers/", "/var/run/containers/")):
            return True
        if "/.local/share/containers/" in p or p.startswith("/run/user/"):
            return False
    return None


def podman_inspect(text: str) -> list[ContainerFacts]:
    """`podman inspect` JSON (a list of containers)."""
    out = []
    for c in _inspect_list(text):
        cmd_v = _get(c, "Config", "CreateCommand")
        cmd = tuple(str(a) for a in cmd_v) if isinstance(cmd_v, list) else ()
        mode = _str(_get(c, "HostConfig", "NetworkMode"))
        flag = _network_flag(cmd)
        if mode and flag and ":" in flag and flag.partition(":")[0] == mode:
            mode = flag  # keep the options ("slirp4netns:port_handler=slirp4netns")
        handler = knowledge.podman_inspect_port_handler(mode, rootful=_rootful_paths(c))
        out.append(_container(c, "podman", mode, handler, cmd))
    return out


def _container(
    c: Mapping[str, Any],
    engine: Literal["docker", "podman"],
    mode: str | None,
    handler: str | None,
    create_command: tuple[str, ...] = (),
) -> ContainerFacts:
    """The fields docker and podman inspect print alike."""
    nets = _get(c, "NetworkSettings", "Networks")
    pid = _int(_get(c, "State", "Pid"))
    return ContainerFacts(
        engine=engine,
        name=(_str(_get(c, "Name")) or "").lstrip("/"),
        id=_str(_get(c, "Id")) or "",
        network_mode=mode,
        port_handler=handler,
        networks=tuple(nets) if isinstance(nets, Mapping) else (),
        ports=_ports(_get(c, "NetworkSettings", "Ports"), _get(c, "HostConfig", "PortBindings")),
        env=_env(_get(c, "Config", "Env")),
        pid=pid or None,
        create_command=create_command,
    )


def docker_inspect_rootless(text: str) -> bool | None:
    """Whether the daemon that made these containers runs rootless, from where it keeps them:
    a rootless dockerd's state is under ``$XDG_RUNTIME_DIR`` (``/run/user/UID/docker``) and
    ``~/.local/share/docker``; a rootful one's under ``/var/run/docker`` and ``/var/lib/docker``.
    None when the paths say neither (a custom data-root)."""
    for c in _inspect_list(text):
        paths = [_str(_get(c, "NetworkSettings", "SandboxKey")), _str(_get(c, "ResolvConfPath"))]
        for p in filter(None, paths):
            if p.startswith("/run/user/") or "/.local/share/docker/" in p:
                return True
            if p.startswith(("/var/run/docker/", "/run/docker/", "/var/lib/docker/")):
                return False
    return None


def docker_inspect(text: str) -> list[ContainerFacts]:
    """`docker inspect` JSON (a list of containers)."""
    out = []
    for c in _inspect_list(text):
        mode = _str(_get(c, "HostConfig", "NetworkMode"))
        if mode == "default":
            mode = "bridge"  # Docker on Linux: "default" is the bridge network
        # port_handler None: a property of the daemon's RootlessKit, not of the container
        out.append(_container(c, "docker", mode, None))
    return out


# --------------------------------------------------------------------------- containers.conf


def _merge_conf_value(old: Any, new: Any) -> Any:
    # containers.conf (Podman 5+): an array ending in {append=true} extends the earlier value
    if isinstance(new, list) and new and isinstance(new[-1], dict) and new[-1].get("append"):
        base = old if isinstance(old, list) else []
        return [*base, *new[:-1]]
    if isinstance(new, list) and new and isinstance(new[-1], dict) and "append" in new[-1]:
        return new[:-1]
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for k, v in new.items():
            merged[k] = _merge_conf_value(merged.get(k), v)
        return merged
    return new


# A whole-line comment TOML accepts (no control character but tab). A distro's containers.conf is
# ~95 % such lines (Debian's: 24-36 KB) and tomllib reads them a character at a time (~3 ms, on
# a live check's critical path): blanked before parsing, so line numbers in errors stay right.
_CONF_COMMENT_LINE = re.compile(r"(?m)^[ \t]*#[^\x00-\x08\x0a-\x1f\x7f]*$")


def containers_conf(
    files: Sequence[tuple[str, str]], origins: dict[str, str] | None = None
) -> dict[str, object]:
    """Merge containers.conf texts given in load order → {"table.key": value}. Later files win
    per key, as Podman merges them. ``origins``, when given, gets {"table.key": the name of the
    last file that set it} (a verdict names the file that decided it)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10 (Ubuntu 22.04): the same parser, published as tomli
        import tomli as tomllib

    merged: dict[str, object] = {}
    for name, text in files:
        text = _strip_bom(text)
        if '"""' not in text and "'''" not in text:  # no multi-line string can hold such a line
            text = _CONF_COMMENT_LINE.sub("", text)
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            where = f"{name}: " if len(files) > 1 else ""
            # Python 3.11's TOMLDecodeError has no lineno: the message ends "(at line N, ...)"
            at = re.search(r"\(at line (\d+)", str(e))
            raise ParseError(f"{where}not TOML ({e})", line=int(at[1]) if at else None) from None
        for table, body in doc.items():
            # Podman decodes with BurntSushi/toml, which matches table and key names to its
            # struct fields without case: "[Network]" is "[network]".
            table = table.lower()
            if isinstance(body, dict):
                for key, value in body.items():
                    k = f"{table}.{key.lower()}"
                    merged[k] = _merge_conf_value(merged.get(k), value)
                    if origins is not None:
                        origins[k] = name
            else:
                merged[table] = _merge_conf_value(merged.get(table), body)
                if origins is not None:
                    origins[table] = name
    return merged


# --------------------------------------------------------------------------- systemd units


def _unit_lines(text: str) -> Iterator[tuple[str, str]]:
    """(section, line) pairs of a unit file, with backslash continuations joined."""
    section = ""
    pending = ""
    for raw in _strip_bom(text).splitlines():
        line = raw.strip()
        if pending:
            if line.startswith(("#", ";")):
                continue  # comments inside a continuation are skipped (systemd.syntax)
            line = pending + " " + line
            pending = ""
        elif not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        yield section, line
    if pending:
        yield section, pending


_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def systemd_words(value: str) -> list[str]:
    """Words of a systemd setting: whitespace-separated, "double"/'single' quoted parts, C
    escapes (extract_first_word with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)."""
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            break
        word = ""
        quote = ""
        while i < n:
            ch = value[i]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and i + 1 < n:
                    i += 1
                    word += _C_ESCAPES.get(value[i], value[i])
                else:
                    word += ch
            elif ch in "\"'":
                quote = ch
            elif ch.isspace():
                break
            elif ch == "\\" and i + 1 < n:
                i += 1
                word += _C_ESCAPES.get(value[i], value[i])
            else:
                word += ch
            i += 1
        words.append(word.replace("%%", "%"))
    return words


def unit_environment(files: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Environment= of a systemd unit and its drop-ins, given in systemd's order (unit first,
    then drop-ins sorted by file name). Later assignments win; an empty ``Environment=`` resets
    the list, as systemd does. Only the [Service] section counts."""
    env: dict[str, str] = {}
    for name, text in files:
        lines = list(_unit_lines(text))
        if any("=" not in line for _, line in lines):
            where = f"{name}: " if len(files) > 1 else ""
            raise ParseError(f"{where}not a systemd unit (a line that is no Key=value)")
        # Assignments before any [Section] header: systemd logs "Assignment outside of
        # section. Ignoring." -- they count for nothing (see unit_outside_section).
        for section, line in lines:
            if section != "Service":
                continue
            key, eq, value = line.partition("=")
            if not eq or key.strip() != "Environment":
                continue
            value = value.strip()
            if not value:
                env.clear()
                continue
            for word in systemd_words(value):
                k, eq2, v = word.partition("=")
                # systemd ignores assignments with invalid variable names
                if eq2 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                    env[k] = v
    return env


def unit_outside_section(text: str) -> list[str]:
    """Assignments before the first [Section] header; systemd ignores them."""
    return [line for section, line in _unit_lines(text) if not section]


def unit_exec_start(text: str) -> str | None:
    """The last ExecStart= of a unit's [Service] section (an empty one resets), or None."""
    cmd: str | None = None
    for section, line in _unit_lines(text):
        key, eq, value = line.partition("=")
        if section == "Service" and eq and key.strip() == "ExecStart":
            cmd = value.strip() or None
    return cmd


# --------------------------------------------------------------------------- daemon.json


def daemon_json(text: str) -> dict[str, object]:
    """daemon.json → dict (JSON object)."""
    t = _strip_bom(text).strip()
    if not t:
        raise ParseError("empty")
    try:
        data = _loads(t)
    except _JsonError as e:
        raise ParseError(f"not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ParseError("not a JSON object")
    return data


# --------------------------------------------------------------------------- compose


def _compose_ports(spec: Any) -> tuple[PublishedPort, ...]:
    out: list[PublishedPort] = []
    for p in spec if isinstance(spec, list) else []:
        if isinstance(p, Mapping):
            target = _int(_get(p, "target"))
            published = _get(p, "published")
            proto = _str(_get(p, "protocol")) or "tcp"
            ip = _str(_get(p, "host_ip")) or ""
            if target is None:
                continue
            for hp, cp in port_range(str(published) if published is not None else "", str(target)):
                out.append(
                    PublishedPort(host_port=hp, container_port=cp, protocol=proto, host_ip=ip)
                )
            continue
        s = str(p).strip()
        proto = "tcp"
        if "/" in s:
            s, proto = s.rsplit("/", 1)
        ip = ""
        if s.startswith("["):  # "[::1]:8080:80"
            end = s.find("]")
            ip, s = s[1:end], s[end + 2 :]
        parts = s.split(":")
        if len(parts) == 3:
            ip, host, cont = parts
        elif len(parts) == 2:
            host, cont = parts
        elif len(parts) == 1:
            host, cont = "", parts[0]
        else:
            continue
        for hp, cp in port_range(host, cont):
            out.append(PublishedPort(host_port=hp, container_port=cp, protocol=proto, host_ip=ip))
    return tuple(out)


def port_range(host: str, cont: str) -> list[tuple[int, int]]:
    """Host/container port specs ("8000-8010", "80-90"; host "" = none) → (host, container)
    pairs; host 0: an ephemeral port the engine picks. A range counts at most 1025 ports; ranges
    of different lengths give [] (unless the container side is one port), as does a spec that is
    not numeric. Shared by compose's ports and nerdctl ps's Ports column (parse_containerd.py)."""

    def rng(s: str) -> list[int] | None:
        s = s.strip()
        if not s:
            return []
        a, _, b = s.partition("-")
        if not a.isdigit() or (b and not b.isdigit()):
            return None
        lo, hi = int(a), int(b or a)
        return list(range(lo, min(hi, lo + 1024) + 1))

    hs, cs = rng(host), rng(cont)
    if cs is None or hs is None or not cs:
        return []
    if not hs:
        return [(0, c) for c in cs]
    if len(hs) == len(cs):
        return list(zip(hs, cs, strict=True))
    return [(h, cs[0]) for h in hs] if len(cs) == 1 else []


def compose_environment(v: Any) -> dict[str, str]:
    """A compose ``environment:`` (mapping or ``KEY=value`` list) → dict; unset keys left out."""
    out: dict[str, str] = {}
    if isinstance(v, Mapping):
        for k, val in v.items():
            if val is None:
                continue  # value comes from the shell environment: unknown here
            out[str(k)] = str(val).lower() if isinstance(val, bool) else str(val)
    elif isinstance(v, list):
        for item in v:
            k, eq, val = str(item).partition("=")
            if eq:
                out[k] = val
    return out


def compose(text: str, path: str, env: ComposeEnv | None = None) -> ComposeFacts:
    """A compose file → services with network_mode, networks, ports, cap_add and environment.

    Interpolated as Compose does (``${VAR:-default}``; the variables of ``env``: ``.env`` and, live,
    the shell); each service's environment is its env files under ``environment:``
    (envfile.py). ``env`` holds what the host read; without it, env files count as not read."""
    from . import envfile

    data = _data(text, "compose")
    if not isinstance(data, Mapping):
        raise ParseError("not a YAML mapping")
    env = env or envfile.ComposeEnv()
    try:
        data = envfile.interpolate_tree(data, env.variables)
    except envfile.InterpolationError as e:
        raise ParseError(str(e)) from None
    base_dir = posixpath.dirname(path) or "."
    services = _get(data, "services")
    if services is None:
        # compose file format v1: services at the top level
        if data and all(
            isinstance(v, Mapping) and ("image" in v or "build" in v) for v in data.values()
        ):
            services = data
        else:
            raise ParseError("no services section")
    if not isinstance(services, Mapping):
        raise ParseError("services is not a mapping")
    out = []
    for name, svc in services.items():
        if not isinstance(svc, Mapping):
            continue
        nets = svc.get("networks")
        networks = tuple(str(n) for n in nets) if isinstance(nets, (Mapping, list)) else ()
        caps = svc.get("cap_add")
        refs = envfile.env_file_refs(svc.get("env_file"), base_dir)
        senv = envfile.service_env(svc.get("environment"), refs, env.env_files)
        out.append(
            ComposeService(
                name=str(name),
                image=_str(svc.get("image")) or "",
                network_mode=_str(svc.get("network_mode")),
                networks=networks,
                ports=_compose_ports(svc.get("ports")),
                cap_add=tuple(str(c) for c in caps) if isinstance(caps, list) else (),
                environment=senv.values,
                env_origin=senv.origin,
                env_files=refs,
                env_missing=senv.missing,
                env_skipped=senv.skipped,
            )
        )
    return ComposeFacts(path=path, services=tuple(out))


# --------------------------------------------------------------------------- tool versions


def _pasta_version(output: str) -> str | None:
    """pasta/passt versions are dates: upstream "2024_09_06.6b38f07", Fedora's package form
    "0^20240906.g6b38f07", Debian's "0.0~git20230309.7c7625d". All → "2024_09_06[.commit]",
    the form upstream release notes compare against. "unknown version" → None."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    m = re.search(r"\b(20\d\d)_(\d\d)_(\d\d)(?:\.([0-9a-f]{6,}))?", first)
    if not m:
        m = re.search(r"(20\d\d)(\d\d)(\d\d)\.g?([0-9a-f]{6,})?", first)
    if not m:
        return None
    date = f"{m.group(1)}_{m.group(2)}_{m.group(3)}"
    return f"{date}.{m.group(4)}" if m.group(4) else date


def tool_version(name: str, output: str) -> str | None:
    """The version out of ``NAME --version`` output (slirp4netns, pasta, rootlesskit, podman,
    newuidmap, ...)."""
    if not output or not output.strip():
        return None
    base = name.rsplit("/", 1)[-1].lower()
    if base in ("pasta", "passt", "pesto"):
        return _pasta_version(output)
    text = output.strip()
    # "slirp4netns version 1.2.0", "rootlesskit version 1.1.0", "podman version 4.3.1",
    # "Docker version 20.10.24+dfsg1, build 5d6db84", "iptables v1.8.9 (nf_tables)"
    m = re.search(r"(?i)\bversion:?\s+v?(\d+(?:\.\d+)+[\w.+~-]*)", text)
    if not m:
        m = re.search(r"(?<![\w.])v?(\d+(?:\.\d+)+[\w.+~-]*)", text)
    if not m:
        return None
    return m.group(1).rstrip(".,-")
