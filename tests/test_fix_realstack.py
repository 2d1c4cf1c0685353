"""`rootless-doctor fix` on the real stack: lost before, fix written as the user, kept after.

rootless dockerd 20.10 + rootlesskit 1.1.0 and podman 4.3.1 from Debian 12, run as the stack user.
PID 1 is not systemd, so the daemon is restarted by the harness with the environment the written
drop-in gives (parsed as systemd would), and the podman service is recreated with the network mode
from the fixed compose file. Traffic: only the test veth 10.200.0.x.
"""

from __future__ import annotations

import sys
from pathlib import Path

import stack

from rootless_doctor.fixes import unitfile

REPO = Path(__file__).resolve().parent.parent
# The test venv's interpreter may live under /root (unreadable for the user): run the system
# python3 of the same minor version on the venv's site-packages and the source tree instead.
SITE = next((p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()), "")
TOOL = [
    "/usr/bin/python3",
    "-c",
    "import sys; sys.argv[0] = 'rootless-doctor'; from rootless_doctor.cli import main; main()",
]


def tool(u: stack.User, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    e = dict(env or stack.user_env(u))
    e["PYTHONPATH"] = f"{REPO}:{SITE}"
    cp = stack.run_as(u, [*TOOL, *args], env=e, timeout=120)
    return cp.returncode, cp.stdout + cp.stderr


def dropin_env(text: str) -> dict[str, str]:
    """Environment= of the [Service] section, later assignments winning (systemd order)."""
    unit = unitfile.parse(text, "override.conf")
    env: dict[str, str] = {}
    for e in unit.entries:
        if e.section == "Service" and e.key == "Environment":
            words = unitfile.env_words(e.value, "override.conf")
            if not words:
                env.clear()
            env.update(w.split("=", 1) for w in words)  # type: ignore[misc]
    return env


def test_fix_docker_keeps_client_ip() -> None:
    stack.require()
    u = stack.user()
    dropin = Path(u.home, ".config/systemd/user/docker.service.d/override.conf")
    tool(u, "fix", "--undo", "--force")
    assert not dropin.exists(), f"{dropin} left from an earlier run"
    try:
        with stack.client_netns() as ns:
            port = stack.free_port()
            with stack.rootless_dockerd(u, port_driver="builtin") as d:
                d.run(port)
                assert stack.ask_from_netns(ns, ns.host_addr, port) != ns.client_addr  # lost
                code, out = tool(u, "fix", "docker", "--dry-run", env=d.env)
                assert code == 0 and not dropin.exists(), out
                code, out = tool(u, "fix", "docker", env=d.env)
                assert code == 0, out
                assert "slirp4netns" in out and dropin.is_file()
                assert dropin.stat().st_uid == u.uid
            env = dropin_env(dropin.read_text())
            assert env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] == "slirp4netns"
            with stack.rootless_dockerd(
                u,
                port_driver=env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"],
                net=env["DOCKERD_ROOTLESS_ROOTLESSKIT_NET"],
                extra_env=env,
            ) as d:
                d.run(port)
                assert stack.ask_from_netns(ns, ns.host_addr, port) == ns.client_addr
    finally:
        code, out = tool(u, "fix", "--undo", "--force")
    assert not dropin.exists(), out


COMPOSE = """\
services:
  peer:
    image: local/rdrootfs
    container_name: rdpeer
    ports:
      - "{port}:8080"  # the peer server
"""


def test_fix_compose_keeps_client_ip() -> None:
    stack.require()
    u = stack.user()
    d = stack._user_tmpdir(u, "rd-compose-")
    f = d / "compose.yaml"
    try:
        with stack.client_netns() as ns:
            port = stack.free_port()
            f.write_text(COMPOSE.format(port=port))
            import os

            os.chown(f, u.uid, u.gid)
            with stack.podman_container(u, network="slirp4netns", host_port=port):
                assert stack.ask_from_netns(ns, ns.host_addr, port) != ns.client_addr  # lost
            code, out = tool(u, "fix", "compose", str(f), "--engine", "podman")
            assert code == 0, out
            from ruamel.yaml import YAML

            svc = YAML().load(f.read_text())["services"]["peer"]
            mode = str(svc["network_mode"])
            assert mode == "slirp4netns:port_handler=slirp4netns"
            # The equivalent `podman run` of the fixed service.
            with stack.podman_container(u, network=mode, host_port=port):
                assert stack.ask_from_netns(ns, ns.host_addr, port) == ns.client_addr
            code, out = tool(u, "fix", "compose", str(f), "--engine", "podman")
            assert code == 0 and "nothing to do" in out, out
    finally:
        tool(u, "fix", "undo", str(f), "--force")
        stack.podman_reset(u)
        import shutil

        shutil.rmtree(d, ignore_errors=True)
