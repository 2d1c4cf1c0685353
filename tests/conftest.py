"""Shared fixtures. Real-stack tests call ``stack.require()``: skip with the reason on a
developer machine without the stack, fail in CI (CI=true), so they always run there."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import roots
import stack

DATA = Path(__file__).parent / "data"


def stack_user(where: str) -> stack.User:
    """The stack user of ``where``: "host" (this machine's) or a Debian root of roots.ROOTS;
    fails (CI) or skips when it is not set up."""
    if where == "host":
        stack.require()
        return stack.user()
    roots.require(where)
    return roots.user(where)


def read_terminal(leader: int) -> bytes:
    """All a child wrote to the pseudo-terminal whose ``leader`` end this is, until it closed
    its side (the read then fails with EIO, or gives nothing)."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


# The stack users (host and roots) as the session found them: was podman's pause process running,
# did the tool's state directory exist. What the session's tests started or made beyond that is
# ended or removed when it finishes (a test's own podman calls leave the pause process running by
# Podman's design; a fix undone leaves an empty manifest).
_found: list[tuple[stack.User, bool, bool]] = []
STATE_DIR = ".local/state/rootless-doctor"


def _stack_users() -> list[stack.User]:
    users = []
    if os.geteuid() == 0 and stack.missing() is None:
        users.append(stack.user())
        users += [roots.user(r) for r in roots.ROOTS if roots.missing(r) is None]
    return users


def pytest_sessionstart(session: pytest.Session) -> None:
    for u in _stack_users():
        state = u.host_path(u.home) / STATE_DIR
        _found.append((u, stack.podman_pause_running(u), state.exists()))


def _tidy_stack_users() -> None:
    for u, pause_was_running, state_existed in _found:
        started = stack.podman_pause_running(u) and not pause_was_running
        if started and not stack.podman(u, "ps", "-aq").stdout.strip():  # no container needs it
            stack.podman(u, "system", "migrate")  # ends the pause process
        state = u.host_path(u.home) / STATE_DIR
        if state.is_dir() and not state_existed and _manifest_is_empty(state):
            shutil.rmtree(state, ignore_errors=True)


def _manifest_is_empty(state: Path) -> bool:
    """True when the state dir records no backup (a fix was undone), so nothing is lost."""
    try:
        manifest = json.loads((state / "manifest.json").read_text())
    except (OSError, ValueError):  # unreadable: keep it, whatever it holds
        return False
    return isinstance(manifest, dict) and not manifest.get("files")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Ends what the session's tests left of the stack users (above). In CI the real stack is set
    up by .ci/run, so no test may skip: a skip there means a test silently stopped proving
    anything."""
    _tidy_stack_users()
    if os.environ.get("CI") == "true" and _skipped:
        print(f"\nCI=true: {len(_skipped)} test(s) skipped; skips are failures in CI:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


# Real-stack fixtures (tests/stack.py): the unprivileged user, and a client network namespace of
# the test's own (veth 10.200.0.1 <-> 10.200.0.2), shared by a module's tests.


@pytest.fixture(scope="module")
def u() -> stack.User:
    stack.require()
    return stack.user()


@pytest.fixture(scope="module")
def ns(u: stack.User) -> Iterator[stack.Netns]:
    with stack.client_netns() as n:
        yield n
