"""Planner for `rootless-doctor fix docker`: the systemd user drop-in or daemon.json.

Which file and which drivers come from ``knowledge.docker_fix_options`` (the decision table in
docs/facts.md "Decision table"):

- RootlessKit < 3: ``~/.config/systemd/user/docker.service.d/override.conf`` with
  ``DOCKERD_ROOTLESS_ROOTLESSKIT_NET`` / ``..._PORT_DRIVER`` (pasta + implicit where RootlessKit
  ≥ 2 and pasta ≥ 2023_12_04, else slirp4netns + slirp4netns), as moby's rootless docs show;
- RootlessKit ≥ 3: ``~/.config/docker/daemon.json`` ``"userland-proxy": false`` (builtin keeps
  TCP source IPs with --source-ip-transparent; docker-proxy would re-dial from the gateway).
- ``--mtu`` (an explicit option, not the default): also ``DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520``
  in the drop-in and ``"mtu": 65520`` in daemon.json. A non-loopback client's connection is
  DNATed end to end to the container, so Docker's bridge MTU (1500) bounds its segments and the
  user-mode stacks (pasta, slirp4netns) run at ~0.5 Gbit/s; with both MTUs raised, 3-10
  (bench/dataplane.py, rootless_doctor/dataplane.json). The tap MTU alone changes nothing. The
  daemon.json key covers the default bridge only (compose networks take the network option
  ``com.docker.network.driver.mtu``, which ``fix compose --mtu`` writes).

Pure: facts and the current texts in, :class:`FilePlan` out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .. import knowledge, throughput
from ..knowledge import FixOption
from ..model import DockerFacts, DoctorError, FilePlan, HostFacts
from . import unitfile
from .choice import FixChoice, pick

NET = "DOCKERD_ROOTLESS_ROOTLESSKIT_NET"
PORT = "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"
MTU = "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU"
RESTART = ("systemctl --user daemon-reload", "systemctl --user restart docker")

# --driver accepts the option keys and these short names.
ALIASES = {
    "pasta": "pasta-implicit",
    "implicit": "pasta-implicit",
    "builtin": "builtin-transparent",
    "userland-proxy": "builtin-transparent",
}


def dropin_path(config_dir: Path) -> Path:
    return config_dir / "systemd/user/docker.service.d/override.conf"


def daemon_json_path(config_dir: Path) -> Path:
    return config_dir / "docker/daemon.json"


def choose(facts: HostFacts, driver: str | None) -> FixChoice:
    """The option to write: ``driver`` when given (must be available), else the fastest one;
    refused where dockerd would not start with it."""
    if facts.docker is None:
        raise DoctorError("no rootless Docker found here (no docker CLI, unit or daemon)")
    if facts.docker.rootless is False:
        raise DoctorError(
            "this Docker daemon is rootful: its iptables DNAT already keeps source IPs; "
            "nothing for `fix docker` to do"
        )
    options = tuple(knowledge.docker_fix_options(facts.docker, facts.tools))
    choice = pick(options, driver, ALIASES)
    _check_daemon_starts(facts.docker, choice.option, options)
    return choice


def _check_daemon_starts(d: DockerFacts, opt: FixOption, options: tuple[FixOption, ...]) -> None:
    """A fix must never leave dockerd unable to start: with ``"userland-proxy": false`` (planned,
    or already in daemon.json) it needs br_netfilter on the host. Refuse, write nothing, and say
    the commands that load it (and the drop-in drivers that do without it)."""
    proxy_off = opt.userland_proxy is False or d.userland_proxy is False
    problem = knowledge.br_netfilter_problem(d) if proxy_off else None
    if problem is None:
        return
    if opt.userland_proxy is not False and d.br_netfilter is None:
        return  # already in daemon.json and possibly running: the drop-in changes nothing there
    load = "".join(f"\n    {cmd}" for cmd in knowledge.BR_NETFILTER_LOAD)
    lines = [
        f"nothing written: {problem}.",
        f"  load it now and at every boot (as root):{load}"
        if d.br_netfilter is False
        else "  see whether it is there: `ls /proc/sys/net/bridge/bridge-nf-call-iptables`; "
        f"if not, load it now and at every boot (as root):{load}",
        f"  then run `{knowledge.FIX_DOCKER}` again",
    ]
    if opt.userland_proxy is False:
        others = [o for o in options if o.available and o.userland_proxy is not False]
        lines += [
            f"  or keep client IPs without it: `{knowledge.FIX_DOCKER} --driver {o.key}` "
            f"({o.network_driver} + {o.port_driver}, {o.throughput}; {o.cost})"
            for o in others
        ]
    else:
        lines.append(
            f'  or set "userland-proxy": true in {d.daemon_json or "daemon.json"} (it is false '
            "there now, which keeps dockerd from starting whatever the driver)"
        )
    raise DoctorError("\n".join(lines), exit_code=1)


def plan(
    option: FixOption,
    *,
    config_dir: Path,
    dropin_text: str | None,
    daemon_json_text: str | None,
    flags: str | None = None,
    mtu: bool = False,
) -> list[FilePlan]:
    """The file(s) ``option`` needs; unchanged plans mean it is already in place. ``flags``: the
    DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS the unit and drop-ins set (DockerFacts.configured_env):
    its ``--net``/``--port-driver`` (and ``--source-ip-transparent=false``) come after the
    drivers written here and would win, so the drop-in sets FLAGS without them. ``mtu``: also
    raise RootlessKit's and Docker's bridge MTU (both files, see the module docstring)."""
    dpath = dropin_path(config_dir)
    want_flags = _flags_without_drivers(flags)
    if mtu:
        want_flags[MTU] = str(throughput.TUNED_MTU)
    jpath = daemon_json_path(config_dir)
    if option.key == "builtin-transparent":
        plans = [plan_daemon_json(jpath, daemon_json_text, mtu=mtu)]
        # A drop-in that selects another port driver would keep builtin from running.
        want = {PORT: "builtin"} if dropin_text is not None and PORT in dropin_text else {}
        want.update(want_flags)
        if want:
            dp = plan_dropin(dpath, dropin_text, want, option)
            if dp.changed:
                plans.append(dp)
        return plans
    want = {NET: option.network_driver, PORT: option.port_driver, **want_flags}
    plans = [plan_dropin(dpath, dropin_text, want, option)]
    if mtu:
        plans.append(plan_bridge_mtu(jpath, daemon_json_text))
    return plans


def mtu_advice(option: FixOption) -> str | None:
    """The default fix's pointer to ``--mtu``, with what was measured where and when; None for
    the builtin port driver (no user-mode stack carries its connections)."""
    if option.port_driver == "builtin":
        return None
    measured = throughput.quote_docker(option.network_driver, option.port_driver)
    return (
        f"faster with `{knowledge.FIX_DOCKER} --mtu`: it also writes {MTU}="
        f'{throughput.TUNED_MTU} in the drop-in and "mtu": {throughput.TUNED_MTU} in '
        "~/.config/docker/daemon.json (Docker's bridge; compose networks need the network "
        "option com.docker.network.driver.mtu: `rootless-doctor fix compose --mtu`)"
        + (f"; {measured}" if measured else "")
    )


def _flags_without_drivers(flags: str | None) -> dict[str, str]:
    """{FLAGS: the value without the driver overrides} when FLAGS has any, else {}."""
    if not flags:
        return {}
    kept = knowledge.launcher_flags_without(
        flags, ("net", "port-driver"), false_bools=("source-ip-transparent",)
    )
    if kept == " ".join(flags.split()):
        return {}
    if any(c in kept for c in '"\\%$'):
        raise DoctorError(
            f"{knowledge.FLAGS_ENV}={flags!r} overrides the drivers (--net/--port-driver come "
            "last and win) and holds characters this fix will not rewrite: remove those flags "
            "from it by hand, then run `rootless-doctor fix docker` again"
        )
    return {knowledge.FLAGS_ENV: kept}


# --------------------------------------------------------------------------------------------
# the drop-in


# Why each choice, in the file itself (facts from rootlesskit docs/port.md).
_DROPIN_NOTE = {
    "slirp4netns": (
        "# slirp4netns forwards ports itself: about 4x slower than builtin; ports < 1024\n"
        "# need net.ipv4.ip_unprivileged_port_start (rootless-doctor fix privileged-ports).\n"
    ),
    "implicit": "# pasta forwards ports itself (implicit port driver, RootlessKit >= 2).\n",
    "pesto": "# pasta's pesto forwards ports (RootlessKit >= 3.1, passt >= 2026_05_07; IPv4).\n",
}


_MTU_NOTE = (
    "# MTU 65520 on RootlessKit's tap, with \"mtu\": 65520 in daemon.json for Docker's bridge:\n"
    "# at MTU 1500 the user-mode network stack runs ~10x slower (fix docker --mtu).\n"
)


def fresh_dropin(option: FixOption, *, mtu: bool = False) -> str:
    """The whole drop-in for a host without one (== systemd/override-<driver>[-mtu].conf)."""
    return (
        "# rootless-doctor: keep client source IPs of published ports.\n"
        + _DROPIN_NOTE.get(option.port_driver, "")
        + (_MTU_NOTE if mtu else "")
        + "[Service]\n"
        + unitfile.env_line(NET, option.network_driver)
        + unitfile.env_line(PORT, option.port_driver)
    )


def plan_dropin(
    path: Path, before: str | None, want: dict[str, str], option: FixOption
) -> FilePlan:
    what = (
        f"RootlessKit {option.network_driver} network + {option.port_driver} port driver: "
        f"client source IPs reach containers ({option.throughput}; {option.cost})"
    )
    if before is None or not before.strip():
        after = (
            fresh_dropin(option, mtu=MTU in want)
            + "".join(unitfile.env_line(k, want[k]) for k in want if k not in (NET, PORT))
            if {NET, PORT} <= set(want)
            else unitfile.set_environment("", want, str(path))
        )
        return FilePlan(path=path, before=before, after=after, what=what, next_steps=RESTART)
    return FilePlan(
        path=path,
        before=before,
        after=unitfile.set_environment(before, want, str(path)),
        what=what,
        next_steps=RESTART,
    )


# --------------------------------------------------------------------------------------------
# daemon.json

FRESH_DAEMON_JSON = '{\n  "userland-proxy": false\n}\n'
BRIDGE_MTU = "mtu"  # daemon.json: the default bridge's MTU (dockerd --mtu)


def plan_daemon_json(path: Path, before: str | None, *, mtu: bool = False) -> FilePlan:
    what = (
        'daemon.json "userland-proxy": false: RootlessKit ≥ 3 builtin port driver hands TCP '
        "connections over with the client's address (UDP still loses it)"
    )
    after = set_userland_proxy_off(before, str(path))
    if mtu:
        after = set_key(after, str(path), BRIDGE_MTU, throughput.TUNED_MTU)
        what += f'; "mtu": {throughput.TUNED_MTU} for Docker\'s bridge'
    return FilePlan(
        path=path,
        before=before,
        after=after,
        what=what,
        next_steps=("systemctl --user restart docker",),
    )


def plan_bridge_mtu(path: Path, before: str | None) -> FilePlan:
    """daemon.json ``"mtu": 65520``: the default bridge (docker0) and its containers' eth0."""
    what = (
        f"daemon.json \"mtu\": {throughput.TUNED_MTU}: Docker's bridge at RootlessKit's MTU, "
        "so the user-mode network stack carries full-size segments"
    )
    return FilePlan(
        path=path,
        before=before,
        after=set_key(before, str(path), BRIDGE_MTU, throughput.TUNED_MTU),
        what=what,
        next_steps=("systemctl --user restart docker",),
    )


