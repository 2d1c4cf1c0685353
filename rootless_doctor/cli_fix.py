"""`rootless-doctor fix ...`: options → plan (fixes/) → carry out (apply.py) → render.

Mounted by cli.py as ``app.add_typer(fix_app, name="fix")``. Importing this module does nothing
but define the Typer app; the planners, host access and writes are imported when a command runs.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from .model import ComposeFacts, DoctorError, FilePlan

if TYPE_CHECKING:
    from .envfile import ComposeEnv
    from .model import HostFacts, HostPaths, Owner

fix_app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Write the fix that keeps client source IPs, for the versions found here. "
    "Every fix shows a diff with --dry-run, writes atomically, keeps the original in "
    "~/.local/state/rootless-doctor/backups/, and `fix --undo` restores it byte for byte. "
    "A second run with nothing to do says so and writes nothing. Exit codes: 0 written or "
    "nothing to do, 1 --restart's re-check still fails, 2 bad input or a refused write.",
)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the diff; write nothing.")]
Restart = Annotated[
    bool,
    typer.Option(
        "--restart",
        help="Run the next steps (systemctl --user; recreate the compose service; without a "
        "systemd user manager: restart dockerd-rootless.sh by hand), then check and probe again.",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print what was planned/done as JSON.")]
Interface = Annotated[
    str | None,
    typer.Option(
        "--interface", help="Host interface name for NETWORK_INTERFACE with pasta (e.g. eth0)."
    ),
]


# --------------------------------------------------------------------------------------------
# seams (tests replace these)


def owner() -> Owner:
    from . import host

    return host.target_owner()


def host_paths(o: Owner) -> HostPaths:
    """The owner's paths (under sudo: SUDO_USER's home, uid and runtime dir)."""
    from . import host

    return host.owner_paths(o)


def gather_facts(paths: HostPaths) -> HostFacts:
    from . import host

    return host.gather(paths, interfaces=False)


def _host() -> tuple[Owner, HostPaths, HostFacts]:
    """Who the fix is for, their paths, and the facts read from this host (through the seams)."""
    o = owner()
    paths = host_paths(o)
    return o, paths, gather_facts(paths)


def _pasta(facts: HostFacts) -> bool:
    from .knowledge import pasta_available

    return pasta_available(facts.podman, facts.tools)


# --------------------------------------------------------------------------------------------
# the common tail: show / write / restart


def _emit(
    plans: list[FilePlan],
    o: Owner,
    *,
    dry_run: bool,
    restart: bool,
    json_out: bool,
    notes: list[str],
    header: str = "",
    write: bool = True,
    force_steps: bool = False,
) -> None:
    """Carry the plans out (apply.py), say what was done, then run the next steps if asked.
    ``force_steps``: the caller runs the steps itself (they are not hidden from the text)."""
    from . import apply, render

    result = apply.carry_out(plans, o, preview=dry_run or not write, notes=notes)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(render.fix_text(result, header=header, restart=restart or force_steps))
    if restart and result["changed"] and not result["dry_run"]:

        def say(argv: list[str]) -> None:
            if not json_out:
                typer.echo(f"running: {shlex.join(argv)}")

        apply.restart(result["next_steps"], o, on_run=say)
        _recheck(o, quiet=json_out)


def _recheck(o: Owner, quiet: bool) -> None:
    """Check and probe again, as ``check --probe`` does: a probe that still sees the client
    address lost (daemon not restarted, containers not recreated) fails here too."""
    from . import probe, render
    from .checks import diagnose
    from .checks.probe import with_probes

    with render.Progress("checking and probing again", enabled=not quiet):
        facts = gather_facts(host_paths(o))
        report = diagnose(facts)
        report = with_probes(report, probe.probe_all(facts, report))
    if not quiet:
        render.print_report(report)
    if report.failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# undo (`fix --undo` and `fix undo`)


def _undo(files: list[Path], force: bool, json_out: bool) -> None:
    from . import apply

    o = owner()
    done = apply.undo(o, only=files, force=force)
    if json_out:
        typer.echo(json.dumps([{"path": str(u.path), "action": u.action} for u in done], indent=2))
    elif not done:
        typer.echo("nothing to undo: rootless-doctor has not changed any file for " + o.name)
    else:
        for u in done:
            typer.echo(f"{u.action}: {u.path}")
    if any(u.action.startswith("skipped") for u in done):
        raise typer.Exit(1)


@fix_app.callback(invoke_without_command=True)
def fix_group(
    ctx: typer.Context,
    undo: Annotated[
        bool, typer.Option("--undo", help="Restore every file a fix changed (remove new ones).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --undo: also restore files edited since.")
    ] = False,
) -> None:
    """Write the fix that keeps client source IPs for the versions found here."""
    if undo:
        if ctx.invoked_subcommand is not None:
            raise DoctorError("--undo goes alone: `rootless-doctor fix --undo`")
        _undo([], force, json_out=False)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@fix_app.command("undo")
def undo_command(
    files: Annotated[list[Path] | None, typer.Argument(help="Only these files.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also restore files edited since.")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Restore the originals of files rootless-doctor changed (remove files it created)."""
    _undo([f.absolute() for f in files or []], force, json_out)


