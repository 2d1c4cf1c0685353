"""Shared fixtures. Real-stack tests call ``stack.require()``: skip with the reason on a
developer machine without the stack, fail in CI (CI=true), so they always run there."""

from __future__ import annotations

import os
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI the real stack is set up by .ci/run, so no test may skip: a skip there means a
    test silently stopped proving anything."""
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
