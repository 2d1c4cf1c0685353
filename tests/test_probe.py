"""probe: pure verdict and disagreement logic on built results; the real probe on the real stack.

Real-stack tests (``stack.require()``: skip on a developer machine without the stack, fail in CI)
run the tool as the unprivileged stack user, with ``--source 10.200.0.1``: the host side of the
veth pair :func:`stack.client_netns` made. They assert the observed ADDRESS equals what an
independent server of the same setup saw (``stack.ask_bound`` from the same source), and that
nothing of the probe remains afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import rdtool
import stack

from rootless_doctor import host, probe
from rootless_doctor import knowledge as kb
from rootless_doctor.checks import probe as findings
from rootless_doctor.model import EngineReport, ProbeResult, Report

REPO = Path(__file__).resolve().parent.parent
SRC = stack.HOST_ADDR  # 10.200.0.1: made by the test, never the machine's own address

# --------------------------------------------------------------------------------------------
# pure parts


def _r(**kw: object) -> ProbeResult:
    base: dict[str, object] = {"engine": "docker", "ran": True, "source": "10.200.0.1"}
    base.update(kw)
    return ProbeResult(**base)  # type: ignore[arg-type]


def test_verdict_words_and_exit_codes() -> None:
    kept = _r(observed="10.200.0.1", preserved=True)
    lost = _r(observed="127.0.0.1", preserved=False)
    broken = _r(ran=False, error="could not run: x")
    assert [findings.verdict_word(x) for x in (kept, lost, broken)] == [
        "preserved",
        "lost",
        "could not run",
    ]
    assert findings.exit_code([kept]) == 0
    assert findings.exit_code([kept, lost]) == 1
    assert findings.exit_code([lost, broken]) == 1  # a definite loss outranks "could not run"
    assert findings.exit_code([kept, broken]) == 2
    assert findings.exit_code([]) == 2


def test_disagreement_configured_but_lost_says_restart() -> None:
    r = _r(observed="127.0.0.1", preserved=False, expected=True)
    f = findings.disagreement(r)
    assert f is not None
    assert f.status == "fail" and f.id == "PROBE-DOCKER-DISAGREES"
    assert "still arrives as 127.0.0.1" in f.detail and "builtin port driver" in f.detail
    assert "systemctl --user restart docker" in f.remedy
    assert findings.agrees(r) is False
    assert [c.id for c in findings.as_checks(r)] == ["PROBE-DOCKER", "PROBE-DOCKER-DISAGREES"]


def test_disagreement_podman_and_rootlesskit_remedies() -> None:
    p = findings.disagreement(
        _r(engine="podman", observed="10.0.2.100", preserved=False, expected=True)
    )
    assert p is not None and "containers.conf" in p.remedy and "rootlessport" in p.detail
    k = findings.disagreement(
        _r(engine="rootlesskit", observed="127.0.0.1", preserved=False, expected=True)
    )
    assert k is not None and "--port-driver=slirp4netns" in k.remedy


def test_disagreement_kept_although_expected_lost_is_a_warning() -> None:
    f = findings.disagreement(_r(observed="10.200.0.1", preserved=True, expected=False))
    assert f is not None and f.status == "warn"
    assert "arrived as 10.200.0.1" in f.detail


@pytest.mark.parametrize(
    "r",
    [
        _r(observed="10.200.0.1", preserved=True, expected=True),
        _r(observed="127.0.0.1", preserved=False, expected=False),
        _r(observed="127.0.0.1", preserved=False, expected=None),
        _r(ran=False, error="could not run: x", expected=True),
    ],
)
def test_no_disagreement(r: ProbeResult) -> None:
    assert findings.disagreement(r) is None


def test_as_checks_statuses() -> None:
    assert findings.as_checks(_r(observed="10.200.0.1", preserved=True))[0].status == "ok"
    lost = findings.as_checks(_r(observed="10.0.2.100", preserved=False))[0]
    assert lost.status == "fail" and "rootlessport" in lost.detail
    broken = findings.as_checks(_r(ran=False, error="could not run: no non-loopback address"))
    assert broken[0].status == "unknown" and "no non-loopback" in broken[0].detail


def test_explain_known_addresses() -> None:
    assert "builtin" in kb.explain_seen("127.0.0.1")
    assert "rootlessport" in kb.explain_seen("10.0.2.100")
    assert "Docker bridge gateway" in kb.explain_seen("172.17.0.1")
    assert "bridge network" in kb.explain_seen("10.89.0.7")
    assert kb.explain_seen("10.200.0.1") == ""


def test_expected_from_report_per_rootlesskit_instance() -> None:
    def eng(name: str, kept: bool | None) -> EngineReport:
        return EngineReport(
            engine=name,  # type: ignore[arg-type]
            rootless=True,
            version=None,
            rootlesskit_version=None,
            network_driver=None,
            port_driver=None,
            source_ip_preserved=kept,
            reason="",
        )

    rep = Report(
        engines=(eng("docker", False), eng("rootlesskit", False), eng("rootlesskit", True)),
        checks=(),
    )
    assert findings.expected_from(rep, "docker") is False
    assert findings.expected_from(rep, "rootlesskit", 1) is True
    assert findings.expected_from(rep, "podman") is None
    assert findings.expected_from(None, "docker") is None


LO = [("lo", "127.0.0.1"), ("lo", "::1")]
HOST = [*LO, ("eth0", "fe80::1"), ("eth0", "2001:db8::5"), ("rdv0", "10.200.0.1")]


def test_choose_source() -> None:
    assert probe.choose_source(None, HOST) == "10.200.0.1"  # IPv4 first, never link-local
    assert probe.choose_source(None, [*LO, ("eth0", "2001:db8::5")]) == "2001:db8::5"
    assert probe.choose_source("10.200.0.1", HOST) == "10.200.0.1"
    with pytest.raises(probe.CouldNotRun, match="no non-loopback address"):
        probe.choose_source(None, [*LO, ("eth0", "fe80::1")])
    with pytest.raises(probe.CouldNotRun, match="loopback"):
        probe.choose_source("127.0.0.1", HOST)
    with pytest.raises(probe.CouldNotRun, match="not an address of this host"):
        probe.choose_source("10.9.9.9", HOST)
    with pytest.raises(probe.CouldNotRun, match="not an IP address"):
        probe.choose_source("eth0", HOST)


def test_probe_without_non_loopback_address_could_not_run(tmp_path: Path) -> None:
    from rootless_doctor.model import HostPaths

    r = probe.probe(
        "podman", image=None, port=None, source=None, paths=HostPaths(root=tmp_path),
        addresses=LO, expected=False,
    )  # fmt: skip
    assert r.ran is False and r.preserved is None
    assert r.error.startswith("could not run: no non-loopback address")
    assert findings.exit_code([r]) == 2


def test_pick_port_stays_below_the_ephemeral_range() -> None:
    # pasta's automatic forwarding (RootlessKit implicit, passt >= 2026_05_07) skips the range;
    # rootless engines cannot bind below ip_unprivileged_port_start.
    seen = {probe.pick_port((32768, 60999), 1024) for _ in range(200)}
    assert all(16384 <= p <= 32767 for p in seen) and len(seen) > 100
    assert {probe.pick_port((2000, 60999), 1500) for _ in range(50)} <= set(range(1500, 2000))
    taken = {31000}
    port = probe.pick_port((31001, 60999), 30998, free=lambda p: p not in taken, tries=500)
    assert port in (30998, 30999)
    with pytest.raises(probe.CouldNotRun, match="pass --port"):
        probe.pick_port((1024, 60999), 1024)
    with pytest.raises(probe.CouldNotRun, match="no free port"):
        probe.pick_port(None, None, free=lambda p: False, tries=5)


def test_pick_port_checks_what_listens() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert probe.port_is_free(busy) is False
    assert probe.port_is_free(busy) is True


def test_ask_gives_up_fast_on_a_closed_port_and_says_why() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    hint = probe.in_range_hint(55377, (32768, 60999))
    assert "ip_local_port_range (32768-60999)" in hint and "below 32768" in hint
    assert probe.in_range_hint(29149, (32768, 60999)) == ""
    t0 = time.monotonic()
    with pytest.raises(probe.CouldNotRun, match=r"refused every connection for 0\.5 s") as err:
        probe._ask("127.0.0.1", closed, t0 + 20, lambda: None, hint, refused_grace=0.5)
    assert time.monotonic() - t0 < 5 and "ip_local_port_range" in str(err.value)
    # A listener that went away is named as such, not as a closed path.
    with pytest.raises(probe.CouldNotRun, match="listener stopped"):
        probe._ask("127.0.0.1", closed, t0 + 20, lambda: "container x is exited", refused_grace=0.3)


def test_ask_names_a_forwarder_that_reaches_nothing_and_a_path_that_drops() -> None:
    """No answer within answer_grace ends the probe, named after what the connections got, well
    before the overall deadline: a port that accepts and closes, one that accepts and holds the
    connection (a listener that never accepts: the connection waits in its backlog), and one
    whose connection requests are dropped (a full accept queue: the kernel drops the SYN)."""
    import contextlib
    import socket
    import threading

    def ask(port: int) -> str:
        t0 = time.monotonic()
        with pytest.raises(probe.CouldNotRun) as err:
            probe._ask("127.0.0.1", port, t0 + 20, lambda: None, answer_grace=1)
        assert time.monotonic() - t0 < 2.5
        return str(err.value)

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(64)
        stop = threading.Event()

        def close_each() -> None:
            srv.settimeout(0.05)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    srv.accept()[0].close()

        t = threading.Thread(target=close_each, daemon=True)
        t.start()
        try:
            assert "accepted connections but the listener's answer never came" in ask(
                srv.getsockname()[1]
            )
        finally:
            stop.set()
            t.join()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        assert "no answer in 0.5 s" in ask(silent.getsockname()[1])
    with contextlib.ExitStack() as held, socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        for _ in range(3):  # fill the accept queue (backlog 0 holds one)
            c = held.enter_context(socket.socket())
            c.setblocking(False)
            c.connect_ex(full.getsockname())
        time.sleep(0.1)
        msg = ask(full.getsockname()[1])
        assert "timed out" in msg and "drops the traffic" in msg, msg


def test_why_a_command_failed_is_the_reason_not_the_help_pointer() -> None:
    # docker 20.10's stderr for `docker run --pull=never` of a missing image (bench/probe.py
    # --fail-cases, host): the reason is above the "See ... --help" line.
    from rootless_doctor.model import CmdOutput

    err = (
        "docker: Error response from daemon: No such image: "
        "localhost/rd-bench-no-such-image:latest.\n"
        "See 'docker run --help'.\n"
    )
    out = CmdOutput(argv=("docker", "run"), code=125, stderr=err)
    assert probe.failure_line(out, "docker run") == (
        "`docker run` exited 125: docker: Error response from daemon: No such image: "
        "localhost/rd-bench-no-such-image:latest."
    )
    podman = CmdOutput(argv=("podman", "run"), code=125, stderr="Error: x: image not known\n")
    assert (
        probe.failure_line(podman, "podman run")
        == "`podman run` exited 125: Error: x: image not known"
    )


def test_docker_import_stream_errors() -> None:
    # POST /images/create?fromSrc=- answers 200 and a progress stream; a failure is a line with
    # "error" (Docker Engine API, ImageCreate).
    assert probe._stream_error('{"status":"sha256:3158c9bc"}\n') == ""
    bad = '{"status":"Importing"}\n{"errorDetail":{"message":"x"},"error":"archive/tar: invalid"}\n'
    assert probe._stream_error(bad) == "archive/tar: invalid"
    assert probe._stream_error("not json\n") == ""


def test_port_listening_reads_this_namespace() -> None:
    import socket

    from rootless_doctor import host

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert host.port_listening(port) is False
        s.listen()
        assert host.port_listening(port) is True


def test_docker_removal_without_a_daemon_is_nothing_to_undo(tmp_path: Path) -> None:
    """The undo of a container or image on a daemon whose socket is gone (engine not running)
    is not a cleanup error; one on a podman CLI stays the CLI."""
    env = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}
    undo = probe.Undo()
    undo.push("remove container c", probe._remover("/usr/bin/docker", env, "containers", "c"))
    undo.push("remove image i", probe._remover("/usr/bin/docker", env, "images", "i:1"))
    undo.run()
    assert undo.errors == []
    assert probe._docker_socket("/usr/bin/podman", env) is None
    assert probe._docker_socket("/usr/bin/docker", {"DOCKER_HOST": "tcp://h:2375"}) is None


def test_pasta_map_guest_addr_counts_as_kept() -> None:
    # Measured on Debian sid (Podman 5.8.6, passt 2026-10-02): a client bound to the host's
    # primary address is seen as 169.254.1.2; one bound to another host address as itself.
    from rootless_doctor import knowledge as kb

    assert kb.probe_kept("169.254.1.2", "192.0.2.2") is True
    assert kb.probe_kept("10.200.0.1", "10.200.0.1") is True
    assert kb.probe_kept("10.0.2.100", "10.200.0.1") is False
    r = _r(engine="podman", observed="169.254.1.2", preserved=True, used="podman run")
    (main,) = findings.as_checks(r)
    assert main.status == "ok" and "map-guest-addr" in main.detail
    assert "gvisor-tap-vsock" in kb.explain_seen("10.0.2.1")


def test_static_elf_detection() -> None:
    """host.static_busybox() picks the listener for --image: only a static ELF runs in any image."""
    assert not host.layout._static_elf(Path("/usr/bin/env").read_bytes()[:65536])
    assert not host.layout._static_elf(b"#!/bin/sh\n" + bytes(64))
    bb = Path(stack.BUSYBOX)
    if (
        bb.exists()
        and b"statically linked"
        in subprocess.run(["file", str(bb)], capture_output=True, check=False).stdout
    ):  # pragma: no cover - only where `file` and busybox-static are installed
        assert host.layout._static_elf(bb.read_bytes()[:65536])
        assert host.static_busybox() == str(bb)


# --------------------------------------------------------------------------------------------
# real stack: the tool as the unprivileged user


@pytest.fixture(scope="module")
def tool() -> Iterator[list[str]]:
    """argv prefix that runs ``rootless-doctor probe`` as the stack user (tests/rdtool.py)."""
    stack.require()
    u = stack.user()
    prefix, extra = rdtool.argv(u)
    yield ["env", *[f"{k}={v}" for k, v in extra.items()], *prefix, "probe"]
    # The probe's `podman run`, like any podman command, starts podman's pause process: it is
    # podman's, shared by all of the user's containers, not the probe's. Stop it here so the next
    # module starts with a clean user.
    stack.podman_reset(u)


def run_tool(
    tool: list[str], *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    u = stack.user()
    cp = stack.run_as(u, [*tool, "--source", SRC, "--json", *args], env=env, timeout=120)
    try:
        data = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"no JSON from the tool (exit {cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    return cp.returncode, data


def _probes(data: Mapping[str, object]) -> list[dict[str, object]]:
    assert data.get("schema_version") == 1
    probes = data["probes"]
    assert isinstance(probes, list)
    return probes


def _processes(u: stack.User) -> set[str]:
    """The user's processes and listening ports, less podman's shared pause process."""
    return {x for x in stack.leftovers(u) if "catatonit" not in x}


# Strings only the probe's own processes carry (its container name, its listener's code).
PROBE_MARKS = ("rd-probe", "s.listen(16)", "rootless_doctor", "rootless-doctor")


def _probe_leftovers(u: stack.User, before: set[str], used: object = "") -> list[str]:
    """What the probe left: new processes of the user, its port, rootfs dirs, its containers.

    In CI (tests run one after another) every new process counts. On a shared developer machine
    other sessions' stacks run as the same user, so there only processes marked as the probe's
    count. New processes are asked for up to 3 s: a short-lived command may overlap.
    """
    strict = os.environ.get("CI") == "true"

    def new() -> list[str]:
        found = sorted(_processes(u) - before)
        found = [x for x in found if not x.startswith("listening")]
        return found if strict else [x for x in found if any(m in x for m in PROBE_MARKS)]

    deadline = time.monotonic() + 3
    while (left := new()) and time.monotonic() < deadline:
        time.sleep(0.1)
    m = re.search(r"published port (\d+)", str(used))
    assert m or not used, f"no port in {used!r}"
    if m:
        listening = [x for x in stack.leftovers(u) if x.endswith(f" port {m.group(1)}")]
        left += listening
    left += [str(p) for p in Path("/tmp").glob("rd-probe-rootfs-*")]
    ps = stack.podman(u, "ps", "-a", "--filter", f"label={probe.LABEL}", "--format", "{{.Names}}")
    left += [f"podman container {n}" for n in ps.stdout.split()]
    return left


def _assert_addr(p: Mapping[str, object], independent: str, verdict: str) -> None:
    assert p["ran"] is True, json.dumps(p, indent=1)
    assert p["source"] == SRC
    assert p["observed"] == independent, p
    assert p["verdict"] == verdict, p


@pytest.mark.realstack
@pytest.mark.parametrize(
    ("port_driver", "expect_addr", "verdict", "code"),
    [("builtin", "127.0.0.1", "lost", 1), ("slirp4netns", SRC, "preserved", 0)],
)
def test_real_rootlesskit(
    tool: list[str], port_driver: str, expect_addr: str, verdict: str, code: int
) -> None:
    u = stack.user()
    with stack.client_netns(), stack.rootlesskit(u, port_driver=port_driver) as rk:
        independent = stack.ask_bound(SRC, SRC, rk.host_port)
        assert independent == expect_addr
        before = _processes(u)
        rc, data = run_tool(tool, "--engine", "rootlesskit")
        mine = [p for p in _probes(data) if rk.state_dir in str(p["used"])]
        assert len(mine) == 1, data
        _assert_addr(mine[0], independent, verdict)
        assert f"port driver {port_driver}" in str(mine[0]["used"])
        assert rc == code or len(_probes(data)) > 1  # other users' RootlessKits may also answer
        assert _probe_leftovers(u, before, mine[0]["used"]) == []
        ports = stack.run_as(u, ["rootlessctl", "--socket", rk.api_sock, "list-ports", "--json"])
        assert [json.loads(line)["spec"]["parentPort"] for line in ports.stdout.splitlines()] == [
            rk.host_port
        ], "the probe's port is still published"


PODMAN_CONF = """\
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
network_cmd_options = ["port_handler=slirp4netns"]
"""


@pytest.mark.realstack
@pytest.mark.parametrize(
    ("network", "conf", "verdict", "code"),
    [
        ("slirp4netns", None, "lost", 1),  # podman 4.3 default: slirp4netns + rootlessport
        ("slirp4netns:port_handler=slirp4netns", PODMAN_CONF, "preserved", 0),
    ],
)
def test_real_podman(
    tool: list[str],
    request: pytest.FixtureRequest,
    network: str,
    conf: str | None,
    verdict: str,
    code: int,
) -> None:
    u = stack.user()
    env = None
    if conf is not None:
        # The user's containers.conf with network_cmd_options, through CONTAINERS_CONF (podman
        # 4.3 has no CONTAINERS_CONF_OVERRIDE); the probe runs podman with engine defaults.
        conf_dir = Path(tempfile.mkdtemp(prefix="rd-probe-conf-"))  # the user must read it
        request.addfinalizer(lambda: shutil.rmtree(conf_dir, ignore_errors=True))
        conf_file = conf_dir / "containers.conf"
        conf_file.write_text(conf)
        os.chmod(conf_dir, 0o755)
        os.chmod(conf_file, 0o644)
        env = stack.user_env(u, CONTAINERS_CONF=str(conf_file))
    with stack.client_netns():
        with stack.podman_container(u, network=network, name="rdprobe-peer") as c:
            independent = stack.ask_bound(SRC, SRC, c.host_port)
        before = _processes(u)
        rc, data = run_tool(tool, "--engine", "podman", env=env)
        (p,) = _probes(data)
        _assert_addr(p, independent, verdict)
        assert "throwaway rootfs" in str(p["used"])
        assert rc == code
        assert _probe_leftovers(u, before, p["used"]) == []


@pytest.mark.realstack
def test_real_podman_with_image(tool: list[str]) -> None:
    """``--image``: a local image (never pulled) with the host's static busybox as listener."""
    u = stack.user()
    image = "localhost/rdprobe-image"
    made = stack.run_as(
        u, ["sh", "-c", f'tar -C "$1" -cf - . | podman import -q - {image}', "sh", stack.rootfs(u)]
    )
    assert made.returncode == 0, made.stderr
    try:
        with stack.client_netns():
            with stack.podman_container(u, name="rdprobe-peer") as c:
                independent = stack.ask_bound(SRC, SRC, c.host_port)
            before = _processes(u)
            rc, data = run_tool(tool, "--engine", "podman", "--image", image)
            (p,) = _probes(data)
            _assert_addr(p, independent, "lost")
            assert f"image {image}" in str(p["used"])
            assert rc == 1
            assert _probe_leftovers(u, before, p["used"]) == []
            assert stack.podman(u, "image", "exists", image).returncode == 0, "not the probe's"
    finally:
        stack.podman(u, "rmi", "-f", image)


