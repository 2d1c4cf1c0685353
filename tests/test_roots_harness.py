"""Real tests of the Debian-root harness (.ci/roots.sh, tests/roots.py).

A root's user runs inside the root (its own /usr: the root's Python), may create user namespaces
(the reason roots are entered with pivot_root, not chroot), and the PID the harness holds is the
program itself, so the tests stop exactly what they started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import roots
import stack

pytestmark = pytest.mark.realstack

PYTHON = {"trixie": "3.13", "sid": "3.14"}


@pytest.fixture(scope="module", params=roots.ROOTS)
def ru(request: pytest.FixtureRequest) -> stack.User:
    roots.require(request.param)
    return roots.user(request.param)


def test_runs_inside_the_root(ru: stack.User) -> None:
    root = ru.root.rsplit("/", 1)[1]
    cp = stack.run_as(ru, ["sh", "-c", 'id -u; echo "$HOME"; python3 --version; pwd'])
    assert cp.returncode == 0, cp.stderr
    uid, home, python, cwd = cp.stdout.splitlines()
    assert (int(uid), home, cwd) == (ru.uid, ru.home, ru.home)
    assert python.startswith(f"Python {PYTHON[root]}."), python
    # The root's own /etc, not the host's (Debian 12): 13.x on trixie, "<next>/sid" on sid.
    cp = stack.run_as(ru, ["cat", "/etc/debian_version"])
    version = cp.stdout.strip()
    assert version.startswith("13.") if root == "trixie" else version.endswith("/sid"), version


def test_user_namespaces_allowed(ru: stack.User) -> None:
    """In a chroot this is refused (EPERM); rootless engines need it."""
    cp = stack.run_as(ru, ["unshare", "--user", "--map-root-user", "id", "-u"])
    assert (cp.returncode, cp.stdout.strip()) == (0, "0"), cp.stderr


def test_pid_is_the_program(ru: stack.User) -> None:
    proc = stack.spawn_as(ru, ["sleep", "60"], stdout=subprocess.DEVNULL)
    try:
        # Every step of roots.sh user execs: once sleep runs, the PID is sleep's, as the user.
        deadline = time.monotonic() + 10
        while _cmdline(proc.pid) != ["sleep", "60"] and time.monotonic() < deadline:
            assert proc.poll() is None, f"exited {proc.returncode}"
            time.sleep(0.02)
        assert _cmdline(proc.pid) == ["sleep", "60"]
        assert os.stat(f"/proc/{proc.pid}").st_uid == ru.uid
        # Its / is the root's directory (pivot_root), not the host's.
        assert os.path.samefile(f"/proc/{proc.pid}/root/etc", ru.host_path("/etc"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stack.leftovers(ru) == []


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode().split("\0")[:-1]
    except OSError:
        return []
