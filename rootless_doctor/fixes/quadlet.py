"""Planner for `rootless-doctor fix quadlet FILE.container`: ``Network=`` in ``[Container]``.

Quadlet's ``Network=`` takes what ``podman run --network`` takes (podman-systemd.unit(5)), so the
choice is the compose one: ``pasta`` where Podman has it, else
``slirp4netns:port_handler=slirp4netns``. A unit on a ``.network`` unit or a named network is
refused (a network mode cannot be combined with networks). docker-mailserver units also get
``Environment=NETWORK_INTERFACE=...``. Lines are spliced; the rest of the unit stays byte-for-byte.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from .. import knowledge
from ..model import DoctorError, FilePlan, PodmanFacts
from . import unitfile
from .compose import ComposePlan, podman_mode

_ENV_KEY = re.compile(r"""(?:^|\s)["']?([A-Za-z_][A-Za-z0-9_]*)=""")
BUILTIN_MODES = ("pasta", "slirp4netns", "host", "none", "private", "bridge", "ns", "container")


def plan(
    path: Path,
    text: str,
    *,
    podman: PodmanFacts | None,
    pasta_installed: bool,
    host_interface: str | None = None,
    search_dirs: tuple[Path, ...] = (),
) -> ComposePlan:
    """``search_dirs``: Quadlet's search path for this user (knowledge.quadlet_user_dirs); a
    unit outside it is still fixed, with a note that Quadlet will not read it there."""
    name = str(path)
    if path.suffix != ".container":
        raise DoctorError(f"{name}: not a Quadlet .container unit (Network= lives there)")
    version = podman.version if podman else None
    if knowledge.quadlet_available(version) is False:
        raise DoctorError(
            f"{name}: Podman {version} has no Quadlet (it came with Podman "
            f"{knowledge.QUADLET_SINCE}): this unit is never run here; use `podman run "
            "--network ...` or a compose file (`rootless-doctor fix compose`), or upgrade Podman"
        )
    unit = unitfile.parse(text, name)
    if not any(s == "Container" for s, _ in unit.headers):
        raise DoctorError(f"{name}: no [Container] section; not a Quadlet container unit")
    m = knowledge.major(podman.version if podman else None)
    nets = [e for e in unit.entries if e.section == "Container" and e.key == "Network"]
    named = [e.value for e in nets if e.value.partition(":")[0] not in BUILTIN_MODES]
    if named:
        extra = (
            "; or keep it and run `rootless-doctor fix podman` (Podman 6: rootless_port_forwarder "
            '= "pasta", experimental, IPv4 only)'
            if m is not None and m >= 6
            else ""
        )
        raise DoctorError(
            f"{name}: Network={', '.join(named)} is a user-defined network, which loses source "
            f"IPs (rootlessport) and cannot be combined with a network mode: remove that "
            f"Network= line and run again{extra}"
        )
    want = podman_mode(podman, pasta_installed)
    current = nets[-1].value if nets else None
    keeps = knowledge.podman_mode_keeps_ip(current, podman.version if podman else None)
    mode = current if keeps and current else want
    nl = unitfile.newline_of(text)
    lines = list(unit.lines)
    if current != mode:
        if nets:
            last = nets[-1]
            for e in reversed(nets[:-1]):  # several Network= lines: only the mode stays
                del lines[e.first : e.last + 1]
            shift = sum(e.last - e.first + 1 for e in nets[:-1])
            lines[last.first - shift : last.last - shift + 1] = [f"Network={mode}{nl}"]
        else:
            hdr = next(h for s, h in unit.headers if s == "Container")
            at = unitfile.section_end(unit, hdr)
            if not lines[at].endswith("\n"):
                lines[at] += nl
            lines.insert(at + 1, f"Network={mode}{nl}")
    after = "".join(lines)
    image = next((e.value for e in unit.entries if e.key == "Image"), "")
    env_keys = {
        k for e in unit.entries if e.key == "Environment" for k in _ENV_KEY.findall(e.value)
    }
    wants_iface = knowledge.is_mailserver(image, env_keys) or "NETWORK_INTERFACE" in env_keys
    iface = knowledge.mode_interface(mode) or host_interface
    notes: list[str] = []
    if podman is None or version is None:
        notes.append(
            f"Podman's version is unknown here: Quadlet needs Podman {knowledge.QUADLET_SINCE} "
            "or later"
        )
    if search_dirs and not _on_search_path(path, search_dirs):
        notes.append(
            f"Quadlet does not read {name} there: it reads "
            + ", ".join(f"{d}/" for d in search_dirs)
            + " (and their subdirectories); move the file into one of them, then "
            "`systemctl --user daemon-reload`"
        )
    if wants_iface and iface:
        after = unitfile.set_environment(after, {"NETWORK_INTERFACE": iface}, name, "Container")
    elif wants_iface:
        notes.append(
            "set Environment=NETWORK_INTERFACE= to the host's main interface name (pasta copies "
            "it; see `ip route show default`), or pass --interface"
        )
    service = path.stem + ".service"
    what = f"Network={mode} keeps client source IPs"
    if wants_iface and iface:
        what += f"; NETWORK_INTERFACE={iface}"
    return ComposePlan(
        plan=FilePlan(
            path=path,
            before=text,
            after=after,
            what=what,
            next_steps=(
                "systemctl --user daemon-reload",
                f"systemctl --user restart {shlex.quote(service)}",
            ),
        ),
        service=service,
        mode=mode,
        advice="; ".join(notes),
    )


def _on_search_path(path: Path, dirs: tuple[Path, ...]) -> bool:
    """Is ``path`` in one of Quadlet's directories or below (symlinks resolved, as Quadlet
    follows them)?"""
    real = path.resolve(strict=False)
    for d in dirs:
        base = d.resolve(strict=False)
        if real.parent == base or base in real.parents:
            return True
    return False
