"""Planner for `rootless-doctor fix containerd`: the drop-in of nerdctl's rootless containerd.

``~/.config/systemd/user/containerd.service.d/override.conf`` with
``CONTAINERD_ROOTLESS_ROOTLESSKIT_NET`` / ``..._PORT_DRIVER`` (nerdctl ``docs/rootless.md``
"Configuring RootlessKit"; docs/facts.md "nerdctl / rootless containerd"). Which drivers: the
decision table's (``knowledge.containerd_fix_options``); on RootlessKit ≥ 3 the default builtin
driver already keeps TCP client IPs (no userland proxy in containerd), so there is nothing to
write. ``--net``/``--port-driver`` in ``..._FLAGS`` come last and would win: the drop-in sets
FLAGS without them. Pure: facts and the current text in, :class:`FilePlan` out; apply.py writes.
"""

from __future__ import annotations

from pathlib import Path

from .. import knowledge
from ..knowledge import FixOption
from ..model import DoctorError, FilePlan, HostFacts
from . import unitfile
from .choice import FixChoice, pick

NET = knowledge.CONTAINERD_VAR + "NET"
PORT = knowledge.CONTAINERD_VAR + "PORT_DRIVER"
FLAGS = knowledge.CONTAINERD_VAR + "FLAGS"
RESTART = ("systemctl --user daemon-reload", "systemctl --user restart containerd")
ALIASES = {
    "pasta": "pasta-implicit",
    "implicit": "pasta-implicit",
    "builtin": "builtin-transparent",
}


def dropin_path(config_dir: Path) -> Path:
    return config_dir / "systemd/user/containerd.service.d/override.conf"


def choose(facts: HostFacts, driver: str | None) -> FixChoice:
    """``driver`` when given (must be usable here), else the fastest usable one."""
    c = facts.containerd
    if c is None:
        raise DoctorError(
            "no rootless containerd found here (no rootlesskit running containerd, no "
            "containerd.service user unit): set it up with `containerd-rootless-setuptool.sh "
            "install` (nerdctl)"
        )
    if c.rootless is False:
        raise DoctorError("this containerd is rootful: CNI portmap DNAT already keeps source IPs")
    return pick(knowledge.containerd_fix_options(c, facts.tools), driver, ALIASES)


def fresh_dropin(option: FixOption) -> str:
    """The whole drop-in for a host without one (== systemd/containerd-override-<driver>.conf)."""
    return (
        "# rootless-doctor: keep client source IPs of published ports (nerdctl run -p).\n"
        f"# RootlessKit's {option.port_driver} port driver hands connections over with the "
        "client's address.\n"
        "[Service]\n"
        + unitfile.env_line(NET, option.network_driver)
        + unitfile.env_line(PORT, option.port_driver)
    )


def plan(option: FixOption, *, config_dir: Path, dropin_text: str | None,
         flags: str | None = None) -> FilePlan | None:  # fmt: skip
    """The drop-in ``option`` needs (``before == after`` when it is in place already), or None
    when there is nothing to write (RootlessKit ≥ 3 builtin with no drop-in in its way)."""
    path = dropin_path(config_dir)
    what = (
        f"RootlessKit {option.network_driver} network + {option.port_driver} port driver: client "
        f"source IPs reach containers ({option.throughput}; {option.cost})"
    )
    want: dict[str, str] = {}
    if option.key == "builtin-transparent":
        # RootlessKit ≥ 3 builtin: nothing to set, unless a drop-in selects another driver
        if dropin_text is not None and PORT in dropin_text:
            want[PORT] = "builtin"
    else:
        want = {NET: option.network_driver, PORT: option.port_driver}
    kept = knowledge.launcher_flags_without(flags, ("net", "port-driver")) if flags else None
    if kept is not None and kept != " ".join(flags.split() if flags else ()):
        want[FLAGS] = kept
    if not want:
        return None
    if (dropin_text is None or not dropin_text.strip()) and set(want) == {NET, PORT}:
        after = fresh_dropin(option)
    else:
        after = unitfile.set_environment(dropin_text or "", want, str(path))
    return FilePlan(path=path, before=dropin_text, after=after, what=what, next_steps=RESTART)
