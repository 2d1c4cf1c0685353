"""The command line: options → one core call → render. Nothing else lives here.

Exit codes: 0 no failing check (warnings allowed), 1 at least one failing check, 2 bad usage or
unreadable input. A ``DoctorError`` becomes one line on stderr, never a traceback.

No ``from __future__ import annotations`` here, unlike the other modules: Typer reads the
options' annotations at every start, and as strings each one is compiled again (typing's
ForwardRef), ~3 ms a run; as objects they are evaluated from the cached bytecode.
"""

import enum
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .cli_probe import probe_command
from .model import DoctorError


class Commands(TyperGroup):
    """The top-level commands, with ``fix`` built from cli_fix.py only when it is asked for: by
    name, by the help's list, by completion, or by a mistyped name (for "did you mean").

    Building the eight fix commands' parser (their ~50 annotated options) is a third of what
    Typer does at each start; a ``check`` has no use for it (entry.py: start-up decisions)."""

    def _fix(self) -> None:
        if "fix" not in self.commands:
            from .cli_fix import fix_app

            group = typer.main.get_group(fix_app)
            group.name = "fix"
            self.add_command(group)

    # ctx: click's Context, which has no public name across the typer versions pyproject allows
    # (the newer ones carry their own copy of click)
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            self._fix()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        self._fix()
        return super().list_commands(ctx)


app = typer.Typer(
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Run it as the user who owns the rootless engines. README: the checks, the JSON "
    "schema, what each fix writes.",
)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"rootless-doctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = None,
) -> None:
    """Do rootless Docker and Podman containers see real client IPs here? Find out, and fix it.

    Exit codes: 0 nothing failed (warnings allowed), 1 a check failed (or the probe saw the
    source IP lost), 2 bad usage or unreadable input, 3 an internal error (a bug: please report).
    """


app.command("probe")(probe_command)


class Engine(str, enum.Enum):
    docker = "docker"
    podman = "podman"


@app.command()
def check(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    from_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            help="Diagnose only these pasted files (podman info, docker version/info, ps, "
            "journal, inspect, containers.conf, drop-in, daemon.json, compose), not this host.",
        ),
    ] = None,
    compose: Annotated[
        Path | None,
        typer.Option(help="Compose file to lint (default: compose.yaml/docker-compose.yml here)."),
    ] = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also prove it with real traffic for each engine.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            help="With --probe: connect from this non-loopback address of this host "
            "(default: the host's first non-loopback address)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each engine command.", min=0.1)
    ] = 5.0,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Report (and exit on) only these check IDs; repeatable, patterns like "
            "'COMPOSE-*' work. For preflight runs in CI or Ansible.",
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Leave out these check IDs (repeatable, patterns work)."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show every check and what could not be read."),
    ] = False,
    engine: Annotated[
        Engine | None,
        typer.Option(
            "--engine",
            help="Only this engine (and the compose file judged for it); default: all found.",
        ),
    ] = None,
) -> None:
    """Detect engines and drivers, say whether client source IPs reach containers, and why.

    Reads, each with a timeout: the engines' CLIs, their processes, the Docker user unit and
    drop-ins, daemon.json, containers.conf, the compose file here (or --compose), and the host's
    prerequisites. Writes nothing. Exit codes: 0 nothing failed (warnings allowed), 1 a check
    failed, 2 bad usage or unreadable input.
    """
    from . import render
    from .checks import diagnose, only_engine

    # Bad usage fails before anything is read or run.
    for pattern in (*(only or ()), *(ignore or ())):
        if not re.fullmatch(r"[A-Za-z0-9*?\[\]-]+", pattern):
            raise DoctorError(f"{pattern!r} is not a check ID or pattern (see the README's list)")
    if only or ignore:
        from .checks.registry import validate_selection

        validate_selection([*(only or ()), *(ignore or ())])
    if source is not None and not probe:
        raise DoctorError("--source only applies with --probe")
    if probe and from_files:
        raise DoctorError("--probe sends real traffic on this host; it cannot go with --from")
    header = ""
    archive = None
    if from_files:
        from . import host

        archive = host.read_archive(from_files[0])
    if archive is not None:
        if len(from_files or ()) > 1 or compose:
            raise DoctorError(
                "--from ARCHIVE reads a collect archive alone: give no other --from or --compose"
            )
        from . import collect as collect_mod

        label = str((from_files or [Path()])[0])
        facts, manifest = collect_mod.load(archive, label)
        header = (
            f"Diagnosis from the collect archive {label} "
            f"({manifest.get('user', '?')} on {manifest.get('hostname', '?')}, "
            f"{manifest.get('created', '?')}, rootless-doctor {manifest.get('tool_version', '?')})"
        )
    elif from_files:
        from . import host, offline

        files = list(from_files) + ([compose] if compose else [])
        texts = [(str(f), host.read_pasted(f)) for f in files]
        # a pasted compose file's .env and env_file: next to it (not this shell's environment)
        envs = {n: host.compose_env(Path(n), t, None) for n, t in offline.compose_texts(texts)}
        facts = offline.from_texts(texts, envs)
    else:
        from . import host

        if compose is not None:
            host.given_compose(compose)
        from .checks.interfaces import needs_interfaces

        with render.Progress("reading the engines", enabled=not json_out):
            facts = host.gather(
                host.default_paths(),
                compose_file=compose,
                timeout=timeout,
                interfaces=needs_interfaces,  # only the containers a check looks at
            )
    if engine is not None:
        facts = only_engine(facts, engine.value)
    report = diagnose(facts).select(
        tuple(p.upper() for p in only or ()), tuple(p.upper() for p in ignore or ())
    )
    if probe:
        from .checks.probe import with_probes
        from .probe import probe_all

        with render.Progress("probing with real traffic", enabled=not json_out):
            report = with_probes(report, probe_all(facts, report, source=source))
    if json_out:
        render.print_json(render.to_json(report))
    else:
        if header:
            render.print_lines([("dim", header)])
        render.print_report(report, verbose=verbose)
    raise typer.Exit(1 if report.failed else 0)


