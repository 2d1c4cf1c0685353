"""``rootless-doctor probe``: options → one core call (``probe.run``) → render. Nothing else here.

Exit codes: 0 every probe saw the client address, 1 at least one lost it, 2 could not run (nothing
to probe, no non-loopback address, an engine command failed). SIGINT/SIGTERM: everything started
is removed first, then 130 / 143.

How engines are found and compared with ``check``: :func:`rootless_doctor.probe.run`; what a result
means and its JSON shape: rootless_doctor/checks/probe.py and ``render.probe_run_json``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .model import ProbeResult

ENGINE_CHOICES = ("docker", "podman", "rootlesskit")


def probe_command(
    engine: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at run time (py3.10 too)
        typer.Option(
            "--engine",
            help="Probe only this engine: docker, podman or rootlesskit (default: all found).",
        ),
    ] = None,
    image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--image",
            help="Run the listener in this local image (never pulled). Default: a throwaway "
            "rootfs made from the host's /usr, no registry.",
        ),
    ] = None,
    port: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--port", min=1, max=65535, help="Host port to publish (default: a free one)."
        ),
    ] = None,
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--source",
            help="Connect from this non-loopback address of this host (default: the host's "
            "first non-loopback address).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Prove with real traffic whether containers see the client's IP address.

    Starts a throwaway listener behind each engine's own published-port path.

    Connects to it from a non-loopback address of this host and reports the address it saw.

    Says whether that agrees with `check`, and removes everything it started, also on Ctrl-C.

    Exit 0 preserved, 1 lost, 2 could not run.
    """
    from . import probe

    eng = engine.lower() if engine is not None else None
    if eng is not None and eng not in ENGINE_CHOICES:
        raise typer.BadParameter(
            f"{engine!r} is not one of {', '.join(ENGINE_CHOICES)}", param_hint="--engine"
        )
    from .render import Progress

    try:
        with Progress("probing with real traffic", enabled=not json_out):
            results, note = probe.run(eng, image=image, port=port, source=source)
    except probe.ProbeInterrupted as stop:
        print(
            f"rootless-doctor: probe interrupted by {stop}; everything it started was removed",
            file=sys.stderr,
        )
        raise typer.Exit(128 + stop.signum) from None
    from .checks.probe import exit_code

    if json_out:
        from .render import print_json, probe_run_json

        print_json(probe_run_json(results, note))
    else:
        _print(results, note)
    raise typer.Exit(exit_code(results))


_VERDICT_STYLE = {"preserved": "bold green", "lost": "bold red", "could not run": "magenta"}


def _print(results: list[ProbeResult], note: str) -> None:
    from . import knowledge as kb
    from .checks import probe
    from .render import print_lines

    lines: list[tuple[str, str]] = []
    if note:
        lines.append(("yellow", note))
    if not results:
        lines.append(("magenta", "could not run: no rootless engine found to probe (use --engine)"))
    for r in results:
        word = probe.verdict_word(r)
        lines.append(
            (
                _VERDICT_STYLE[word],
                f"{r.engine}: client IP {word}"
                if r.ran
                else f"{r.engine}: the probe could not run",
            )
        )
        if r.ran:
            why = kb.explain_seen(r.observed) if not r.preserved else ""
            lines.append(("", f"  connected from {r.source}, the listener saw {r.observed}"))
            if why:
                lines.append(("", f"  {r.observed}: {why}"))
        if r.error:
            lines.append(("magenta" if not r.ran else "yellow", f"  {r.error}"))
        if r.used:
            lines.append(("dim", f"  used: {r.used}"))
        lines.append(("dim", f"  took {r.elapsed_ms:.0f} ms"))
        if r.ran and r.expected is not None:
            finding = probe.disagreement(r)
            if finding is None:
                lines.append(("green", "  agrees with check"))
            else:
                lines.append(("bold yellow", f"  disagrees with check: {finding.detail}"))
                lines.append(("yellow", f"  fix: {finding.remedy}"))
    print_lines(lines)
