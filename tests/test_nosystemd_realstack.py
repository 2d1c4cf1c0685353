"""`fix docker --restart` on a host without a systemd user manager, for real: this CI machine
has no systemd as PID 1, as WSL, containers and OpenRC hosts have none.

Rootless dockerd runs with the builtin port driver (client IPs lost); `fix docker --driver
slirp4netns --restart`, run as the owner, writes the drop-in, says no unit reads it here, stops
the running RootlessKit and starts dockerd-rootless.sh with the drop-in's settings; a client in
the test's own network namespace is then seen with its own address. Needs the real stack:
skips without it, fails in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import rdtool
import stack

pytestmark = pytest.mark.realstack


def _launchers(u: stack.User) -> list[int]:
    """PIDs of this user's top RootlessKit running dockerd-rootless.sh."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != u.uid:
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(argv[0].decode()).name == "rootlesskit" and any(
            a.endswith(b"dockerd-rootless.sh") for a in argv
        ):
            pids.append(int(proc.name))
    return pids


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_fix_docker_restart_by_hand_keeps_client_ips(u: stack.User, ns: stack.Netns) -> None:
    env = stack.user_env(u)  # PATH has dockerd-rootless.sh's contrib dir, as a user would set
    dropin = Path(u.home, ".config/systemd/user/docker.service.d/override.conf")
    assert not dropin.exists()
    state = Path(u.home, ".local/state/rootless-doctor")
    # What the fix creates and undo leaves (directories): removed again if the test made them.
    made = [p for p in (state, *dropin.parents) if not p.exists() and u.home in str(p.parent)]
    started: list[int] = []
    try:
        with stack.rootless_dockerd(u, port_driver="builtin") as d:
            [old] = _launchers(u)
            before = rdtool.check_json(u, "--engine", "docker", env=env)
            assert before["engines"][0]["source_ip_preserved"] is False
            ids = {c["id"]: c for c in before["checks"]}
            assert "`rootless-doctor fix docker --restart`" in ids["DOCKER-SOURCE-IP"]["remedy"]
            assert "does not run systemd" in ids["SYSTEMD-USER"]["detail"]

            cp = rdtool.run(
                u, "fix", "docker", "--driver", "slirp4netns", "--restart", env=env, timeout=240
            )
            out = cp.stdout + cp.stderr
            assert "no systemd user manager here" in out, out
            assert f"stopping rootless dockerd (RootlessKit PID {old})" in out, out
            assert "rootless dockerd is up" in out, out
            started = _launchers(u)
            assert len(started) == 1 and started[0] != old, (started, old)
            cmdline = Path(f"/proc/{started[0]}/cmdline").read_bytes().split(b"\0")
            assert b"--port-driver=slirp4netns" in cmdline

            after = rdtool.check_json(u, "--engine", "docker", env=env)
            docker = after["engines"][0]
            assert docker["port_driver"] == "slirp4netns"
            assert docker["source_ip_preserved"] is True
            assert not any(c["id"] == "DOCKER-DRIVER-DRIFT" and c["status"] != "ok"
                           for c in after["checks"])  # fmt: skip
            port = stack.free_port()
            d.run(port)  # the same socket path: the daemon the tool started
            assert stack.ask_from_netns(ns, ns.host_addr, port) == ns.client_addr
            d.remove_containers()

            # Again: the daemon already runs with the drop-in's settings.
            again = rdtool.run(u, "fix", "docker", "--driver", "slirp4netns", "--restart", env=env)
            assert "nothing to restart" in again.stdout or "nothing to do" in again.stdout, (
                again.stdout + again.stderr
            )
            assert _launchers(u) == started
    finally:
        for pid in started:
            _stop(pid)
        rdtool.run(u, "fix", "--undo")
        (state / "dockerd.log").unlink(missing_ok=True)
        for d in made:  # the fix's backups, the daemon's log, the drop-in's directories
            shutil.rmtree(d, ignore_errors=True)
        stack.podman_reset(u)
    assert not dropin.exists()