@pytest.mark.realstack
@pytest.mark.parametrize(
    ("port_driver", "verdict", "code"), [("builtin", "lost", 1), ("slirp4netns", "preserved", 0)]
)
def test_real_docker(tool: list[str], port_driver: str, verdict: str, code: int) -> None:
    u = stack.user()
    with stack.client_netns(), stack.rootless_dockerd(u, port_driver=port_driver) as d:
        port = stack.free_port()
        d.run(port)
        independent = stack.ask_bound(SRC, SRC, port)
        d.remove_containers()
        images_before = sorted(d.docker("images", "-q", "--no-trunc").stdout.split())
        before = _processes(u)
        rc, data = run_tool(tool, "--engine", "docker", env=d.env)
        (p,) = _probes(data)
        _assert_addr(p, independent, verdict)
        assert "docker import" in str(p["used"])
        assert rc == code
        assert _probe_leftovers(u, before, p["used"]) == []
        assert d.docker("ps", "-aq").stdout.split() == []
        assert sorted(d.docker("images", "-q", "--no-trunc").stdout.split()) == images_before
        assert "rootless-doctor-probe" not in d.docker("images").stdout


@pytest.mark.realstack
@pytest.mark.parametrize(
    ("port_driver", "verdict"), [("builtin", "lost"), ("slirp4netns", "preserved")]
)
def test_real_docker_with_image(tool: list[str], port_driver: str, verdict: str) -> None:
    """``--image`` on rootless dockerd: the harness's ``local/rdrootfs`` (never pulled), the host's
    static busybox as listener; the probe removes its container and never the image it was given."""
    u = stack.user()
    image = stack.DOCKER_IMAGE
    with stack.client_netns(), stack.rootless_dockerd(u, port_driver=port_driver) as d:
        port = stack.free_port()
        d.run(port)
        independent = stack.ask_bound(SRC, SRC, port)
        d.remove_containers()
        image_id = d.docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        assert image_id, f"the harness did not import {image}"
        images_before = sorted(d.docker("images", "-q", "--no-trunc").stdout.split())
        before = _processes(u)
        rc, data = run_tool(tool, "--engine", "docker", "--image", image, env=d.env)
        (p,) = _probes(data)
        _assert_addr(p, independent, verdict)
        assert f"image {image}" in str(p["used"]) and "docker import" not in str(p["used"])
        assert rc == (0 if verdict == "preserved" else 1)
        assert p["expected"] is (verdict == "preserved"), p  # check's verdict was folded in
        assert _probe_leftovers(u, before, p["used"]) == []
        assert d.docker("ps", "-aq").stdout.split() == []
        assert sorted(d.docker("images", "-q", "--no-trunc").stdout.split()) == images_before
        after = d.docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        assert after == image_id, "the probe removed or replaced an image it did not make"


@pytest.mark.realstack
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_real_interrupt_cleans_up(tool: list[str], sig: signal.Signals) -> None:
    """A signal while ``podman run`` starts the listener: exit 128+N and nothing remains.

    The signal lands once the probe's rootfs exists, i.e. just before or during ``podman run``:
    the probe holds it until the run returns, then removes the container, rootfs and all.
    """
    u = stack.user()
    with stack.client_netns():
        before = _processes(u)
        old_dirs = set(Path("/tmp").glob("rd-probe-rootfs-*"))
        argv = [*tool, "--source", SRC, "--engine", "podman"]
        proc = stack.spawn_as(u, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                if set(Path("/tmp").glob("rd-probe-rootfs-*")) - old_dirs:  # this run's
                    break
                time.sleep(0.001)
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(
                    f"the probe ended before the signal (exit {proc.returncode}): {out!r} {err!r}"
                )
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 128 + sig, err.decode()
        assert b"interrupted" in err
        assert _probe_leftovers(u, before) == []