# --------------------------------------------------------------------------------------------
# fixes


@fix_app.command("docker")
def docker_command(
    driver: Annotated[
        str | None,
        typer.Option(
            "--driver",
            help="pasta-implicit | builtin-transparent | pesto | slirp4netns "
            "(default: the fastest that keeps source IPs here).",
        ),
    ] = None,
    mtu: Annotated[
        bool,
        typer.Option(
            "--mtu",
            help="Also raise the MTU to 65520: DOCKERD_ROOTLESS_ROOTLESSKIT_MTU in the drop-in "
            'and "mtu" in ~/.config/docker/daemon.json (pasta/slirp4netns ~10x faster).',
        ),
    ] = False,
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """Rootless Docker: a systemd user drop-in with the port driver, or daemon.json on
    RootlessKit ≥ 3.

    Writes ~/.config/systemd/user/docker.service.d/override.conf (DOCKERD_ROOTLESS_ROOTLESSKIT_NET
    and _PORT_DRIVER: the fastest pair that keeps client IPs with the versions found, or
    --driver), or ~/.config/docker/daemon.json "userland-proxy": false on RootlessKit ≥ 3. Next:
    `systemctl --user daemon-reload && systemctl --user restart docker`; without a systemd user
    manager (WSL, containers, OpenRC, su sessions) nothing reads the drop-in, and the next step is
    dockerd-rootless.sh started with its settings, which --restart does.
    """
    from . import apply, knowledge
    from .fixes import docker

    o, paths, facts = _host()
    if facts.docker is not None and not driver:
        v = knowledge.docker_verdict(facts.docker, facts.tools)
        if v.preserved is True:
            # --mtu on a daemon that keeps client IPs: raise the MTU of the drivers it runs
            kept = knowledge.docker_fix_options(facts.docker, facts.tools)
            driver = next((o2.key for o2 in kept if o2.current), None) if mtu else None
            if driver is None:
                typer.echo(f"nothing to do: {v.reason}")
                raise typer.Exit(0)
    by_hand = facts.systemd_user is False  # no unit to restart here: dockerd-rootless.sh
    choice = docker.choose(facts, driver)
    opt = choice.option
    cfg = paths.config_dir
    plans = docker.plan(
        opt,
        config_dir=cfg,
        dropin_text=apply.read_text(docker.dropin_path(cfg)),
        daemon_json_text=apply.read_text(docker.daemon_json_path(cfg)),
        flags=facts.docker.configured_env.get(knowledge.FLAGS_ENV) if facts.docker else None,
        mtu=mtu,
    )
    header = (
        f"driver: {opt.key} (net {opt.network_driver}, port driver {opt.port_driver}): "
        f"{choice.why}\n  cost: {opt.cost}\n  privileged ports: {opt.privileged_ports}"
    )
    others = [f"{o2.key}: {o2.throughput}" for o2 in choice.options if o2.available and o2 != opt]
    notes = [f"also usable here: {', '.join(others)} (--driver)"] if others else []
    advice = None if mtu else docker.mtu_advice(opt)
    if advice:
        notes.append(advice)
    units = facts.docker.unit_files if facts.docker else ()
    dropin = any(p.path.parent.name == "docker.service.d" for p in plans)
    if not by_hand and dropin and not any(Path(u).name == "docker.service" for u in units):
        # systemd reads a drop-in only beside a unit: without docker.service it changes nothing.
        notes.insert(
            0,
            "no docker.service user unit here (~/.config/systemd/user/, /usr/lib/systemd/user/): "
            "the drop-in takes effect once one exists; `dockerd-rootless-setuptool.sh install` "
            "creates it",
        )
    if not by_hand:
        _emit(
            plans,
            o,
            dry_run=dry_run,
            restart=restart,
            json_out=json_out,
            notes=notes,
            header="" if json_out else header,
        )
        if restart and not dry_run and not any(p.changed for p in plans) and _drifted(facts):
            # The drop-in was written before, the daemon never restarted: restart it now.
            drift_steps = list(dict.fromkeys(st for p in plans for st in p.next_steps))

            def run_say(argv: list[str]) -> None:
                if not json_out:
                    typer.echo(f"running: {shlex.join(argv)}")

            if not json_out:
                typer.echo("the daemon runs other drivers than its drop-in's: restarting it")
            apply.restart(drift_steps, o, on_run=run_say)
            _recheck(o, quiet=json_out)
        return
    # No systemd user manager (WSL, a container, OpenRC, a `su` session): nothing reads the
    # drop-in by itself. Say so, give the restart that works, and do it on --restart.
    from . import host
    from .model import STATE_SUBDIR

    launch = host.docker_launch(paths)
    env = _unit_env_after(facts, plans)
    log = f"~/{STATE_SUBDIR}/{apply.DOCKERD_LOG}"
    steps = knowledge.docker_restart_by_hand(launch.pid, launch.script, env, log)
    notes.insert(
        0,
        "no systemd user manager here: nothing reads the drop-in by itself; rootless Docker "
        "runs as dockerd-rootless.sh with these DOCKERD_ROOTLESS_* settings"
        + (f" ({launch.problem})" if launch.problem else ""),
    )
    plans = [replace(p, next_steps=steps) for p in plans]
    _emit(
        plans,
        o,
        dry_run=dry_run,
        restart=False,
        json_out=json_out,
        notes=notes,
        header="" if json_out else header,
        force_steps=restart,
    )
    if restart and not dry_run:
        drift = _drifted(facts)
        written = any(p.changed for p in plans)
        if not written and not drift and launch.pid is not None:
            typer.echo("nothing to restart: the running daemon already has these settings")
            return

        def say(line: str) -> None:
            if not json_out:
                typer.echo(line)

        env = _unit_env_after(gather_facts(paths), [])
        apply.restart_docker_by_hand(launch, env, o, say, runtime_dir=host.runtime_path(paths))
        _recheck(o, quiet=json_out)


def _unit_env_after(facts: HostFacts, plans: list[FilePlan]) -> dict[str, str]:
    """The DOCKERD_ROOTLESS_* settings of the Docker user unit and drop-ins once ``plans`` are
    written (the planned text stands in for a file it changes)."""
    from . import apply, parse

    planned = {str(p.path): p.after for p in plans}
    files = [str(f) for f in facts.docker.unit_files] if facts.docker else []
    files += [f for f in planned if f not in files and f.endswith(".conf")]
    texts = []
    for f in files:
        text = planned.get(f)
        if text is None:
            text = apply.read_text(Path(f))
        if text is not None:
            texts.append((f, text))
    env = parse.unit_environment(texts)
    return {k: v for k, v in env.items() if k.startswith("DOCKERD_ROOTLESS_")}


def _drifted(facts: HostFacts) -> bool:
    """Do the running drivers differ from the configured ones (drop-in written, daemon not
    restarted)?"""
    d = facts.docker
    if d is None or d.running is None:
        return False
    pairs = ((d.configured_net, d.running.network_driver),
             (d.configured_port_driver, d.running.port_driver))  # fmt: skip
    return any(want is not None and have is not None and want != have for want, have in pairs)


def _default_compose(cwd: Path) -> Path:
    """The file ``check`` lints and ``docker compose`` picks here (host.COMPOSE_NAMES order)."""
    from . import host

    found = host.find_compose(cwd)
    if found is None:
        raise DoctorError(f"no compose file in {cwd} ({', '.join(host.COMPOSE_NAMES)}); pass FILE")
    return found


@fix_app.command("containerd")
def containerd_command(
    driver: Annotated[
        str | None,
        typer.Option(
            "--driver",
            help="pasta-implicit | pesto | slirp4netns (default: the fastest that keeps source "
            "IPs here).",
        ),
    ] = None,
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """Rootless containerd (nerdctl): a systemd user drop-in with RootlessKit's drivers.

    Writes ~/.config/systemd/user/containerd.service.d/override.conf
    (CONTAINERD_ROOTLESS_ROOTLESSKIT_NET and _PORT_DRIVER: the fastest pair that keeps client IPs
    with the versions found, or --driver). On RootlessKit ≥ 3 the default builtin driver keeps TCP
    client IPs already (containerd has no userland proxy): nothing to write. Next:
    `systemctl --user daemon-reload && systemctl --user restart containerd`.
    """
    from . import apply, knowledge
    from .fixes import containerd

    o, paths, facts = _host()
    if facts.containerd is not None and not driver:
        v = knowledge.containerd_verdict(facts.containerd, facts.tools)
        if v.preserved is True:
            typer.echo(f"nothing to do: {v.reason}")
            raise typer.Exit(0)
    choice = containerd.choose(facts, driver)
    opt = choice.option
    fp = containerd.plan(
        opt,
        config_dir=paths.config_dir,
        dropin_text=apply.read_text(containerd.dropin_path(paths.config_dir)),
        flags=facts.containerd.configured_env.get(containerd.FLAGS) if facts.containerd else None,
    )
    if fp is None:
        typer.echo(f"nothing to write: {opt.key} needs no setting here ({opt.cost})")
        raise typer.Exit(0)
    header = (
        f"driver: {opt.key} (net {opt.network_driver}, port driver {opt.port_driver}): "
        f"{choice.why}\n  cost: {opt.cost}\n  privileged ports: {opt.privileged_ports}"
    )
    _emit(
        [fp], o, dry_run=dry_run, restart=restart, json_out=json_out, notes=[],
        header="" if json_out else header,
    )  # fmt: skip


@fix_app.command("compose")
def compose_command(
    file: Annotated[
        Path | None, typer.Argument(help="Compose file (default: ./compose.yaml).")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service to fix.")] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="auto | podman | docker (who runs this file).")
    ] = "auto",
    interface: Interface = None,
    mtu: Annotated[
        bool,
        typer.Option(
            "--mtu",
            help="Docker: also set com.docker.network.driver.mtu 65520 on the service's compose "
            "networks (with `fix docker --mtu`; Podman's pasta/slirp4netns have 65520 already).",
        ),
    ] = False,
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """A compose service: network_mode that keeps client IPs, and NETWORK_INTERFACE to match.

    Writes network_mode (pasta, or slirp4netns:port_handler=slirp4netns on Podman without
    pasta) and NETWORK_INTERFACE into FILE (default: the compose file here), keeping comments
    and order; refuses services on user-defined networks and says what to do. For Docker the
    daemon fix (`fix docker`) is the answer; with --mtu the service's compose networks get
    Docker's bridge MTU option. Next: recreate the service (its networks too with --mtu).
    """
    from . import apply, host
    from .fixes import compose

    path = (file or _default_compose(host.working_dir())).absolute()
    text = apply.read_text(path)
    if text is None:
        raise DoctorError(f"{path}: no such file")
    o, _, facts = _host()
    # its .env and env_file: (fix writes there too)
    env = host.compose_env(path, text, host.environment())
    cp = compose.plan(
        path,
        text,
        service=service,
        engine=_engine(engine, replace(facts, compose=_compose_facts(text, path, env))),
        podman=facts.podman,
        pasta_installed=_pasta(facts),
        host_interface=interface,
        env=env,
        mtu=mtu,
    )
    if cp.plan is None:
        if json_out:
            from . import __version__
            from .model import FIX_SCHEMA_VERSION, JsonFixAdvice

            advice: JsonFixAdvice = {
                "schema_version": FIX_SCHEMA_VERSION,
                "tool_version": __version__,
                "changed": False,
                "advice": cp.advice,
            }
            typer.echo(json.dumps(advice))
        else:
            typer.echo(cp.advice)
        raise typer.Exit(0)
    notes = [cp.advice] if cp.advice else []
    _emit(cp.plans, o, dry_run=dry_run, restart=restart, json_out=json_out, notes=notes)


def _compose_facts(text: str, path: Path, env: ComposeEnv) -> ComposeFacts | None:
    from . import parse

    try:
        return parse.compose(text, str(path), env)
    except parse.ParseError:
        return None  # compose.plan() names the file and what is wrong with it


def _engine(engine: str, facts: HostFacts) -> Literal["podman", "docker"]:
    if engine in ("podman", "docker"):
        return engine  # type: ignore[return-value]
    if engine != "auto":
        raise DoctorError(f"--engine {engine}: use auto, podman or docker")
    # The same choice `check --compose` makes and states (checks/compose.py owns it).
    from .checks.compose import compose_engine

    return compose_engine(facts).name


@fix_app.command("podman")
def podman_command(
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """Podman's defaults: ~/.config/containers/containers.conf.

    Sets default_rootless_network_cmd, slirp4netns network_cmd_options (port_handler) on Podman
    ≤ 5, or rootless_port_forwarder = "pasta" on Podman 6 (experimental), never a key the
    installed version does not know; [containers] netns back to "private" where it loses client
    IPs (bridge, a network name). New containers get it; recreate running ones.
    """
    from . import apply
    from .fixes import podman

    o, paths, facts = _host()
    if facts.podman is None or not facts.podman.version:
        raise DoctorError("Podman not found or its version unreadable: run `podman version`")
    path = podman.conf_path(paths.config_dir)
    pp = podman.plan(path, apply.read_text(path), facts.podman, _pasta(facts))
    _emit([pp.plan], o, dry_run=dry_run, restart=restart, json_out=json_out, notes=list(pp.notes))


@fix_app.command("quadlet")
def quadlet_command(
    file: Annotated[Path, typer.Argument(help="The Quadlet .container unit.")],
    interface: Interface = None,
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """A Quadlet .container unit: Network= in [Container] (pasta / slirp4netns port_handler).

    Needs Podman 4.4 or later (Quadlet came with it); says so when FILE is not on Quadlet's
    search path (~/.config/containers/systemd/, /etc/containers/systemd/users/...). Next:
    `systemctl --user daemon-reload` and a restart of the unit's service.
    """
    from . import apply, knowledge
    from .fixes import quadlet

    path = file.absolute()
    text = apply.read_text(path)
    if text is None:
        raise DoctorError(f"{path}: no such file")
    o, paths, facts = _host()
    version = facts.podman.version if facts.podman else None
    dirs = knowledge.quadlet_user_dirs(
        version, config_dir=paths.config_dir, runtime_dir=paths.runtime_dir, uid=paths.uid
    )
    qp = quadlet.plan(
        path,
        text,
        podman=facts.podman,
        pasta_installed=_pasta(facts),
        host_interface=interface,
        search_dirs=dirs,
    )
    assert qp.plan is not None  # a Quadlet unit always gets a plan; only compose may advise
    notes = [qp.advice] if qp.advice else []
    _emit([qp.plan], o, dry_run=dry_run, restart=restart, json_out=json_out, notes=notes)


def _lowest_port(facts: HostFacts) -> int | None:
    from .knowledge import PRIVILEGED_PORT_LIMIT

    ports: list[int] = []
    for eng in (facts.docker, facts.podman):
        for c in eng.containers if eng else ():
            ports.extend(p.host_port for p in c.ports)
    if facts.compose:
        for s in facts.compose.services:
            ports.extend(p.host_port for p in s.ports)
    low = [p for p in ports if 0 < p < PRIVILEGED_PORT_LIMIT]
    return min(low) if low else None


@fix_app.command("privileged-ports")
def privileged_ports_command(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=1023,
            help="Lowest port to allow (default: the lowest published port below 1024 found).",
        ),
    ] = None,
    dry_run: DryRun = False,
    restart: Restart = False,
    json_out: JsonOut = False,
) -> None:
    """Ports below 1024: an /etc/sysctl.d/ file for net.ipv4.ip_unprivileged_port_start.

    Only root writes it (run with sudo); otherwise the file is shown and nothing is written.
    Never raises a lower value already set.
    """
    from . import apply, host
    from .fixes import sysctl

    o, _, facts = _host()
    low = port or _lowest_port(facts)
    if low is None:
        typer.echo("nothing to do: no published port below 1024 found (pass --port N to set one)")
        raise typer.Exit(0)
    cur = facts.unprivileged_port_start
    if cur is not None and cur <= low and port is None:
        typer.echo(f"nothing to do: {sysctl.KEY} is {cur}, port {low} can be published already")
        raise typer.Exit(0)
    plan = sysctl.plan(low, apply.read_text(sysctl.FILE))
    is_root = host.is_root()
    notes = []
    if not is_root:
        notes.append(
            f"writing {sysctl.FILE} needs root: run `sudo rootless-doctor fix privileged-ports "
            f"--port {low}`"
        )
    _emit(
        [plan], o, dry_run=dry_run, restart=restart, json_out=json_out, notes=notes, write=is_root
    )
