"""Planner for `rootless-doctor fix compose`: ``network_mode`` + ``NETWORK_INTERFACE`` of a service.

Podman (docs/facts.md "Podman"): ``network_mode: pasta`` keeps source IPs wherever Podman has
pasta (4.4+, default from 5.0, the only one from 6.0); on Podman ≤ 5 without pasta,
``"slirp4netns:port_handler=slirp4netns"`` does (docker-mailserver ``config/advanced/podman.md``).
A service that joins compose networks cannot take a ``network_mode`` (compose rejects the pair), so
we refuse and say what to do. For Docker, ``network_mode`` cannot help: the daemon's RootlessKit
port driver decides, so the answer is `rootless-doctor fix docker`.

``NETWORK_INTERFACE`` is docker-mailserver's setting (it must name an interface that exists in the
container or the container stops): ``tap0`` with slirp4netns, the host's interface name with
pasta. It is set for docker-mailserver images and wherever the service already sets it.

The file is parsed with ruamel.yaml (round-trip, for the node positions) and edited by splicing
lines at those positions, so every other byte — comments, quoting, indentation — stays.
``parse.compose`` (what ``check`` reads) uses the same library (safe mode: values only; an edit
needs the line and column of each node), so both read a compose file alike (YAML 1.2, merge
keys). Values that both need (the environment) come from parse.py.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import knowledge, parse, throughput
from ..model import ComposeService, DoctorError, FilePlan, PodmanFacts

if TYPE_CHECKING:
    from ..envfile import ComposeEnv


@dataclass(frozen=True, kw_only=True)
class ComposePlan:
    plan: FilePlan | None  # None: nothing to write (see ``advice``)
    advice: str = ""
    service: str = ""
    mode: str = ""
    # the env file that keeps NETWORK_INTERFACE, when that is where the user set it
    env_plan: FilePlan | None = None

    @property
    def plans(self) -> list[FilePlan]:
        return [p for p in (self.plan, self.env_plan) if p is not None]


def podman_mode(p: PodmanFacts | None, pasta_installed: bool) -> str:
    """The network_mode that keeps source IPs on this Podman (knowledge.py decides)."""
    return knowledge.podman_keep_ip_mode(p.version if p else None, pasta_installed)


def _service_facts(text: str, name: str, svc_name: str, env: ComposeEnv | None) -> ComposeService:
    """The service as ``check`` reads it: its environment with the env files (``env``: what the
    host read next to the compose file), interpolated."""
    try:
        found = parse.compose(text, name, env)
    except parse.ParseError as e:
        raise DoctorError(f"{name}: {e}; fix it first") from None
    return next(s for s in found.services if s.name == svc_name)


def _load(text: str, name: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        parse.yaml_guard(text)  # the bounds check's reader has: size, nesting
    except ValueError as e:
        raise DoctorError(f"{name}: not YAML this fix edits ({e}); fix it first") from None
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DoctorError(f"{name}{where}: not valid YAML ({problem}); fix it first") from None
    except Exception as e:  # ruamel raises a few non-YAMLError types on odd input
        raise DoctorError(f"{name}: not valid YAML ({type(e).__name__}); fix it first") from None


def _services(data: Any, name: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(data, CommentedMap) or not isinstance(data.get("services"), CommentedMap):
        raise DoctorError(f"{name}: no `services:` mapping; not a compose file")
    return data["services"]


def _pick_service(services: Any, name: str, service: str | None) -> str:
    """``service`` if the file has it; else the only service, or the only one with ports."""
    names = [str(k) for k in services]
    if service:
        if service not in services:
            raise DoctorError(f"{name}: no service {service!r}; services: {', '.join(names)}")
        return service
    if len(names) == 1:
        return names[0]
    # A service may be anything in a broken file (a scalar, a list): only mappings have ports.
    with_ports = [n for n in names if isinstance(services[n], Mapping) and services[n].get("ports")]
    if len(with_ports) == 1:
        return with_ports[0]
    raise DoctorError(f"{name}: several services ({', '.join(names)}); choose one with --service")


def plan(
    path: Path,
    text: str,
    *,
    service: str | None,
    engine: Literal["podman", "docker"],
    podman: PodmanFacts | None = None,
    pasta_installed: bool = False,
    host_interface: str | None = None,
    env: ComposeEnv | None = None,
    mtu: bool = False,
) -> ComposePlan:
    """``env`` is what the host read next to the compose file (``.env``, env files): the
    ``NETWORK_INTERFACE`` a service keeps in an env file is set there, never in both places.
    ``mtu`` (``fix compose --mtu``): with Docker, the compose networks of the service get
    ``com.docker.network.driver.mtu`` (see :func:`_network_mtu_plan`); with Podman the fix puts
    the service on pasta or slirp4netns, which have no compose network and run at MTU 65520
    already, so nothing more is written and a note says so."""
    name = str(path)
    data = _load(text, name)
    services = _services(data, name)
    svc_name = _pick_service(services, name, service)
    svc = services[svc_name]
    if engine == "docker":
        advice = (
            f"{path.name}: with rootless Docker, network_mode cannot keep client source "
            "IPs: the daemon's RootlessKit port driver decides for every container. Run "
            f"`{knowledge.FIX_DOCKER}{' --mtu' if mtu else ''}`, restart the daemon, then "
            f"recreate the service (`docker compose up -d --force-recreate {svc_name}`)."
        )
        if not mtu:
            return ComposePlan(plan=None, service=svc_name, advice=advice)
        return _network_mtu_plan(path, text, data, svc_name, advice)
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(svc, CommentedMap) or svc.fa.flow_style():
        raise DoctorError(
            f"{name}: service {svc_name!r} is not a block mapping; edit it by hand "
            f"(network_mode: {podman_mode(podman, pasta_installed)})"
        )
    m = knowledge.major(podman.version if podman else None)
    want = podman_mode(podman, pasta_installed)
    if "networks" in svc:
        nets = svc["networks"]
        if isinstance(nets, (Mapping, list)):
            listed = ", ".join(str(n) for n in nets) if nets else "(empty)"
        else:  # `networks: front` is not valid compose; name it as written
            listed = str(nets)
        podman6 = (
            "; or keep the networks and run `rootless-doctor fix podman` (Podman 6: "
            'rootless_port_forwarder = "pasta", experimental, IPv4 only)'
            if m is not None and m >= 6
            else ""
        )
        raise DoctorError(
            f"{name}: service {svc_name!r} joins networks {listed}, and network_mode cannot be "
            f"combined with networks: remove `networks:` from {svc_name!r} (other services then "
            "reach it through its published ports on the host) and run again" + podman6
        )

    current = svc.get("network_mode")
    cur = str(current) if current is not None else None
    base, _ = knowledge.split_network_mode(cur)
    if base in ("service", "container"):
        raise DoctorError(
            f"{name}: service {svc_name!r} uses the network of {cur!r}: fix that service instead"
        )
    keeps = knowledge.podman_mode_keeps_ip(cur, podman.version if podman else None)
    mode = cur if keeps and cur is not None else want
    iface = knowledge.mode_interface(mode) or host_interface
    facts = _service_facts(text, name, svc_name, env)
    key = "NETWORK_INTERFACE"
    wants_iface = knowledge.is_mailserver(facts.image, facts.environment) or key in facts.env_origin
    env_node = svc.get("environment")
    # where the user keeps NETWORK_INTERFACE: `environment:` (it wins), else the env file that
    # sets it (the last one), else `environment:` gets it
    keeper = _env_file_keeper(facts, env, key) if key not in _raw_env(env_node) else None

    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    step = _indent_step(services, svc_name)
    col = svc.lc.key(next(iter(svc)))[1] if len(svc) else services.lc.key(svc_name)[1] + step
    edits: list[tuple[int, int, list[str]]] = []  # (first line, lines replaced, new lines)

    if cur != mode:
        if "network_mode" in svc:
            ln = svc.lc.key("network_mode")[0]
            edits.append((ln, 1, [_replace_scalar_line(lines[ln], "network_mode", mode, name, ln)]))
        else:
            edits.append(
                (_after_image(svc, lines), 0, [" " * col + f"network_mode: {_q(mode)}{nl}"])
            )
    notes: list[str] = []
    if mtu:
        notes.append(
            f"--mtu: nothing to set in {path.name}: with network_mode {mode} the service has no "
            f"compose network, and {mode.split(':')[0]} gives the container MTU "
            f"{throughput.TUNED_MTU} already"
        )
    if wants_iface and iface is None:
        notes.append(
            "set NETWORK_INTERFACE to the host's main interface name (pasta copies it into the "
            "container; see `ip route show default`), or pass --interface"
        )
    env_plan = None
    if wants_iface and iface is not None and facts.environment.get(key) != iface:
        if keeper is not None:
            env_plan = _env_file_plan(keeper, key, iface, svc_name, mode)
        else:
            edits.extend(_env_edits(svc, env_node, iface, lines, col, step, nl, name, cur != mode))
    if not edits:
        return ComposePlan(
            plan=FilePlan(path=path, before=text, after=text, what=f"{svc_name}: {mode} already"),
            service=svc_name,
            mode=mode,
            advice="; ".join(notes),
            env_plan=env_plan,
        )
    after = _splice(lines, edits)
    in_compose = wants_iface and keeper is None
    _verify(after, name, svc_name, mode, iface if in_compose else None)
    what = f"service {svc_name}: network_mode {mode} keeps client source IPs"
    if in_compose and iface:
        what += f"; NETWORK_INTERFACE={iface} (the interface {mode.split(':')[0]} gives it)"
    if len(services) > 1:
        notes.append(
            f"other services of this project no longer reach {svc_name!r} by name on the "
            "project network; point them at the host and its published ports"
        )
    podman_v = podman.version if podman else None
    compose_cmd = (
        "podman compose" if knowledge.podman_has_compose_wrapper(podman_v) else "podman-compose"
    )
    return ComposePlan(
        plan=FilePlan(
            path=path,
            before=text,
            after=after,
            what=what,
            next_steps=(f"{compose_cmd} -f {_sh(path)} up -d --force-recreate {_sh(svc_name)}",),
        ),
        service=svc_name,
        mode=mode,
        advice="; ".join(notes),
        env_plan=env_plan,
    )


def _sh(word: object) -> str:
    """A path or name as one shell word: a next step is shown to copy and split with shlex by
    ``fix --restart`` (a space or quote in a project's path must not split or break it)."""
    return shlex.quote(str(word))


def _splice(lines: list[str], edits: list[tuple[int, int, list[str]]]) -> str:
    """The text with each (first line, lines replaced, new lines) edit made. Bottom-up so earlier
    line numbers stay valid; at the same line the edit planned first ends up first
    (network_mode before the environment block it is followed by)."""
    out = list(lines)
    for _, (first, count, new) in sorted(
        enumerate(edits), key=lambda e: (e[1][0], e[0]), reverse=True
    ):
        out[first : first + count] = new
    return "".join(out)


def _raw_env(node: Any) -> dict[str, str | None]:
    from ..envfile import environment_entries

    return environment_entries(node)


@dataclass(frozen=True, kw_only=True)
class _EnvKeeper:
    path: Path
    text: str


def _env_file_keeper(facts: ComposeService, env: ComposeEnv | None, key: str) -> _EnvKeeper | None:
    """The env file whose ``key`` wins for this service (read by the host), or None."""
    from ..envfile import defines

    written = facts.env_origin.get(key)
    if env is None or written is None or written == "environment":
        return None
    for ref in reversed(facts.env_files):
        got = env.env_files.get(ref.path)
        text = got.text if got is not None else None
        if ref.written == written and text is not None and defines(text, key):
            return _EnvKeeper(path=Path(ref.path), text=text)
    return None


def _env_file_plan(keeper: _EnvKeeper, key: str, iface: str, svc_name: str, mode: str) -> FilePlan:
    from ..envfile import parse_env_text, set_value

    after = set_value(keeper.text, key, iface)
    if parse_env_text(after).get(key) != iface:  # pragma: no cover - an edit bug never lands
        raise DoctorError(f"{keeper.path}: could not set {key} safely; set {key}={iface} by hand")
    return FilePlan(
        path=keeper.path.absolute(),
        before=keeper.text,
        after=after,
        what=f"service {svc_name}: {key}={iface} in the env file that sets it (the interface "
        f"{mode.split(':')[0]} gives it)",
    )


def _q(value: str) -> str:
    return f'"{value}"' if ":" in value else value


def _indent_step(services: Any, svc_name: str) -> int:
    svc = services[svc_name]
    if len(svc):
        return int(svc.lc.key(next(iter(svc)))[1] - services.lc.key(svc_name)[1])
    return 2


def _after_image(svc: Any, lines: list[str]) -> int:
    """Line index to insert at: right after a one-line ``image:``, else before the first key."""
    keys = list(svc)
    if "image" in keys:
        ln, _ = svc.lc.key("image")
        idx = keys.index("image")
        nxt = svc.lc.key(keys[idx + 1])[0] if idx + 1 < len(keys) else None
        rest = lines[ln].split(":", 1)[1].strip() if ":" in lines[ln] else ""
        if rest and rest[0] not in "|>" and (nxt is None or nxt > ln):
            return int(ln) + 1
    return int(svc.lc.key(keys[0])[0])


def _replace_scalar_line(line: str, key: str, value: str, name: str, ln: int) -> str:
    m = re.match(
        rf"""^(?P<head>\s*{re.escape(key)}\s*:\s*)"""
        r"""(?P<val>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^#\s](?:[^#]*[^#\s])?)"""
        r"""(?P<tail>\s+#.*)?(?P<nl>\r?\n)?$""",
        line,
    )
    if not m:
        raise DoctorError(
            f"{name}:{ln + 1}: cannot edit `{key}:` here (not a one-line value); "
            f"set it to {value!r} by hand"
        )
    old = m["val"]
    quote = old[0] if old[0] in "\"'" else ('"' if ":" in value else "")
    return f"{m['head']}{quote}{value}{quote}{m['tail'] or ''}{m['nl'] or ''}"


def _env_value(env: Any, key: str) -> str | None:
    return parse.compose_environment(env).get(key)


def _env_edits(
    svc: Any,
    env: Any,
    iface: str,
    lines: list[str],
    col: int,
    step: int,
    nl: str,
    name: str,
    mode_inserted: bool,
) -> list[tuple[int, int, list[str]]]:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    key = "NETWORK_INTERFACE"
    if "environment" not in svc or env is None:
        block = [
            " " * col + "environment:" + nl,
            " " * (col + step) + f"{key}: {iface}{nl}",
        ]
        if "environment" in svc:  # `environment:` with no value: give it one
            ln = svc.lc.key("environment")[0]
            return [(ln, 1, block)]
        if "network_mode" in svc:
            at = svc.lc.key("network_mode")[0] + 1
        else:
            at = _after_image(svc, lines)
        return [(at, 0, block)]
    if isinstance(env, CommentedMap) and not env.fa.flow_style() and len(env):
        if key in env:
            ln = env.lc.key(key)[0]
            return [(ln, 1, [_replace_scalar_line(lines[ln], key, iface, name, ln)])]
        first = next(iter(env))
        ln, c = env.lc.key(first)
        return [(ln, 0, [" " * c + f"{key}: {iface}{nl}"])]
    if isinstance(env, CommentedSeq) and not env.fa.flow_style() and len(env):
        for i, item in enumerate(env):
            if str(item).partition("=")[0] == key:
                ln = env.lc.item(i)[0]
                m = re.match(r"^(\s*-\s*)([\"']?)([^\"'#]*?)([\"']?)(\s+#.*)?(\r?\n)?$", lines[ln])
                if not m:
                    break
                return [(ln, 1, [f"{m[1]}{m[2]}{key}={iface}{m[4]}{m[5] or ''}{m[6] or ''}"])]
        else:
            ln = env.lc.item(0)[0]
            m = re.match(r"^(\s*-\s*)", lines[ln])
            if m:
                return [(ln, 0, [f"{m[1]}{key}={iface}{nl}"])]
    raise DoctorError(
        f"{name}: cannot edit this service's `environment:` (flow style or empty); "
        f"add {key}={iface} by hand"
    )


def _verify(after: str, name: str, svc_name: str, mode: str, iface: str | None) -> None:
    svc = _services(_load(after, name), name)[svc_name]
    ok = str(svc.get("network_mode")) == mode
    if iface is not None:
        ok = ok and _env_value(svc.get("environment"), "NETWORK_INTERFACE") == iface
    if not ok:  # pragma: no cover - a splice bug must never reach the disk
        raise DoctorError(f"{name}: could not edit service {svc_name!r} safely; edit it by hand")


# --------------------------------------------------------------------------------------------
# --mtu with Docker: the MTU of the service's compose networks

# The bridge driver's MTU option (Docker: `docker network create` "Bridge driver options";
# Podman's bridge takes the same name besides its own ``mtu``, podman-network-create(1) --opt).
# daemon.json "mtu" sets docker0's only: a compose project network is a user-defined bridge and
# keeps 1500 without it (moby#34981). docs/facts.md "Compose network MTU".
MTU_OPT = "com.docker.network.driver.mtu"


def _network_mtu_plan(path: Path, text: str, data: Any, svc_name: str, advice: str) -> ComposePlan:
    """``driver_opts: {com.docker.network.driver.mtu: "65520"}`` on each bridge network the
    service joins (``default`` when it names none), spliced as the other edits are. External
    and non-bridge networks are named in the advice, not edited (they are not this file's to
    create). Next: ``down`` + ``up``: compose does not recreate an existing network whose options
    changed."""
    from ruamel.yaml.comments import CommentedMap

    name = str(path)
    svc = data["services"][svc_name]
    if not isinstance(svc, CommentedMap):
        raise DoctorError(f"{name}: service {svc_name!r} is not a mapping; fix it first")
    want = str(throughput.TUNED_MTU)
    if svc.get("network_mode") is not None:
        return ComposePlan(
            plan=None,
            service=svc_name,
            advice=f"--mtu: nothing to set in {path.name}: service {svc_name!r} has network_mode "
            f"{svc['network_mode']} (no compose network). {advice}",
        )
    nets = svc.get("networks")
    names = [str(n) for n in nets] if isinstance(nets, (Mapping, list)) and nets else ["default"]
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    services = data["services"]
    step = _indent_step(services, svc_name)
    top = data.get("networks")
    edits: list[tuple[int, int, list[str]]] = []
    skipped: list[str] = []
    done: list[str] = []

    def block(col: int, head: str | None = None) -> list[str]:
        """``driver_opts:`` at ``col`` with the MTU under it; under ``head`` when given."""
        opts = [" " * col + "driver_opts:" + nl, " " * (col + step) + f'{MTU_OPT}: "{want}"' + nl]
        return [" " * (col - step) + head + nl, *opts] if head else opts

    if "networks" not in data:
        if names != ["default"]:
            raise DoctorError(
                f"{name}: service {svc_name!r} joins networks the file does not "
                f"define ({', '.join(names)}); fix it first"
            )
        tail = [] if not lines or lines[-1].endswith("\n") else [nl]
        edits.append((len(lines), 0, [*tail, "networks:" + nl, *block(2 * step, "default:")]))
        done.append("default")
    elif not isinstance(top, CommentedMap) or top.fa.flow_style() or not len(top):
        raise DoctorError(
            f"{name}: cannot edit the top-level `networks:` (empty or flow style); add "
            f'driver_opts: {{{MTU_OPT}: "{want}"}} to {", ".join(names)} by hand'
        )
    else:
        col = top.lc.key(next(iter(top)))[1]
        for net in names:
            if net not in top:
                if net != "default":
                    raise DoctorError(
                        f"{name}: network {net!r} of service {svc_name!r} is not "
                        "defined under `networks:`; fix it first"
                    )
                edits.append((top.lc.key(next(iter(top)))[0], 0, block(col + step, "default:")))
                done.append(net)
                continue
            entry = top[net]
            ln = top.lc.key(net)[0]
            if entry is None:
                rest = (
                    lines[ln].split(":", 1)[1].split("#", 1)[0].strip() if ":" in lines[ln] else "?"
                )
                if rest:
                    raise DoctorError(
                        f"{name}:{ln + 1}: cannot edit network {net!r} here; add "
                        f'driver_opts: {{{MTU_OPT}: "{want}"}} by hand'
                    )
                edits.append((ln + 1, 0, block(col + step)))
                done.append(net)
                continue
            if not isinstance(entry, CommentedMap) or entry.fa.flow_style():
                raise DoctorError(
                    f"{name}:{ln + 1}: network {net!r} is not a block mapping; add "
                    f'driver_opts: {{{MTU_OPT}: "{want}"}} by hand'
                )
            driver = str(entry.get("driver") or "bridge")
            if entry.get("external") or driver != "bridge":
                why = "external" if entry.get("external") else f"driver {driver}"
                skipped.append(f"{net} ({why})")
                continue
            done.append(net)
            opts = entry.get("driver_opts")
            ecol = entry.lc.key(next(iter(entry)))[1]
            if opts is None:
                if "driver_opts" in entry:
                    raise DoctorError(
                        f"{name}: network {net!r} has an empty `driver_opts:`; "
                        f'give it {MTU_OPT}: "{want}" by hand'
                    )
                edits.append((entry.lc.key(next(iter(entry)))[0], 0, block(ecol)))
                continue
            if not isinstance(opts, CommentedMap) or opts.fa.flow_style() or not len(opts):
                raise DoctorError(
                    f"{name}: cannot edit `driver_opts:` of network {net!r} (flow "
                    f'style or empty); add {MTU_OPT}: "{want}" by hand'
                )
            if MTU_OPT in opts:
                if str(opts[MTU_OPT]) == want:
                    continue
                oln = opts.lc.key(MTU_OPT)[0]
                edits.append((oln, 1, [_replace_scalar_line(lines[oln], MTU_OPT, want, name, oln)]))
            else:
                oln, ocol = opts.lc.key(next(iter(opts)))
                edits.append((oln, 0, [" " * ocol + f'{MTU_OPT}: "{want}"' + nl]))
    notes = [advice]
    if skipped:
        notes.append(
            f"not edited: {', '.join(skipped)}: set the MTU where that network is created "
            f"(`docker network create -o {MTU_OPT}={want} ...`)"
        )
    if not done:
        return ComposePlan(plan=None, service=svc_name, advice="; ".join(notes))
    what = f"networks {', '.join(done)}: {MTU_OPT} {want} (Docker's bridge at RootlessKit's MTU)"
    after = _splice(lines, edits) if edits else text
    got = _load(after, name).get("networks") or {}
    if any(str(((got.get(n) or {}).get("driver_opts") or {}).get(MTU_OPT)) != want for n in done):
        # a splice bug must never reach the disk
        raise DoctorError(f"{name}: could not set the network MTU safely; edit it by hand")
    steps = (f"docker compose -f {_sh(path)} down", f"docker compose -f {_sh(path)} up -d")
    fp = FilePlan(path=path, before=text, after=after, what=what, next_steps=steps)
    return ComposePlan(plan=fp, service=svc_name, advice="; ".join(notes))
