"""`fix containerd` on the real stack, as the owner: lost → drop-in written (the reference file) →
drift reported until the restart → restarted with the drop-in's settings: the client's address
arrives → `fix --undo` removes the drop-in. Rootless containerd as tests/containerd_stack.py
runs it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import containerd_stack
import pytest
import rdtool
import stack

from rootless_doctor import parse

pytestmark = pytest.mark.realstack

REPO = Path(__file__).resolve().parent.parent


def ids(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def test_fix_containerd_then_restart_keeps_the_client(u: stack.User, ns: stack.Netns) -> None:
    h = Path(u.home)
    dropin_dir = h / ".config/systemd/user/containerd.service.d"
    dropin = dropin_dir / "override.conf"
    assert not dropin.exists()
    # what the fix (and its backups) may add: gone afterwards, as the other fix tests expect
    added = [".config/systemd", ".config/systemd/user", ".local/state"]
    added += [".local/state/rootless-doctor", ".config/systemd/user/containerd.service.d"]
    absent = [h / p for p in added if not (h / p).exists()]
    try:
        with containerd_stack.rootless_containerd(u, port_driver="builtin") as c:
            lost = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            cp = rdtool.run(u, "fix", "containerd")
            assert cp.returncode == 0, cp.stderr + cp.stdout
            report = rdtool.check_json(u)
        assert lost == "127.0.0.1"
        assert (
            dropin.read_text()
            == (REPO / "systemd/containerd-override-slirp4netns.conf").read_text()
        )
        drift = ids(report)["CONTAINERD-DRIVER-DRIFT"]
        assert drift["status"] == "warn" and "restart containerd" in drift["remedy"]
        # the restart: the launcher with the drop-in's settings (systemd is not PID 1 here)
        env = parse.unit_environment([(str(dropin), dropin.read_text())])
        port = env["CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"]
        with containerd_stack.rootless_containerd(u, port_driver=port) as c:
            kept = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            report = rdtool.check_json(u)
        assert kept == ns.client_addr
        (engine,) = [e for e in report["engines"] if e["engine"] == "containerd"]
        assert engine["source_ip_preserved"] is True and engine["port_driver"] == "slirp4netns"
        cp = rdtool.run(u, "fix", "--undo")
        assert cp.returncode == 0, cp.stderr + cp.stdout
        assert not dropin.exists()
    finally:
        for p in absent:
            shutil.rmtree(p, ignore_errors=True)
    stack.podman_reset(u)
    assert stack.leftovers(u) == []