@app.command("collect")
def collect_command(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Archive to write (default: rootless-doctor-HOST-TIME.tar.gz here). Never "
            "overwritten.",
        ),
    ] = None,
    compose: Annotated[
        Path | None,
        typer.Option(
            help="Compose file to include (default: compose.yaml/docker-compose.yml here)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each engine command.", min=0.1)
    ] = 5.0,
) -> None:
    """Write one archive for a bug report: what check reads here, and its verdicts.

    The archive (mode 0600) holds the output of each command the tool runs (podman info, docker
    version and info, inspect of each container, ...), the files it reads (the Docker user unit
    and drop-ins, daemon.json, the containers.conf chain, the compose file), the engines' process
    lines, the facts and `check --json`; manifest.json says what each file is. Secrets are
    redacted: environment values the tool does not read, values named like a password, token or
    key, credentials in URLs (manifest.json lists which, never the values). Attach it to the
    report; `rootless-doctor check --from ARCHIVE` shows the same diagnosis. Exit 0 when written,
    2 when not.
    """
    import datetime as dt

    from . import apply, host, render
    from . import collect as collect_mod
    from .checks import diagnose
    from .host.files import read
    from .host.system import processes

    if compose is not None:
        host.given_compose(compose)
    paths = host.default_paths()
    recorder = collect_mod.Recorder(host.run)
    with render.Progress("reading the engines"):
        # podman_info: a bug report carries podman info's whole answer, not just check's fields
        facts = host.gather(
            paths, compose_file=compose, timeout=timeout, runner=recorder, podman_info=True
        )
    now = dt.datetime.now(dt.timezone.utc)
    hostname = host.hostname()
    data, manifest = collect_mod.build(
        paths=paths,
        facts=facts,
        outputs=recorder.outputs,
        procs=processes(paths),
        report_json=render.to_json(diagnose(facts)),
        read=read,
        hostname=hostname,
        now=now,
    )
    target = output or Path(collect_mod.default_name(hostname, now))
    apply.create_private(target, data)
    n = len(manifest["members"]) + 1
    typer.echo(
        f"wrote {target} ({n} files, {len(data) // 1024 + 1} KiB, mode 0600); "
        f"{len(manifest['redacted'])} values redacted (listed in manifest.json).\n"
        f"Attach it to the bug report; `rootless-doctor check --from {target}` shows the same "
        "diagnosis."
    )


@app.command()
def version() -> None:
    """Print the rootless-doctor version."""
    from . import __version__

    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except DoctorError as err:
        print(f"rootless-doctor: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("rootless-doctor: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug: one line, the traceback only on request
        if os.environ.get("RD_DEBUG"):
            raise
        print(
            f"rootless-doctor: internal error: {type(err).__name__}: {err} "
            "(set RD_DEBUG=1 for the traceback and please report it)",
            file=sys.stderr,
        )
        sys.exit(3)
