"""Issue 11: a docker CLI that never answers, or answers without end, as the real stack user:
the running daemon's drivers are unknown, so DOCKER-SOURCE-IP must say unknown (it said fail from
the launcher's defaults in the user's unit). Shares the set-up of tests/test_hostile_input.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hostile
import pytest
import stack


@pytest.fixture
def engine_env(u: stack.User) -> Iterator[tuple[Path, dict[str, str]]]:
    with hostile.engine_sandbox(u) as env:
        yield env


@pytest.mark.realstack
def test_a_docker_that_prints_without_end_is_cut(
    u: stack.User, engine_env: tuple[Path, dict[str, str]]
) -> None:
    """`yes` as the engine CLI: 30 s and 13 GB before, despite the 5 s timeout."""
    bindir, env = engine_env
    hostile.fake(bindir, "docker", "exec yes")
    o, status = hostile.live_check(u, env)
    assert o.seconds < 5 + 1 + 20, o.describe()  # engine timeout + 1 s; 20 s for a busy machine
    assert "truncated" in o.stdout, o.stdout[-3000:]  # said in the report, where it is used
    assert status["DOCKER-SOURCE-IP"] == "unknown", status


@pytest.mark.realstack
def test_a_hung_docker_cli_gives_unknown_not_fail(
    u: stack.User, engine_env: tuple[Path, dict[str, str]]
) -> None:
    """A `docker` that never answers, the user's unit naming dockerd-rootless.sh: DOCKER-SOURCE-IP
    said fail from the launcher's defaults (builtin) although nothing running was read."""
    bindir, env = engine_env
    hostile.fake(bindir, "docker", "exec sleep 100")
    o, status = hostile.live_check(u, env)
    assert status["DOCKER-SOURCE-IP"] == "unknown", (status, o.stdout[-2000:])
