"""The per-container reads of a live check, read in one pass (issue 12), against the old reads.

Interfaces: one helper process (host/netns_dump.py) enters the containers' user namespace once
and each container's network namespace in turn. The reference is what the check did before, one
``nsenter -U -n --preserve-credentials -t PID ip -j addr show`` per container (real ``ip``, run
as the containers' owner). Every stack: the host (Debian 12) and the trixie/sid roots
(tests/roots.py), each container in another network mode; the CONTAINER-NETWORK-INTERFACE
verdicts `check --json` gives must follow from the reference interfaces.

Port handlers: read from one index of the owner's processes; each mode's handler is asserted.
Speed is measured in bench/scale.py, never here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rdtool
import roots
import stack
from conftest import stack_user

from rootless_doctor.checks.interfaces import best_interface, needs_interfaces
from rootless_doctor.host import containers as hc
from rootless_doctor.host.runner import Cmds, run
from rootless_doctor.model import CmdOutput, ContainerFacts, Interface, PodmanFacts

NETWORK = "rdreads-net"


def _ip_json(text: str) -> list[tuple[str, list[str]]]:
    """(name, ["addr/prefix", ...]) per link of ``ip -j addr show`` output, in its order."""
    return [
        (link["ifname"], [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])])
        for link in json.loads(text)
    ]


def _as_tuples(ifaces: tuple[Interface, ...] | None) -> list[tuple[str, list[str]]] | None:
    return None if ifaces is None else [(i.name, list(i.addresses)) for i in ifaces]


# ------------------------------------------------------------------------------ no engine needed


@pytest.mark.skipif(os.geteuid() != 0, reason="reads another process's netns: runs as root")
def test_helper_reads_this_hosts_namespace_like_ip() -> None:
    """As root the helper enters no user namespace: this process's netns is the host's; it must
    list what `ip -j addr show` lists (names, addresses, prefixes, order). Other tests add and
    remove veths on this host: compare only when `ip` saw the same before and after."""

    def ip() -> list[tuple[str, list[str]]]:
        cp = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True)
        assert cp.returncode == 0, cp.stderr
        return _ip_json(cp.stdout)

    for _ in range(20):
        before = ip()
        ifaces, why = hc.read_interfaces([os.getpid()])[os.getpid()]
        if ip() == before:
            assert why == ""
            assert _as_tuples(ifaces) == before
            return
    pytest.fail("the host's interfaces kept changing: nothing to compare")


def test_exited_pid_gives_a_reason_not_an_exception() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    ifaces, why = hc.container_interfaces(proc.pid)
    assert ifaces is None
    assert why.startswith(f"pid {proc.pid}: cannot ") and "No such file" in why


class _Helper:
    """A runner standing in for the helper process: answers from a script of outputs."""

    def __init__(self, *outputs: str) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Any, *, timeout: float = 5.0, env: Any = None) -> CmdOutput:
        self.calls.append(list(argv))
        return CmdOutput(argv=tuple(argv), code=0, stdout=self.outputs.pop(0))


def test_other_user_namespace_is_read_by_a_second_helper() -> None:
    lo = [{"ifname": "lo", "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]}]
    tap = [{"ifname": "tap0", "addr_info": [{"local": "10.0.2.100", "prefixlen": 24}]}]
    runner = _Helper(
        json.dumps({"11": lo, "22": {"error": "other-userns"}}),
        json.dumps({"22": tap}),
    )
    got = hc.read_interfaces([22, 11], runner=runner)
    helper = str(hc.HELPER)
    assert [c[c.index(helper) + 1 :] for c in runner.calls] == [["11", "22"], ["22"]]
    assert _as_tuples(got[11][0]) == [("lo", ["127.0.0.1/8"])]
    assert _as_tuples(got[22][0]) == [("tap0", ["10.0.2.100/24"])]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("not json", "not JSON"),
        (json.dumps({"7": [{"addr_info": []}]}), "unreadable interface list"),
        (json.dumps({"7": {"error": "other-userns"}}), "could not be entered"),
        (json.dumps({}), "no answer"),
    ],
)
def test_bad_helper_output_is_a_reason(output: str, reason: str) -> None:
    ifaces, why = hc.read_interfaces([7], runner=_Helper(output))[7]
    assert ifaces is None and reason in why


@pytest.mark.skipif(os.geteuid() != 0, reason="reads another process's netns: runs as root")
def test_only_the_containers_a_check_needs_are_read() -> None:
    """fill_interfaces reads the containers the predicate picks (the live check passes the
    CONTAINER-NETWORK-INTERFACE one) and leaves the others unread, without an error."""
    me = os.getpid()
    dms = ContainerFacts(engine="podman", name="dms", pid=me, env={"NETWORK_INTERFACE": "eth0"})
    plain = ContainerFacts(engine="podman", name="web", pid=me)
    gone = replace(dms, name="gone", pid=None)
    podman = PodmanFacts(containers=(dms, plain, gone))
    filled, _ = hc.fill_interfaces(Cmds(run, {}, 5.0), podman, None, os.geteuid(), needs_interfaces)
    assert filled is not None
    by = {c.name: c for c in filled.containers}
    assert by["dms"].interfaces and by["dms"].interfaces_error == ""
    assert by["web"].interfaces is None and by["web"].interfaces_error == ""
    assert by["gone"].interfaces is None and by["gone"].interfaces_error == "not running"


# ------------------------------------------------------------------------------------ real stack


def _stacks() -> list[str]:
    return ["host", *roots.ROOTS]


@pytest.fixture(params=_stacks())
def su(request: pytest.FixtureRequest) -> stack.User:
    return stack_user(request.param)


@contextmanager
def _containers(u: stack.User, specs: list[tuple[str, list[str], str]]) -> Iterator[None]:
    """``podman run -d`` each (name, --network args, NETWORK_INTERFACE or "") with a published
    port (busybox httpd; no registry); all removed after, and the pause process when idle."""
    pause_was_running = stack.podman_pause_running(u)
    names = [n for n, _, _ in specs]
    try:
        if any("--network" in a and NETWORK in a for _, a, _ in specs):
            stack.podman(u, "network", "rm", "-f", NETWORK)
            stack._check(stack.podman(u, "network", "create", NETWORK), "podman network create")
        for name, net, iface in specs:
            env = ["-e", f"NETWORK_INTERFACE={iface}"] if iface else []
            argv = [
                "run", "-d", "--name", name, *net, *env, "-p", f"{stack.free_port()}:8080",
                "--rootfs", stack.rootfs(u), "/bin/busybox", "httpd", "-f", "-p", "8080",
            ]  # fmt: skip
            stack._check(stack.podman(u, *argv), f"podman run {name}")
        yield
    finally:
        stack.podman(u, "rm", "-f", "-t0", *names)
        stack.podman(u, "network", "rm", "-f", NETWORK)
        if not pause_was_running and not stack.podman(u, "ps", "-aq").stdout.strip():
            stack.podman(u, "system", "migrate")


def _reference(u: stack.User, pid: int) -> list[tuple[str, list[str]]]:
    """The old read: nsenter into the container's user and network namespaces, `ip -j addr`."""
    cp = stack.run_as(
        u, ["nsenter", "-U", "-n", "--preserve-credentials", "-t", str(pid), "ip", "-j", "addr"]
    )
    assert cp.returncode == 0, cp.stderr
    return _ip_json(cp.stdout)


