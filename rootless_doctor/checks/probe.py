"""The probe's findings as checks: verdict words, the PROBE-* results, disagreements with
``check``, the exit code and the probe JSON. Pure functions of :class:`ProbeResult`; the traffic
and its cleanup are in rootless_doctor/probe.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .. import knowledge as kb
from ..model import CheckResult, ProbeResult, Report
from .registry import PROBE_DISAGREES_ID, PROBE_ID


def verdict_word(r: ProbeResult) -> str:
    if not r.ran or r.preserved is None:
        return "could not run"
    return "preserved" if r.preserved else "lost"


_RESTART = {
    "docker": (
        f"the running daemon still forwards with the old port driver: `{kb.RESTART_DOCKER}`, "
        "then recreate the containers"
    ),
    "podman": (
        "podman did not apply the configured network options to a new container: check which "
        "containers.conf files are loaded (CONTAINERS_CONF replaces them all; `podman info`) and "
        "that the option names are right, then recreate the containers"
    ),
    "rootlesskit": (
        "the running RootlessKit was started with other flags: restart it with "
        "--net=slirp4netns --port-driver=slirp4netns"
    ),
}


def disagreement(r: ProbeResult) -> CheckResult | None:
    """A finding when the probe contradicts ``check``'s static verdict, else None."""
    if not r.ran or r.preserved is None or r.expected is None or r.expected == r.preserved:
        return None
    if r.expected and not r.preserved:
        why = kb.explain_seen(r.observed)
        return CheckResult(
            id=PROBE_DISAGREES_ID[r.engine],
            title=f"{r.engine}: configured to keep client IPs, but they are lost",
            status="fail",
            detail=(
                f"check expects client addresses to be kept, but traffic from {r.source} still "
                f"arrives as {r.observed}" + (f" ({why})" if why else "")
            ),
            remedy=_RESTART[r.engine],
            engine=r.engine,
        )
    return CheckResult(
        id=PROBE_DISAGREES_ID[r.engine],
        title=f"{r.engine}: client IPs arrive intact, although check expected them lost",
        status="warn",
        detail=(
            f"check expects client addresses to be lost, but traffic from {r.source} arrived as "
            f"{r.observed}: this host differs from what check knows (newer version, distribution "
            "patch, or settings changed since)"
        ),
        remedy="trust the probe: the port-driver fix is not needed here; please report the "
        "versions so check learns this case",
        engine=r.engine,
    )


def as_checks(r: ProbeResult) -> tuple[CheckResult, ...]:
    """The probe as report lines: its own verdict, plus a disagreement finding if any."""
    word = verdict_word(r)
    if word == "could not run":
        main = CheckResult(
            id=PROBE_ID[r.engine],
            title=f"{r.engine}: end-to-end probe could not run",
            status="unknown",
            detail=r.error,
            engine=r.engine,
        )
    else:
        why = kb.explain_seen(r.observed) if r.observed != r.source else ""
        main = CheckResult(
            id=PROBE_ID[r.engine],
            title=f"{r.engine}: client IP {word} (probed)",
            status="ok" if r.preserved else "fail",
            detail=f"connected from {r.source}, the listener saw {r.observed}"
            + (f" ({why})" if why else "")
            + f"; {r.used}",
            engine=r.engine,
        )
    extra = disagreement(r)
    return (main,) if extra is None else (main, extra)


def exit_code(results: Iterable[ProbeResult]) -> int:
    """0 all preserved, 1 any lost, 2 none lost but some could not run (or nothing probed)."""
    words = [verdict_word(r) for r in results]
    if "lost" in words:
        return 1
    if not words or "could not run" in words:
        return 2
    return 0


def expected_from(report: Report | None, engine: str, index: int = 0) -> bool | None:
    """``check``'s static verdict for the ``index``-th report of ``engine`` (None when unknown).

    diagnose() lists one report per standalone RootlessKit, in ``facts.rootlesskits`` order.
    """
    if report is None:
        return None
    same = [e for e in report.engines if e.engine == engine]
    return same[index].source_ip_preserved if index < len(same) else None


def with_probes(report: Report, results: Iterable[ProbeResult]) -> Report:
    """``report`` with the probes attached and folded in as checks (:func:`as_checks`), so a
    lost client address or a disagreement counts in ``report.failed`` and shows in the report."""
    results = tuple(results)
    folded = tuple(c for r in results for c in as_checks(r))
    return replace(report, probes=results, checks=report.checks + folded)


def agrees(r: ProbeResult) -> bool | None:
    """Does the probe agree with check's static verdict (None: no verdict on one side)?"""
    if not r.ran or r.preserved is None or r.expected is None:
        return None
    return r.preserved == r.expected
