"""``rootless-doctor probe``: options → one core call (``probe.run``) → render. Nothing else here.

Exit codes: 0 every probe saw the client address, 1 at least one lost it, 2 could not run (nothing
to probe, no non-loopback address, an engine command failed). SIGINT/SIGTERM: everything started
is removed first, then 130 / 143.

How engines are found and compared with ``check``: :func:`rootless_doctor.probe.run`; what a result
means and its JSON shape: rootless_doctor/checks/probe.py and ``render.probe_run_json``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .model import ProbeResult

if TYPE_CHECKING:
    from .throughput import PathResult

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
    throughput: Annotated[
        bool,
        typer.Option(
            "--throughput",
            help="Also measure Gbit/s and the client IP through each published-port path this "
            "host offers (Podman's default and its --network choices, Docker and standalone "
            "RootlessKits as they run), one throwaway sink each; no new path starts after "
            "120 s (the last one still ends within its own bound).",
        ),
    ] = False,
    seconds: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--seconds",
            min=0.1,
            max=10.0,
            help="With --throughput: seconds of sending per path (default 2, at most 10).",
        ),
    ] = None,
) -> None:
    """Prove with real traffic whether containers see the client's IP address.

    Starts a throwaway listener behind each engine's own published-port path.

    Connects to it from a non-loopback address of this host and reports the address it saw.

    Says whether that agrees with `check`, and removes everything it started, also on Ctrl-C.

    With --throughput: Gbit/s through each path here, which keep client IPs, and the fastest that
    does (the exit code stays the probe's).

    Exit 0 preserved, 1 lost, 2 could not run.
    """
    from . import probe

    eng = engine.lower() if engine is not None else None
    if eng is not None and eng not in ENGINE_CHOICES:
        raise typer.BadParameter(
            f"{engine!r} is not one of {', '.join(ENGINE_CHOICES)}", param_hint="--engine"
        )
    if seconds is not None and not throughput:
        raise typer.BadParameter("applies only with --throughput", param_hint="--seconds")
    from .render import Progress

    per_path = seconds or 0.0
    tput = None
    try:
        with Progress("probing with real traffic", enabled=not json_out):
            results, note = probe.run(eng, image=image, port=port, source=source)
        if throughput:
            from . import throughput_probe
            from .throughput import SECONDS

            per_path = SECONDS if seconds is None else seconds
            what = f"measuring throughput, {per_path:g} s per path"
            with Progress(what, enabled=not json_out, delay=0):
                tput = throughput_probe.run(
                    [r.engine for r in results],
                    image=image,
                    port=port,
                    source=source,
                    seconds=per_path,
                )
    except probe.ProbeInterrupted as stop:
        print(
            f"rootless-doctor: probe interrupted by {stop}; everything it started was removed",
            file=sys.stderr,
        )
        raise typer.Exit(128 + stop.signum) from None
    from .checks.probe import exit_code

    if json_out:
        from .render import print_json, probe_run_json

        data: dict[str, object] = dict(probe_run_json(results, note))
        if tput is not None:
            from . import throughput as tp

            data["throughput"] = tp.to_json(tput, per_path)  # shape: throughput.JsonThroughput
        print_json(data)
    else:
        _print(results, note)
        if tput is not None:
            _print_throughput(tput, per_path)
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


def _print_throughput(results: list[PathResult], seconds: float) -> None:
    from . import throughput as tp
    from .render import print_lines

    src = next((r.source for r in results if r.source), "")
    lines: list[tuple[str, str]] = [
        ("", ""),
        (
            "bold",
            f"Throughput here: {seconds:g} s per path from {src or '?'}; Gbit/s is what arrived "
            "in the container",
        ),
    ]
    if not results:
        lines.append(("magenta", "  no path to measure (Podman, rootless Docker, RootlessKit)"))
        print_lines(lines)
        return
    width = max(len(r.spec.label) for r in results)
    lines.append(("dim", f"  {'path':<{width}}  Gbit/s  {'client IP':<22}  measured elsewhere*"))
    for r in results:
        gbit = "-" if r.gbit_s is None else f"{r.gbit_s:.1f}"
        if r.outcome == "measured":
            ip = "kept" if r.kept else f"lost ({r.observed})"
            style = "green" if r.kept else "red"
        else:
            ip = r.outcome
            style = "magenta" if r.outcome == "failed" else "dim"
        row = f"  {r.spec.label:<{width}}  {gbit:>6}  {ip:<22}  {tp.elsewhere_text(r) or '-'}"
        lines.append((style, row.rstrip()))
        if r.error:
            lines.append(("yellow" if r.outcome == "failed" else "dim", f"    {r.error}"))
    t = tp.table()
    if t is not None:
        lines.append(
            (
                "dim",
                f"  * not this host: bench/dataplane.py on Debian stacks, {t.machine}, {t.date}",
            )
        )
    lines.append(("dim", "  one run per path: a busy host varies; repeat, or raise --seconds"))
    d = tp.decide(results)
    lines.append(("bold green" if d.best else "bold yellow", d.text))
    lines += [("yellow", a) for a in tp.advice(results)]
    print_lines(lines)
