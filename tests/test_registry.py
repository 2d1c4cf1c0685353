"""checks/registry.py: every check ID declared once, the README table, --only/--ignore."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_checks import compose, dms, host, pm

from rootless_doctor.checks import all_checks, registry
from rootless_doctor.checks.probe import as_checks
from rootless_doctor.model import (
    ComposeService,
    DockerFacts,
    DoctorError,
    HostFacts,
    ProbeResult,
    RootlessKitFacts,
)

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_ids() -> set[str]:
    text = README.read_text()
    table = text.split("### Checks", 1)[1].split("\n\n", 3)
    rows = [ln for part in table for ln in part.splitlines() if ln.startswith("| `")]
    ids: set[str] = set()
    for row in rows:
        first = row.split("|")[1]
        ids |= set(re.findall(r"`([A-Z0-9-]+)`", first))
    return ids


def test_readme_table_lists_exactly_the_declared_ids() -> None:
    declared = {c.id for c in registry.CHECKS}
    listed = _readme_ids()
    assert listed == declared, (
        f"in README only: {sorted(listed - declared)}; declared only: {sorted(declared - listed)}"
    )


def _hosts() -> list[HostFacts]:
    rk = RootlessKitFacts(network_driver="slirp4netns", port_driver="builtin", version="2.3.4")
    svc = ComposeService(name="web", network_mode="slirp4netns", ports=())
    return [
        HostFacts(),
        host(),
        host(docker=DockerFacts(rootless=True, running=rk), podman=pm("6.0.0"), rootlesskits=(rk,)),
        host(compose=compose(dms(), svc)),
        host(uid=0, docker=DockerFacts(rootless=False)),
    ]


@pytest.mark.parametrize("facts", _hosts())
def test_every_result_uses_a_declared_id(facts: HostFacts) -> None:
    results = all_checks(facts)
    assert results
    assert {r.id for r in results} <= set(registry.BY_ID)


@pytest.mark.parametrize("engine", ["docker", "podman", "rootlesskit"])
def test_probe_findings_use_declared_ids(engine: str) -> None:
    r = ProbeResult(
        engine=engine,  # type: ignore[arg-type]
        ran=True,
        preserved=False,
        expected=True,
        source="10.200.0.2",
        observed="127.0.0.1",
    )
    ids = [c.id for c in as_checks(r)]
    assert ids == [registry.PROBE_ID[engine], registry.PROBE_DISAGREES_ID[engine]]  # type: ignore[index]
    assert all(i in registry.BY_ID for i in ids)


def test_undeclared_id_is_refused() -> None:
    with pytest.raises(KeyError):
        registry.known("NO-SUCH-CHECK")
    assert registry.known("SUBUID") == "SUBUID"


def test_prerequisite_rule_is_declared() -> None:
    rootful = host(
        uid=1000, subuid=(), docker=DockerFacts(rootless=False), podman=pm(rootless=False)
    )
    subuid = next(r for r in all_checks(rootful) if r.id == "SUBUID")
    bare = next(r for r in all_checks(HostFacts(uid=1000, subuid=())) if r.id == "SUBUID")
    assert subuid.status == "skip" and "every engine runs as root" in subuid.detail
    assert bare.status == "warn" and "no engine found yet" in bare.detail
    assert "rootless-engine" in registry.BY_ID["SUBUID"].needs
    assert "rootless-engine" not in registry.BY_ID["FIREWALL"].needs


@pytest.mark.parametrize("pattern", ["SUBUID", "subuid", "COMPOSE-*", "PROBE-*-DISAGREES", "*"])
def test_selection_that_matches_is_accepted(pattern: str) -> None:
    registry.validate_selection([pattern])


@pytest.mark.parametrize("pattern", ["SUBUIDS", "NOPE-*", "DOCKER-SOURCE-IPX"])
def test_selection_that_matches_nothing_lists_the_known_ids(pattern: str) -> None:
    with pytest.raises(DoctorError) as e:
        registry.validate_selection(["SUBUID", pattern])
    msg = str(e.value)
    assert repr(pattern) in msg and "'SUBUID'" not in msg
    assert "DOCKER-SOURCE-IP" in msg and "\n" not in msg