@pytest.mark.realstack
def test_interfaces_and_verdicts_match_the_old_reads(su: stack.User) -> None:
    modern = bool(su.root)  # Podman 5 (pasta default, netavark networks) vs 4.3 (slirp4netns)
    specs = [
        ("rdreads-default", [], "eth0"),
        ("rdreads-s4", ["--network", "slirp4netns:port_handler=slirp4netns"], "tap0"),
        ("rdreads-plain", [], ""),  # no docker-mailserver marker: no check, not read
    ]
    if modern:
        specs.append(("rdreads-bridge", ["--network", NETWORK], "eth0"))
    handler = {  # the port handler each default / network gives on this stack
        "rdreads-default": "pasta" if modern else "rootlesskit",
        "rdreads-s4": "slirp4netns",
        "rdreads-bridge": "rootlessport",
    }
    with _containers(su, specs):
        pids = {
            n: int(stack._check(stack.podman(su, "inspect", "-f", "{{.State.Pid}}", n), n))
            for n, _, _ in specs
        }
        cp = rdtool.run(su, "check", "--json")
        assert cp.returncode in (0, 1), cp.stderr
        report = json.loads(cp.stdout)
        podman = next(e for e in report["engines"] if e["engine"] == "podman")
        by_name = {c["name"]: c for c in podman["containers"]}
        checks = {
            c["title"].split(":")[0].removeprefix("Container "): c
            for c in report["checks"]
            if c["id"] == "CONTAINER-NETWORK-INTERFACE"
        }
        assert "rdreads-plain" not in checks  # no marker: not checked, so not read
        for name, _, iface in specs:
            if name in handler:
                assert by_name[name]["port_handler"] == handler[name], by_name[name]
            if not iface:
                continue
            ref = _reference(su, pids[name])
            seen = ", ".join(f"{n} {' '.join(a)}".strip() for n, a in ref)
            result = checks[name]
            assert seen in result["detail"], (ref, result)
            names = [n for n, _ in ref]
            if iface in names:
                assert result["status"] == "ok", result
            else:
                best = best_interface(tuple(Interface(name=n, addresses=tuple(a)) for n, a in ref))
                assert (
                    result["status"] == "fail" and f"NETWORK_INTERFACE={best}" in result["remedy"]
                )


