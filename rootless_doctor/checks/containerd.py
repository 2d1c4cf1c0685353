"""Rootless containerd (nerdctl) checks: the source-IP verdict, drivers configured but not running,
and unit settings its launcher never sees.

IDs: CONTAINERD-SOURCE-IP, CONTAINERD-DRIVER-DRIFT, CONTAINERD-UNIT-IGNORED, and
CONTAINER-SOURCE-IP per nerdctl container. The decisions are knowledge.py's
(``containerd_verdict``, ``containerd_container_verdict``, ``containerd_drivers``,
``containerd_configured``).
"""

from __future__ import annotations

from dataclasses import replace

from .. import knowledge as kb
from ..model import CheckResult, ContainerdFacts, HostFacts, Status
from .engine import ports_text, status_of

ENGINE = "containerd"


def label(c: ContainerdFacts) -> str:
    how = "rootless" if c.rootless else "rootful" if c.rootless is False else "rootless?"
    return f"containerd {c.version or ''}".rstrip() + f" ({how}, nerdctl)"


def _notes(c: ContainerdFacts) -> str:
    return f" [{'; '.join(c.notes)}]" if c.notes else ""


def source_ip(facts: HostFacts, c: ContainerdFacts) -> CheckResult:
    v = kb.containerd_verdict(c, facts.tools)
    ports = f"; published: {ports_text(c.published)}" if c.published else ""
    return CheckResult(
        id="CONTAINERD-SOURCE-IP",
        title="containerd (nerdctl): published ports keep client source IPs",
        status=status_of(v),
        detail=v.reason + ports + _notes(c),
        remedy=v.fix,
        engine=ENGINE,
    )


def driver_drift(facts: HostFacts, c: ContainerdFacts) -> CheckResult:
    def res(status: Status, detail: str, remedy: str = "") -> CheckResult:
        return CheckResult(
            id="CONTAINERD-DRIVER-DRIFT",
            title="containerd (nerdctl): running drivers match the configured ones",
            status=status,
            detail=detail,
            remedy=remedy,
            engine=ENGINE,
        )

    if c.rootless is False:
        return res("skip", "rootful containerd: no RootlessKit drivers")
    rk = c.running
    if rk is None or not (rk.network_driver or rk.port_driver):
        return res("skip", "the running RootlessKit's drivers were not read: nothing to compare")
    cfg_net, cfg_port = kb.containerd_configured(c)
    run = kb.containerd_drivers(c, facts.tools)
    running = f"running net={run.network_driver or '?'} port-driver={run.port_driver or '?'}"
    if cfg_net is None and cfg_port is None:
        return res("ok", f"nothing configured; {running} (launcher defaults)")
    where = c.unit_files[-1] if c.unit_files else "the containerd user unit"
    diffs = kb.driver_drift((cfg_net, cfg_port), (run.network_driver, run.port_driver))
    if not diffs:
        return res("ok", f"{running}, as configured in {where}")
    after = kb.containerd_verdict(replace(c, running=None), facts.tools)
    return res(
        "warn",
        f"{'; '.join(diffs)} ({where}): written but containerd not restarted. After a restart: "
        f"{after.reason}",
        f"`{kb.RESTART_CONTAINERD}`",
    )


def unit_ignored(c: ContainerdFacts) -> CheckResult:
    """Settings systemd ignores (outside a section) and variables the launcher never reads."""
    title = "containerd (nerdctl): its unit and drop-ins are read as written"
    if not c.unit_files:
        return CheckResult(
            id="CONTAINERD-UNIT-IGNORED", title=title, status="skip",
            detail="no containerd.service user unit or drop-in found", engine=ENGINE,
        )  # fmt: skip
    problems = []
    if c.ignored_unit_lines:
        problems.append(
            "systemd ignores settings outside a section: " + "; ".join(c.ignored_unit_lines)
        )
    if c.ignored_vars:
        problems.append(
            "ignored: containerd-rootless.sh never reads "
            + "; ".join(c.ignored_vars)
            + f" (it reads {kb.CONTAINERD_VAR}NET, ..._PORT_DRIVER, ..._FLAGS, ...)"
        )
    if not problems:
        return CheckResult(
            id="CONTAINERD-UNIT-IGNORED", title=title, status="ok",
            detail=f"read: {', '.join(c.unit_files)}", engine=ENGINE,
        )  # fmt: skip
    return CheckResult(
        id="CONTAINERD-UNIT-IGNORED",
        title=title,
        status="fail",
        detail="; ".join(problems),
        remedy=f"put `[Service]` above the settings and name the variables "
        f"{kb.CONTAINERD_VAR}* (or run `{kb.FIX_CONTAINERD}`), then `{kb.RESTART_CONTAINERD}`",
        engine=ENGINE,
    )


def container_source_ip(facts: HostFacts, c: ContainerdFacts) -> list[CheckResult]:
    """CONTAINER-SOURCE-IP for each nerdctl container that publishes ports (or, without
    nerdctl, each port its RootlessKit forwards): the engine's decision on its ports."""
    out = []
    for ct in c.containers:
        if not ct.ports:
            continue
        v = kb.containerd_container_verdict(c, ct, facts.tools)
        none = kb.split_network_mode(ct.network_mode)[0] == "none"
        out.append(
            CheckResult(
                id="CONTAINER-SOURCE-IP",
                title=f"Container {ct.name} (containerd): client source IPs",
                status="skip" if none else status_of(v),
                detail=f"ports {ports_text(ct.ports)}; network {ct.network_mode or '?'}: "
                f"{v.reason}",
                remedy=v.fix,
                engine=ENGINE,
                container=ct.name,
            )
        )
    return out


def checks(facts: HostFacts) -> list[CheckResult]:
    c = facts.containerd
    if c is None:
        return []
    return [
        source_ip(facts, c),
        driver_drift(facts, c),
        unit_ignored(c),
        *container_source_ip(facts, c),
    ]
