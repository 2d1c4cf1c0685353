"""``rootless-doctor probe``: options → detect engines → probe each → render. Nothing else here.

Exit codes: 0 every probe saw the client address, 1 at least one lost it, 2 could not run (nothing
to probe, no non-loopback address, an engine command failed). SIGINT/SIGTERM: everything started
is removed first, then 130 / 143.

With ``--engine docker|podman`` the probe starts at once and ``check``'s expected verdict is read
meanwhile in a thread (``host.gather`` of that engine alone: ``podman info`` costs about as much as
the probe itself), then folded into the result. ``--engine rootlesskit`` first finds the running
RootlessKits (no engine CLI, a few ms): the probe runs once per instance.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .model import DoctorError, HostFacts, ProbeResult, Report

if TYPE_CHECKING:
    from .model import HostPaths

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
    from . import host, probe

    eng = engine.lower() if engine is not None else None
    if eng is not None and eng not in ENGINE_CHOICES:
        raise typer.BadParameter(
            f"{engine!r} is not one of {', '.join(ENGINE_CHOICES)}", param_hint="--engine"
        )
    paths = host.default_paths()
    results: list[ProbeResult] = []
    note = ""
    try:
        if eng in ("docker", "podman"):
            meanwhile = _Detect(paths, [eng])
            result = probe.probe(eng, image=image, port=port, source=source, paths=paths)
            _facts, report, note = meanwhile.result()
            results = [replace(result, expected=probe.expected_from(report, eng))]
        else:
            facts, report, note = _detect(paths, [eng] if eng else None)
            engines = [eng] if eng else probe.engines_in(facts)
            if engines:
                results = probe.probe_all(
                    facts, report, paths=paths, image=image, source=source, engines=engines,
                    port=port,
                )  # fmt: skip
    except probe.ProbeInterrupted as stop:
        print(
            f"rootless-doctor: probe interrupted by {stop}; everything it started was removed",
            file=sys.stderr,
        )
        raise typer.Exit(128 + stop.signum) from None
    if json_out:
        from .render import print_json

        print_json(_json(results, note))
    else:
        _print(results, note)
    raise typer.Exit(probe.exit_code(results))


def _detect(paths: HostPaths, engines: list[str] | None) -> tuple[HostFacts, Report | None, str]:
    """Facts (of ``engines``, default all present) and check's report (the expected verdicts)."""
    from . import host

    try:
        facts = host.gather(paths, interfaces=False, engines=engines)
    except DoctorError as err:
        return HostFacts(), None, f"could not read the host ({err}); probing without check"
    from .checks import diagnose

    return facts, diagnose(facts), ""


class _Detect:
    """:func:`_detect` in a daemon thread, while the probe runs in the main thread (which must
    keep the signals: the probe turns SIGINT/SIGTERM into a clean-up)."""

    def __init__(self, paths: HostPaths, engines: list[str]) -> None:
        self._out: tuple[HostFacts, Report | None, str] | None = None
        self._err: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(paths, engines), name="rd-detect", daemon=True
        )
        self._thread.start()

    def _run(self, paths: HostPaths, engines: list[str]) -> None:
        try:
            self._out = _detect(paths, engines)
        except BaseException as err:  # handed to the main thread by result()
            self._err = err

    def result(self) -> tuple[HostFacts, Report | None, str]:
        self._thread.join()
        if self._err is not None:
            raise self._err
        assert self._out is not None
        return self._out


def _json(results: list[ProbeResult], note: str) -> dict[str, Any]:
    from . import probe
    from .render import check_json, probe_json

    out: list[dict[str, Any]] = []
    for r in results:
        item = probe_json(r)
        item["verdict"] = probe.verdict_word(r)
        item["agrees_with_check"] = probe.agrees(r)
        finding = probe.disagreement(r)
        item["finding"] = None if finding is None else check_json(finding)
        out.append(item)
    return {"probes": out, "exit_code": probe.exit_code(results), "note": note or None}


_VERDICT_STYLE = {"preserved": "bold green", "lost": "bold red", "could not run": "magenta"}


def _print(results: list[ProbeResult], note: str) -> None:
    from . import probe
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
            why = probe.explain(r.observed) if not r.preserved else ""
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
