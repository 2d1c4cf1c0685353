"""This host's real Podman 4.3.1 with ``[containers] netns = "slirp4netns:port_handler=
slirp4netns"`` in the user's containers.conf: Podman drops the options of netns (docs/facts.md
"[containers] netns"), so a plain ``podman run -p`` still goes through rootlessport and the
server sees 10.0.2.100. Check says lost, names the file and the address the server saw; `fix
podman` sets netns back to "private" (+ the port handler where Podman reads it) and the next
container keeps the client's address, as check then says. One container per state."""

from __future__ import annotations

from typing import Any

import pytest
import rdtool
import stack
from test_podman_info_realstack import user_file

pytestmark = pytest.mark.realstack

CONF = ".config/containers/containers.conf"
NETNS = 'netns = "slirp4netns:port_handler=slirp4netns"'


def podman_engine(report: dict[str, Any]) -> dict[str, Any]:
    [found] = [e for e in report["engines"] if e["engine"] == "podman"]
    return found


def tool_ok(u: stack.User, *args: str) -> str:
    cp = rdtool.run(u, *args)
    assert cp.returncode == 0, f"rootless-doctor {' '.join(args)}: {cp.stdout}{cp.stderr}"
    return cp.stdout


def test_netns_options_dropped_check_agrees_and_fix_podman_keeps_the_client(
    u: stack.User, ns: stack.Netns
) -> None:
    conf = u.host_path(u.home) / CONF
    text = conf.read_text() + f"\n[containers]\n{NETNS}\n"
    with user_file(u, CONF, text):
        with stack.podman_container(u, network=None, name="rdnetns") as c:
            seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            before = podman_engine(rdtool.check_json(u))
        assert seen == "10.0.2.100", seen  # the options were dropped: rootlessport
        assert (before["source_ip_preserved"], before["seen_address"]) == (False, seen), before
        assert f"{u.home}/{CONF}: [containers] {NETNS}" in before["reason"], before["reason"]

        tool_ok(u, "fix", "podman")
        fixed = conf.read_text()
        assert 'netns = "private"' in fixed and NETNS not in fixed, fixed
        with stack.podman_container(u, network=None, name="rdnetns") as c:
            seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            after = podman_engine(rdtool.check_json(u))
        assert seen == ns.client_addr, seen
        assert after["source_ip_preserved"] is True, after

        out = tool_ok(u, "fix", "--undo")
        assert out.strip() == f"restored: {u.home}/{CONF}", out
        assert conf.read_text() == text
    assert stack.leftovers(u) == []