def set_userland_proxy_off(text: str | None, name: str) -> str:
    """Text splice: set ``"userland-proxy": false`` keeping every other byte of the file."""
    return set_key(text, name, "userland-proxy", False)


def set_key(text: str | None, name: str, key: str, value: bool | int) -> str:
    """Text splice: set the top-level ``key`` of a JSON object to ``value`` keeping every other
    byte of the file; a missing or empty file becomes ``{ key: value }``."""
    literal = json.dumps(value)
    if text is None or not text.strip():
        return f'{{\n  "{key}": {literal}\n}}\n'
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DoctorError(f"{name}:{e.lineno}: not valid JSON ({e.msg}); fix it first") from None
    if not isinstance(data, dict):
        raise DoctorError(f"{name}: not a JSON object; fix it first")
    if key in data and data[key] == value and type(data[key]) is type(value):
        return text
    if key in data:
        new, n = re.subn(
            rf'("{re.escape(key)}"\s*:\s*)(true|false|null|"[^"]*"|-?\d+(?:\.\d+)?)',
            lambda m: m.group(1) + literal,
            text,
            count=1,
        )
        if n != 1:
            raise DoctorError(f'{name}: cannot find the "{key}" value to change; edit it by hand')
    else:
        brace = text.index("{")
        m = re.compile(r'\s*"').match(text, brace + 1)
        if data and m:
            indent = text[brace + 1 : m.end() - 1]
            new = text[: brace + 1] + indent + f'"{key}": {literal},' + text[brace + 1 :]
        else:  # {} or { } — write it out in the fresh layout
            end = text.index("}", brace)
            new = text[:brace] + f'{{\n  "{key}": {literal}\n' + text[end:]
    check = json.loads(new)
    others = {k: v for k, v in data.items() if k != key}
    if check.get(key) != value or {k: v for k, v in check.items() if k != key} != others:
        # the first match was not the top-level key (a nested object holds the same name)
        raise DoctorError(f'{name}: could not set "{key}" safely; edit it by hand')
    return new
