"""apply.restart_docker_by_hand's two waits (stop, then start) end at their bounds with the
reason, on real processes this test starts and ends by PID (no daemon runs here)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rootless_doctor import apply
from rootless_doctor.model import DockerLaunch, DoctorError, Owner


def _owner(tmp_path: Path) -> Owner:
    me = pwd.getpwuid(os.getuid())
    home = tmp_path / "home"
    home.mkdir()
    return Owner(name=me.pw_name, uid=me.pw_uid, gid=me.pw_gid, home=home)


def _end(pid: int) -> None:
    """SIGKILL a process this test started (directly or through apply) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def test_a_launcher_that_does_not_stop_is_not_started_again(tmp_path: Path) -> None:
    script = tmp_path / "dockerd-rootless.sh"
    script.write_text("#!/bin/sh\ntouch started\n")
    script.chmod(0o755)
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    try:
        time.sleep(0.2)  # the trap is set
        launch = DockerLaunch(script=str(script), pid=stubborn.pid)
        said: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(DoctorError, match=r"did not stop within 1 s; it was not started"):
            apply.restart_docker_by_hand(
                launch, {}, _owner(tmp_path), said.append, runtime_dir=tmp_path, stop_timeout=1.0
            )
        assert 1.0 <= time.monotonic() - t0 < 10
        assert stubborn.poll() is None  # still there: SIGTERM was sent and ignored
        assert said == [f"stopping rootless dockerd (RootlessKit PID {stubborn.pid})"]
        assert not (tmp_path / "home/started").exists()
    finally:
        _end(stubborn.pid)


def test_a_daemon_that_never_answers_ends_the_wait_with_its_log(tmp_path: Path) -> None:
    script = tmp_path / "dockerd-rootless.sh"
    script.write_text("#!/bin/sh\necho $$ > pid\nexec sleep 60\n")  # runs, never answers
    script.chmod(0o755)
    o = _owner(tmp_path)
    t0 = time.monotonic()
    try:
        with pytest.raises(DoctorError, match=r"did not answer within 1 s; see .*dockerd\.log"):
            apply.restart_docker_by_hand(
                DockerLaunch(script=str(script)), {}, o, lambda _: None,
                runtime_dir=tmp_path / "run", start_timeout=1.0,
            )  # fmt: skip
        assert 1.0 <= time.monotonic() - t0 < 30
    finally:
        pidfile = o.home / "pid"
        deadline = time.monotonic() + 5
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pidfile.exists():
            _end(int(pidfile.read_text()))