def test_process_list_equals_psutils() -> None:
    """The /proc reader of host/system gives what psutil gives (pid, ppid, real uid, argv) for
    every process of this live host that did not change while the snapshots were taken (psutil
    before and after ours, equal)."""
    import psutil

    from rootless_doctor.host.system import processes
    from rootless_doctor.model import HostPaths

    def snapshot() -> dict[int, tuple[int, int | None, tuple[str, ...]]]:
        out = {}
        for p in psutil.process_iter(["pid", "ppid", "uids", "cmdline"]):
            uids = p.info["uids"]
            real = uids.real if uids is not None else None
            out[p.pid] = (p.info["ppid"], real, tuple(p.info["cmdline"] or ()))
        return out

    before = snapshot()
    ours = {p.pid: (p.ppid, p.uid, p.cmdline) for p in processes(HostPaths(uid=os.geteuid()))}
    after = snapshot()
    steady = {
        pid for pid in before.keys() & after.keys() & ours.keys() if before[pid] == after[pid]
    }
    assert len(steady) > 10, (len(before), len(ours), len(after))
    assert {pid: (ours[pid], before[pid]) for pid in steady if ours[pid] != before[pid]} == {}


def test_exe_name_is_the_program_name_of_every_live_process() -> None:
    """Proc.exe_name (string ops, for speed) names what pathlib names, on this host's processes."""
    from pathlib import PurePosixPath

    from rootless_doctor.host.system import processes
    from rootless_doctor.model import HostPaths

    # Processes of this test's own, by path and by bare name, so the comparison never rests on
    # whatever else happens to run (a quiet CI machine has fewer than ten processes). They are
    # grandchildren: processes() leaves out this process's own children (the check's commands).
    shell = subprocess.Popen(
        ["sh", "-c", "/bin/sleep 30 & sleep 31 & wait"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            procs = [p for p in processes(HostPaths(uid=os.geteuid())) if p.cmdline]
            mine = [p for p in procs if p.ppid == shell.pid]
            if len(mine) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    assert sorted(p.exe_name for p in mine) == ["sleep", "sleep"], procs
    assert [p.exe_name for p in procs] == [PurePosixPath(p.cmdline[0]).name for p in procs]


def _read_as(u: stack.User, pids: list[int]) -> dict[str, Any]:
    """host.containers.read_interfaces(pids) run as ``u`` with the tool under test's Python."""
    prefix, extra = rdtool.argv(u)
    python = str(Path(prefix[0]).with_name("python")) if len(prefix) == 1 else prefix[0]
    script = (
        "import json, sys\n"
        "from rootless_doctor.host.containers import read_interfaces\n"
        "got = read_interfaces([int(a) for a in sys.argv[1:]])\n"
        "print(json.dumps({p: [[i.name, list(i.addresses)] for i in v[0]] if v[0] is not None\n"
        "                  else v[1] for p, v in got.items()}))\n"
    )
    cp = stack.run_as(u, [python, "-c", script, *map(str, pids)], env=stack.user_env(u, **extra))
    assert cp.returncode == 0, cp.stderr
    answers: dict[str, Any] = json.loads(cp.stdout)
    return answers


@pytest.mark.realstack
def test_two_user_namespaces_are_both_read(su: stack.User) -> None:
    """A standalone RootlessKit's child lives in a user namespace of its own, next to Podman's:
    the first helper answers one, a second helper the other; both equal nsenter + ip."""
    with (
        _containers(su, [("rdreads-two", [], "eth0")]),
        stack.rootlesskit(su) as rk,
    ):
        podman_pid = int(
            stack._check(stack.podman(su, "inspect", "-f", "{{.State.Pid}}", "rdreads-two"), "")
        )
        child = int(su.host_path(f"{rk.state_dir}/child_pid").read_text().strip())
        got = _read_as(su, [podman_pid, child])
        for pid in (podman_pid, child):
            assert [tuple(x) for x in got[str(pid)]] == _reference(su, pid), got
