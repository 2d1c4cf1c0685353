"""Planner for `rootless-doctor fix podman`: the user's containers.conf.

What to set depends on the installed Podman (docs/facts.md "Podman", containers/common
containers.conf(5)):

- Podman < 4.6: ``[network] default_rootless_network_cmd`` is not read yet (podman#19032 landed in
  4.6), so only ``[engine] network_cmd_options = ["port_handler=slirp4netns"]``.
- 4.6 to 5.x: ``default_rootless_network_cmd = "pasta"`` where pasta is installed, else the
  slirp4netns port handler in ``network_cmd_options``.
- 6.x: slirp4netns is gone (``network_cmd_options`` no longer exists);
  ``default_rootless_network_cmd = "pasta"`` and the experimental
  ``rootless_port_forwarder = "pasta"`` (bridge/compose networks keep IPv4 source IPs; needs
  passt with pesto).

Before any of these: ``[containers] netns`` (a plain ``podman run``'s network) set to a mode
that loses client IPs (bridge, a network name, ...) is set back to ``"private"`` here, or, when
a file Podman reads after this one sets it, the notes say to change it there
(``knowledge.podman_netns_reset``, the decision the check's remedy uses).

Never a key the installed version does not know. Values are read with ``parse.containers_conf``
(the reader ``check`` uses, so both agree on what the file says, case-insensitive tables
included). A key already in the file gets its new value through tomlkit, in place, whatever its
form; a missing key is added as one line right after its commented default (``#key = ...``) in
the shipped file, where a reader looks for it; tomlkit would append it at the end of the table,
below the comment that introduces the next table. Either way the result is parsed again and
every other byte is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import knowledge, parse
from ..model import DoctorError, FilePlan, PodmanFacts

PORT_HANDLER = "port_handler=slirp4netns"
HEADER = "# rootless-doctor: keep client source IPs of published ports.\n"


def conf_path(config_dir: Path) -> Path:
    return config_dir / "containers/containers.conf"


@dataclass(frozen=True, kw_only=True)
class Setting:
    table: str
    key: str
    value: str | None = None  # a string value to set
    list_item: str | None = None  # an item to have in an array (replacing same-prefix items)


@dataclass(frozen=True, kw_only=True)
class PodmanPlan:
    plan: FilePlan
    notes: tuple[str, ...] = ()


def settings_for(podman: PodmanFacts, pasta_installed: bool) -> tuple[list[Setting], list[str]]:
    """(settings to have, notes) for this Podman version."""
    v = podman.version
    m = knowledge.major(v)
    if m is None:
        raise DoctorError(
            "Podman version unknown: run `podman version`; not guessing which keys it knows"
        )
    notes: list[str] = []
    if m >= 6:
        out = [Setting(table="network", key="default_rootless_network_cmd", value="pasta")]
        pasta_v = podman.pasta_version
        if knowledge.version_at_least(pasta_v, knowledge.PASTA_FOR_PESTO) is False:
            notes.append(
                f'not setting rootless_port_forwarder = "pasta": it needs passt with pesto '
                f"(≥ {knowledge.PASTA_FOR_PESTO}), installed is {pasta_v}"
            )
        else:
            out.append(Setting(table="network", key="rootless_port_forwarder", value="pasta"))
            notes.append(
                'rootless_port_forwarder = "pasta" is experimental in Podman 6 (IPv4 only): it '
                "makes bridge/compose networks keep source IPs too"
            )
        return out, notes
    if pasta_installed and knowledge.podman_reads_default_network_cmd(v):
        return [Setting(table="network", key="default_rootless_network_cmd", value="pasta")], notes
    notes.append(
        "slirp4netns port_handler=slirp4netns keeps source IPs for containers on the default "
        "network; compose/bridge networks still lose them (use `rootless-doctor fix compose`)"
    )
    return [Setting(table="engine", key="network_cmd_options", list_item=PORT_HANDLER)], notes


def plan(path: Path, text: str | None, podman: PodmanFacts, pasta_installed: bool) -> PodmanPlan:
    settings, notes = settings_for(podman, pasta_installed)
    reset = knowledge.podman_netns_reset(podman)
    if reset is not None and knowledge.podman_netns_read_after(reset, str(path)):
        # Podman reads that file after this one: a value written here would not win.
        notes.insert(
            0,
            f'{reset.origin} sets [containers] netns = "{reset.value}" and Podman reads it after '
            f'{path}: set it to "{knowledge.NETNS_RESET}" there (or remove it); until then a '
            "plain `podman run -p` does not use the settings written here",
        )
    elif reset is not None:
        # A plain `podman run -p` uses netns before any of the settings below (knowledge.py).
        settings.insert(0, Setting(table="containers", key="netns", value=knowledge.NETNS_RESET))
    before = text
    name = str(path)
    doc = _parse(text or "", name)
    m = knowledge.major(podman.version) or 0
    if m >= 6 and "engine.network_cmd_options" in doc:
        notes.append(
            "[engine] network_cmd_options holds slirp4netns options that Podman 6 no longer "
            "uses; remove them"
        )
    if text is not None and all(_has(doc, s) for s in settings):
        after = text  # already in place: write nothing
    else:
        after = text if text is not None and text.strip() else HEADER
        for s in settings:
            after = _apply(after, s, name)
        _verify(after, settings, name)
    what = "; ".join(_describe(s) for s in settings)
    return PodmanPlan(
        plan=FilePlan(
            path=path,
            before=before,
            after=after,
            what=what,
            next_steps=(),
        ),
        notes=(
            *notes,
            "recreate existing containers for this to apply to them (podman rm, then run / "
            "compose up --force-recreate again)",
        ),
    )


def _describe(s: Setting) -> str:
    if s.list_item:
        return f"[{s.table}] {s.key} includes {s.list_item!r}"
    return f"[{s.table}] {s.key} = {s.value!r}"


def _parse(text: str, name: str) -> dict[str, object]:
    """{"table.key": value} of one containers.conf text."""
    try:
        return parse.containers_conf([(name, text)])
    except parse.ParseError as e:
        line = f":{e.line}" if e.line else ""
        why = re.sub(r"^not TOML \((.*?)(?: \(at line [^)]*\))?\)$", r"\1", str(e))
        raise DoctorError(f"{name}{line}: not valid TOML ({why}); fix it first") from None


def _has(doc: dict[str, object], s: Setting) -> bool:
    value = doc.get(f"{s.table}.{s.key}")
    if s.list_item is not None:
        return isinstance(value, list) and s.list_item in value
    return value is not None and value == s.value


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # TOML basic strings/arrays of them match JSON


def _apply(text: str, s: Setting, name: str) -> str:
    doc = _parse(text, name)
    if _has(doc, s):
        return text
    nl = "\r\n" if "\r\n" in text else "\n"
    key = f"{s.table}.{s.key}"
    lines = text.splitlines(keepends=True)
    # Podman matches table names without case ("[Network]"), and so does parse.containers_conf.
    header = re.compile(rf"^\s*\[\s*{re.escape(s.table)}\s*\]\s*(#.*)?$", re.IGNORECASE)
    any_header = re.compile(r"^\s*\[")
    hdr = next((i for i, ln in enumerate(lines) if header.match(ln.rstrip("\r\n"))), None)
    if key in doc:
        return _replace(text, s, doc[key], name)
    value = _toml([s.list_item] if s.list_item is not None else s.value)
    new_line = f"{s.key} = {value}{nl}"
    if hdr is None:
        out = text
        if out and not out.endswith("\n"):
            out += nl
        if out != HEADER and out.strip():
            out += nl  # a blank line before the new table
        return out + f"[{s.table}]{nl}" + new_line
    # Next to the commented default ("#key = ...") if the file has one, else after the last
    # key line of the table (comments that introduce the next table stay with it).
    end = next((i for i in range(hdr + 1, len(lines)) if any_header.match(lines[i])), len(lines))
    commented = re.compile(rf"^\s*#\s*{re.escape(s.key)}\s*=")
    at = next((i + 1 for i in range(hdr + 1, end) if commented.match(lines[i])), None)
    if at is None:
        at = hdr + 1
        for i in range(hdr + 1, end):
            st = lines[i].strip()
            if st and not st.startswith("#"):
                at = i + 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += nl
    lines.insert(at, new_line)
    return "".join(lines)


def _replace(text: str, s: Setting, old: object, name: str) -> str:
    """The key is there with another value: tomlkit sets the new value in place, whatever form
    the old one had (multi-line array, dotted key, trailing comment), and writes every other
    byte back as it was."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    if s.list_item is not None:
        prefix = s.list_item.split("=", 1)[0] + "="
        items = [str(x) for x in old] if isinstance(old, list) else []
        value: object = [x for x in items if not x.startswith(prefix)] + [s.list_item]
    else:
        value = s.value
    try:
        doc = tomlkit.parse(text)
        # Podman reads table names without case ("[Network]"): edit the table as it is spelled.
        table = next(v for k, v in doc.items() if k.lower() == s.table and isinstance(v, dict))
        key = next(k for k in table if k.lower() == s.key)
        table[key] = value
        return tomlkit.dumps(doc)
    except (TOMLKitError, StopIteration) as e:
        raise DoctorError(
            f"{name}: cannot edit [{s.table}] {s.key} safely ({e or 'not a plain table'}); set "
            f"it to {_describe(s)} by hand"
        ) from None


def _verify(after: str, settings: list[Setting], name: str) -> None:
    doc = _parse(after, name)
    if not all(_has(doc, s) for s in settings):  # pragma: no cover - splice bug guard
        want = "; ".join(_describe(s) for s in settings)
        raise DoctorError(f"{name}: could not edit it safely; set {want} by hand")
