"""host/ on fake hosts built from real captured files (tests/data, sources in SOURCES.md), plus
real-stack tests of container_interfaces() and gather() on this machine's rootless Podman.

A fake host is a directory: ``root/`` holds /etc, /proc, /run, /tmp, /usr/bin; ``home/`` the user's
home. CLIs found on the fake PATH are answered by ``Served`` with captured outputs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import sysconfig
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from rootless_doctor import host, parse
from rootless_doctor.model import CmdOutput, DoctorError, HostPaths

UID = 1001  # the captures were made as user rdtest, uid 1001, on Debian 12
USER = "rdtest"
RUN = f"/run/user/{UID}"


def data(rel: str) -> str:
    return (DATA / rel).read_text()


# --------------------------------------------------------------------------- fake host


class Served:
    """A runner answering argv (binary basename + args) with captured outputs; records calls."""

    def __init__(self, answers: Mapping[tuple[str, ...], CmdOutput | str] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def __call__(
        self, argv: Sequence[str], *, timeout: float = 5.0, env: Mapping[str, str] | None = None
    ) -> CmdOutput:
        key = (Path(argv[0]).name, *argv[1:])
        self.calls.append((key, dict(env or {})))
        answer = self.answers.get(key)
        if answer is None:
            return CmdOutput(argv=tuple(argv), code=1, stderr=f"not served: {key}")
        if isinstance(answer, str):
            return CmdOutput(argv=tuple(argv), code=0, stdout=answer)
        return answer

    def ran(self, *prefix: str) -> bool:
        return any(k[: len(prefix)] == prefix for k, _ in self.calls)


class FakeHost:
    def __init__(self, tmp: Path, **env: str) -> None:
        self.root = tmp / "root"
        self.home = tmp / "home" / USER
        for d in (self.root / "usr/bin", self.root / RUN.lstrip("/"), self.home, self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": "/usr/bin", **env}

    @property
    def paths(self) -> HostPaths:
        return HostPaths(
            root=self.root,
            home=self.home,
            uid=UID,
            user=USER,
            runtime_dir=Path(RUN),
            env=tuple(self.env.items()),
        )

    def file(self, path: str, text: str, mode: int | None = None) -> Path:
        """Write ``text`` at host path ``path`` (``~/`` = the user's home)."""
        p = self.home / path[2:] if path.startswith("~/") else self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            p.chmod(mode)
        return p

    def binary(self, name: str, script: str = "#!/bin/sh\nexit 99\n") -> Path:
        return self.file(f"/usr/bin/{name}", script, 0o755)

    def procs(self, capture: str, netns: Mapping[int, str] | None = None) -> None:
        """Fake /proc/PID/{cmdline,status} from a captured ``ps`` listing (parse.process_listing);
        ``netns`` maps a PID to the netns file its ``ns/net`` link points at."""
        for p in parse.process_listing(capture):
            d = self.root / "proc" / str(p.pid)
            d.mkdir(parents=True, exist_ok=True)
            (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in p.cmdline) + b"\0")
            (d / "status").write_text(
                f"Name:\tx\nPPid:\t{p.ppid}\nUid:\t{UID}\t{UID}\t{UID}\t{UID}\n"
            )
        for pid, ns in (netns or {}).items():
            target = self.root / ns.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
            (self.root / f"proc/{pid}/ns").mkdir(parents=True, exist_ok=True)
            (self.root / f"proc/{pid}/ns/net").symlink_to(target)


@pytest.fixture
def fake(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


@pytest.fixture
def short_fake() -> Iterator[FakeHost]:
    """A fake host under a short /tmp path, for tests that bind unix sockets in it."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rdh-"))
    yield FakeHost(d)
    shutil.rmtree(d, ignore_errors=True)


class ApiServer:
    """A unix-socket HTTP server answering every request with a captured RootlessKit body, so the
    real HTTP/1.0-over-api.sock client in host/rootlesskit.py is exercised."""

    def __init__(self, path: Path, body: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.requests: list[bytes] = []
        self.body = body.encode()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = b""
                while b"\r\n\r\n" not in req:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    req += chunk
                self.requests.append(req)
                head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(self.body) + self.body)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- run()


def test_run_missing_binary_is_data() -> None:
    out = host.run(["rd-no-such-binary-xyz", "--version"])
    assert out.error == "not installed" and out.code is None and not out.ok
    assert "not installed" in out.why()


def test_run_captures_output_and_code() -> None:
    out = host.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (out.code, out.stdout, out.stderr, out.error) == (3, "out\n", "err\n", "")


def test_run_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    out = host.run(["sh", "-c", script], timeout=0.3)
    assert time.monotonic() - start < 2.5
    assert out.error == "timed out after 0.3 s" and out.code is None
    child = int(pidfile.read_text())
    time.sleep(0.1)
    gone = not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()
    assert gone, "the grandchild of a timed-out command must be killed"


def test_default_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1/docker.sock")
    monkeypatch.setenv("CONTAINERS_CONF_OVERRIDE", "/x.conf")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/cfg")
    p = host.default_paths()
    assert p.root == Path("/") and p.uid == os.getuid()
    assert p.runtime_dir == Path(f"/run/user/{os.getuid()}")
    assert p.getenv("DOCKER_HOST") == "unix:///run/user/1/docker.sock"
    assert p.getenv("CONTAINERS_CONF_OVERRIDE") == "/x.conf"
    assert p.getenv("XDG_RUNTIME_DIR") is None
    assert p.config_dir == Path("/cfg")


# --------------------------------------------------------------------------- nothing installed


def test_no_engine_at_all(fake: FakeHost) -> None:
    runner = Served()
    facts = host.gather(fake.paths, runner=runner, cwd=fake.home)
    assert facts.docker is None and facts.podman is None and facts.rootlesskits == ()
    assert facts.tools["podman"].path is None and facts.tools["newuidmap"].path is None
    assert runner.calls == []  # nothing on PATH: nothing run
    assert facts.subuid is None and facts.dev_net_tun == "missing" and facts.compose is None


# --------------------------------------------------------------------------- prerequisites


def test_prerequisites_from_files(fake: FakeHost) -> None:
    # /etc/subuid as useradd writes it, one entry by name and one by UID (shadow subuid(5)).
    fake.file("/etc/subuid", f"other:100000:65536\n{USER}:165536:65536\n{UID}:300000:1000\n")
    fake.file("/etc/subgid", f"{USER}:165536:65536\n")
    fake.file("/proc/sys/user/max_user_namespaces", "96365\n")  # this machine's value
    fake.file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "1024\n")
    fake.file("/proc/sys/kernel/unprivileged_userns_clone", "1\n")  # Debian ≤ 10 kernels
    fake.file("/dev/net/tun", "", 0o666)  # as .ci/setup-stack.sh leaves it
    fake.file(f"/var/lib/systemd/linger/{USER}", "")
    fake.binary("newuidmap").chmod(0o4755)
    fake.binary("newgidmap")
    fake.binary("iptables")
    fake.binary("systemctl")
    runner = Served(
        {
            # `iptables --version` and `systemctl --user is-system-running` on this machine
            ("iptables", "--version"): "iptables v1.8.9 (nf_tables)\n",
            ("systemctl", "--user", "is-system-running"): CmdOutput(
                argv=("systemctl",),
                code=1,
                stderr="Failed to connect to bus: No medium found\n",
            ),
        }
    )
    facts = host.gather(fake.paths, runner=runner, cwd=fake.home)
    assert facts.subuid == ((165536, 65536), (300000, 1000))
    assert facts.subgid == ((165536, 65536),)
    assert facts.max_user_namespaces == 96365 and facts.unprivileged_port_start == 1024
    assert facts.userns_clone == 1 and facts.linger is True
    assert facts.dev_net_tun == "ok" and facts.firewall == "iptables-nft"
    assert facts.systemd_user is False
    root_owned = os.geteuid() == 0  # setuid counts only for a root-owned binary
    assert facts.tools["newuidmap"].setid == ("setuid" if root_owned else "neither")
    assert facts.tools["newgidmap"].setid == "neither"
    assert facts.tools["newuidmap"].path == "/usr/bin/newuidmap"


def test_firewall_legacy_and_nft_only(fake: FakeHost) -> None:
    fake.binary("iptables")
    runner = Served({("iptables", "--version"): "iptables v1.8.7 (legacy)\n"})
    assert host.gather(fake.paths, runner=runner, cwd=fake.home).firewall == "iptables-legacy"
    (fake.root / "usr/bin/iptables").unlink()
    fake.file("/usr/sbin/nft", "", 0o755)  # sbin is searched even when not on the user's PATH
    assert host.gather(fake.paths, runner=Served(), cwd=fake.home).firewall == "nftables"


def test_systemd_bus_socket_without_systemctl(fake: FakeHost) -> None:
    assert host.gather(fake.paths, runner=Served(), cwd=fake.home).systemd_user is False
    fake.file(f"{RUN}/bus", "")
    assert host.gather(fake.paths, runner=Served(), cwd=fake.home).systemd_user is True


# --------------------------------------------------------------------------- Podman


PODMAN_IDS = {
    "s4-default": "570bf123fa4374c7615f7188c9d6e4059bee60ee292e583c826dc439f3da60a3",
    "s4-handler": "53cda0dab10018f1e3370083a36df83cc0e6ea43e167d3d1ef4bc4d2038ec69f",
    "s4-explicit-rootlesskit": "a0b8998d0d5cb13bf99fa04a57549127ee79c277847f835e1c6bad1374a7fcbf",
}


def podman_host(fake: FakeHost, inspect: list[dict[str, object]] | None = None) -> Served:
    """Podman 4.3.1 rootless on Debian 12: three slirp4netns containers and one on a bridge network
    (captured together:
    ps/podman-4.3.1-debian12-rootless-4-containers-ps-eo.txt and podman-inspect/*)."""
    fake.binary("podman")
    if inspect is None:
        inspect = []
        for name in (*PODMAN_IDS, "bridge1"):
            inspect += json.loads(data(f"podman-inspect/podman-4.3.1-rootless-{name}.json"))
    ps_text = data("ps/podman-4.3.1-debian12-rootless-4-containers-ps-eo.txt")
    # ns/net links: each container's process and its rootlessport-child share the netns file
    # named by the container's SandboxKey (PIDs and paths from the same capture).
    fake.procs(
        ps_text,
        netns={
            15771: f"{RUN}/netns/netns-4f976ef2-dd0e-1eb6-f0b6-7ff671ef5059",  # s4-default
            15740: f"{RUN}/netns/netns-4f976ef2-dd0e-1eb6-f0b6-7ff671ef5059",
            15807: f"{RUN}/netns/netns-8f7a2f0c-d6f6-657a-8f74-a9d29db589cd",  # s4-handler
            15859: f"{RUN}/netns/netns-245ba6d4-1345-0d15-b6ed-2c029742929a",  # explicit
            15839: f"{RUN}/netns/netns-245ba6d4-1345-0d15-b6ed-2c029742929a",
        },
    )
    # The running containers are found from their conmon processes (`-c ID`), in process order.
    conmon_ids = re.findall(r"conmon .*?-c ([0-9a-f]{64})", ps_text)
    return Served(
        {
            ("podman", "info", "--format", "json"): data(
                "podman-info/podman-4.3.1-rootless-debian12.json"
            ),
            ("podman", "inspect", *conmon_ids): json.dumps(inspect),
        }
    )


def test_podman_containers_and_port_handlers(fake: FakeHost) -> None:
    runner = podman_host(fake)
    facts = host.gather(fake.paths, runner=runner, cwd=fake.home)
    p = facts.podman
    assert p is not None and p.version == "4.3.1" and p.rootless is True and p.notes == ()
    by_name = {c.name: c for c in p.containers}
    assert set(by_name) == {*PODMAN_IDS, "bridge1"}
    assert by_name["bridge1"].port_handler == "rootlessport"  # a rootless bridge network
    assert not runner.ran("podman", "ps")  # the conmon processes named the running containers
    assert by_name["s4-default"].port_handler == "rootlesskit"  # rootlessport-child in its netns
    assert by_name["s4-handler"].port_handler == "slirp4netns"  # from CreateCommand
    assert by_name["s4-explicit-rootlesskit"].port_handler == "rootlesskit"
    assert by_name["s4-default"].interfaces is None  # a fake root's PIDs are never entered
    assert facts.tools["podman"].version == "4.3.1"


def test_podman_port_handler_from_processes_beats_the_default_guess(fake: FakeHost) -> None:
    # A container created without port_handler= while containers.conf said
    # network_cmd_options=["port_handler=slirp4netns"]: its slirp4netns got --api-socket
    # <tmpdir>/<id>.net. Built from the s4-handler capture with the option removed from
    # CreateCommand (the processes are the captured ones).
    c = json.loads(data("podman-inspect/podman-4.3.1-rootless-s4-handler.json"))[0]
    c["Config"]["CreateCommand"] = [
        "slirp4netns" if a.startswith("slirp4netns:") else a for a in c["Config"]["CreateCommand"]
    ]
    runner = podman_host(fake, [c])
    facts = host.gather(fake.paths, runner=runner, cwd=fake.home)
    assert facts.podman is not None
    (only,) = facts.podman.containers
    assert only.network_mode == "slirp4netns" and only.port_handler == "slirp4netns"


def test_podman_info_failure_is_a_note(fake: FakeHost) -> None:
    fake.binary("podman")
    runner = Served(
        {
            ("podman", "info", "--format", "json"): CmdOutput(
                argv=("podman", "info"),
                code=125,
                stderr='Error: cannot set up namespace using "/usr/bin/newuidmap": exit status 1\n',
            ),
            ("podman", "ps", "-q", "--no-trunc"): "",
        }
    )
    p = host.gather(fake.paths, runner=runner, cwd=fake.home).podman
    assert p is not None and p.version is None and p.cli == "/usr/bin/podman"
    assert any("exited 125" in n and "newuidmap" in n for n in p.notes)


def test_containers_conf_load_order(fake: FakeHost) -> None:
    usr = data("containers-conf/containers.conf-podman-4.3.1-debian12-usr-share.conf")
    fake.file("/usr/share/containers/containers.conf", usr)
    fake.file(
        "/etc/containers/containers.conf",
        '[network]\ndefault_rootless_network_cmd = "slirp4netns"\n',
    )
    fake.file(
        "/etc/containers/containers.conf.d/20-b.conf",
        '[engine]\nnetwork_cmd_options = ["mtu=1500"]\n',
    )
    fake.file(
        "/etc/containers/containers.conf.d/10-a.conf",
        '[engine]\nnetwork_cmd_options = ["mtu=9000"]\n',
    )
    fake.file("/etc/containers/containers.conf.d/notes.txt", "not a .conf: ignored\n")
    fake.file("/etc/containers/containers.rootless.conf", '[engine]\nevents_logger = "file"\n')
    fake.file(
        "/etc/containers/containers.rootless.conf.d/30.conf",
        '[containers]\nnetns = "slirp4netns"\n',
    )
    fake.file(
        f"/etc/containers/containers.rootless.conf.d/{UID}/40.conf", '[engine]\nruntime = "runc"\n'
    )
    fake.file(
        "/etc/containers/containers.rootless.conf.d/4242/40.conf", '[engine]\nruntime = "crun"\n'
    )
    # The test user's real ~/.config/containers/containers.conf (.ci/setup-stack.sh)
    fake.file(
        "~/.config/containers/containers.conf",
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
    )
    fake.file(
        "~/.config/containers/containers.conf.d/50-handler.conf",
        '[engine]\nnetwork_cmd_options = ["port_handler=slirp4netns"]\n',
    )
    paths = fake.paths
    files = [str(f) for f in host.containers_conf_files(paths)]
    r, h = str(fake.root), str(fake.home)
    assert files == [
        f"{r}/usr/share/containers/containers.conf",
        f"{r}/etc/containers/containers.conf",
        f"{r}/etc/containers/containers.conf.d/10-a.conf",
        f"{r}/etc/containers/containers.conf.d/20-b.conf",
        f"{r}/etc/containers/containers.rootless.conf",
        f"{r}/etc/containers/containers.rootless.conf.d/30.conf",
        f"{r}/etc/containers/containers.rootless.conf.d/{UID}/40.conf",
        f"{h}/.config/containers/containers.conf",
        f"{h}/.config/containers/containers.conf.d/50-handler.conf",
    ]
    runner = podman_host(fake, [])
    p = host.gather(paths, runner=runner, cwd=fake.home).podman
    assert p is not None and list(p.conf_files) == files
    assert p.conf["engine.network_cmd_options"] == ["port_handler=slirp4netns"]
    assert p.conf["engine.runtime"] == "runc"

    # CONTAINERS_CONF replaces every file; CONTAINERS_CONF_OVERRIDE is read last.
    fake.file("/srv/only.conf", '[engine]\nruntime = "crun"\n')
    fake.file("/srv/override.conf", '[engine]\nnetwork_cmd_options = ["mtu=65520"]\n')
    fake.env.update(CONTAINERS_CONF="/srv/only.conf", CONTAINERS_CONF_OVERRIDE="/srv/override.conf")
    p = host.gather(fake.paths, runner=runner, cwd=fake.home).podman
    assert p is not None
    assert list(p.conf_files) == [f"{r}/srv/only.conf", f"{r}/srv/override.conf"]
    assert p.conf["engine.runtime"] == "crun"
    assert p.conf["engine.network_cmd_options"] == ["mtu=65520"]


# --------------------------------------------------------------------------- Docker


UNIT_20_10 = "systemd/docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"
DMS_OVERRIDE = "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"


def test_docker_unit_and_dropins_in_systemd_order(fake: FakeHost) -> None:
    fake.file("~/.config/systemd/user/docker.service", data(UNIT_20_10))
    # The docker-mailserver recipe drop-in (NET + PORT_DRIVER=slirp4netns)...
    fake.file("~/.config/systemd/user/docker.service.d/override.conf", data(DMS_OVERRIDE))
    # ...masks the same file name in /etc, and a later name overrides one variable.
    fake.file(
        "/etc/systemd/user/docker.service.d/override.conf",
        '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit"\n',
    )
    fake.file(
        "/etc/systemd/user/docker.service.d/zz-mtu.conf",
        '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500"\n',
    )
    fake.file(
        "~/.config/systemd/user/docker.service.d/10-first.conf",
        '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin"\n',
    )
    fake.file("~/.config/systemd/user/docker.service.d/README", "ignored: not .conf\n")
    d = host.gather(fake.paths, runner=Served(), cwd=fake.home).docker
    assert d is not None and d.cli is None
    h, r = str(fake.home), str(fake.root)
    assert list(d.unit_files) == [
        f"{h}/.config/systemd/user/docker.service",
        f"{h}/.config/systemd/user/docker.service.d/10-first.conf",
        f"{h}/.config/systemd/user/docker.service.d/override.conf",
        f"{r}/etc/systemd/user/docker.service.d/zz-mtu.conf",
    ]
    assert d.configured_net is None  # the masked /etc override.conf (vpnkit) is not read
    assert d.configured_port_driver == "slirp4netns"  # override.conf sorts after 10-first.conf
    assert d.configured_env["DOCKERD_ROOTLESS_ROOTLESSKIT_MTU"] == "1500"
    assert any("docker CLI not installed" in n for n in d.notes)


def test_docker_configured_differs_from_running(short_fake: FakeHost) -> None:
    """Drop-in says slirp4netns, but the daemon was not restarted: it still runs builtin.

    Process tree, state dir listing and /v1/info all captured from docker.io 20.10.24 +
    rootlesskit 1.1.0 started with PORT_DRIVER=builtin.
    """
    fake = short_fake
    fake.file("~/.config/systemd/user/docker.service", data(UNIT_20_10))
    fake.file("~/.config/systemd/user/docker.service.d/override.conf", data(DMS_OVERRIDE))
    fake.file(
        "~/.config/docker/daemon.json",
        data("daemon-json/rdtest-captured-rootless-userland-proxy-false.json"),
    )
    fake.procs(data("ps/docker-20.10.24-debian12-rootless-builtin-with-published-port-ps-eo.txt"))
    info = data("rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-builtin-v1-info.json")
    state = json.loads(info)["stateDir"]  # /tmp/rootlesskit2750343654, as in the listing
    fake.file(f"{state}/child_pid", "9499")  # the /proc/self/exe child of rootlesskit 9487
    fake.file(f"{state}/.bp.sock", "")
    fake.file("/tmp/rootlesskit1111/child_pid", "1")  # another, stale daemon's dir
    server = ApiServer(fake.root / state.lstrip("/") / "api.sock", info)
    fake.binary("docker")
    fake.file(f"{RUN}/docker.sock", "")
    runner = Served(
        {
            ("docker", "version", "--format", "{{json .}}"): data(
                "docker-version/docker-20.10.24-debian12-rootless-client28.2.2.json"
            ),
            ("docker", "info", "--format", "{{json .}}"): data(
                "docker-info/docker-20.10.24-debian12-rootless.json"
            ),
            ("docker", "ps", "-q", "--no-trunc"): "",
        }
    )
    try:
        d = host.gather(fake.paths, runner=runner, cwd=fake.home).docker
    finally:
        server.close()
    assert d is not None and d.reachable is True and d.rootless is True
    assert d.version == "20.10.24+dfsg1"
    assert d.configured_port_driver == "slirp4netns"
    assert d.running is not None
    assert d.running.port_driver == "builtin" and d.running.network_driver == "slirp4netns"
    assert d.running.version == "1.1.0" and d.running.pid == 9487
    assert d.running.state_dir == state
    assert "api.sock" in d.running.source
    assert server.requests and server.requests[0].startswith(b"GET /v1/info HTTP/1.0\r\n")
    assert b"Host: rootlesskit" in server.requests[0]
    assert d.userland_proxy is False
    # DOCKER_HOST was unset and the rootless socket exists: the CLI was pointed at it.
    envs = [env for key, env in runner.calls if key[0] == "docker" and key[1] != "--version"]
    assert envs and all(e["DOCKER_HOST"] == f"unix://{RUN}/docker.sock" for e in envs)


def test_docker_25_state_dir_in_runtime_dir(fake: FakeHost) -> None:
    """Docker ≥ 25 keeps RootlessKit's state in $XDG_RUNTIME_DIR/dockerd-rootless; the socket file
    present tells the running port driver even when api.sock cannot be read."""
    fake.file(f"{RUN}/dockerd-rootless/.s4nn.sock", "")
    fake.file(f"{RUN}/dockerd-rootless/api.sock", "")  # a plain file here: not a socket
    fake.file(f"{RUN}/docker.sock", "")  # the daemon's socket: the CLI is asked
    fake.binary("docker")
    runner = Served(
        {
            ("docker", "version", "--format", "{{json .}}"): CmdOutput(
                argv=("docker",),
                code=0,
                stdout=data(
                    "docker-version/docker-25.0.1-rootless-rootlesskit-2.0.0-slirp4netns-portdriver-slirp4netns.txt"
                ),
            ),
        }
    )
    d = host.gather(fake.paths, runner=runner, cwd=fake.home).docker
    assert d is not None and d.running is not None
    assert d.running.port_driver == "slirp4netns"
    assert d.running.state_dir == f"{RUN}/dockerd-rootless"
    assert d.running.version == "2.0.0"  # from docker version's rootlesskit component
    assert any("not a socket" in n for n in d.notes)


def test_docker_unreachable_daemon(fake: FakeHost) -> None:
    fake.file("/var/run/docker.sock", "")  # left behind: nothing listens on it
    fake.binary("docker")
    refused = CmdOutput(
        argv=("docker",),
        code=1,
        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\n",
    )
    runner = Served(
        {
            ("docker", "version", "--format", "{{json .}}"): refused,
            ("docker", "info", "--format", "{{json .}}"): refused,
            ("docker", "ps", "-q", "--no-trunc"): refused,
        }
    )
    d = host.gather(fake.paths, runner=runner, cwd=fake.home).docker
    assert d is not None and d.reachable is False and d.running is None
    assert any("Cannot connect" in n for n in d.notes)


def test_no_docker_socket_means_not_running_and_the_cli_is_not_run(fake: FakeHost) -> None:
    """No socket where the docker CLI would dial (rootful default, no rootless one, no
    DOCKER_HOST): the daemon is not running; the CLI is not started for nothing."""
    fake.binary("docker")
    runner = Served({})
    d = host.gather(fake.paths, runner=runner, cwd=fake.home).docker
    assert d is not None and d.cli == "/usr/bin/docker"
    assert d.reachable is False
    assert any("no Docker daemon socket at /var/run/docker.sock" in n for n in d.notes)
    assert not runner.ran("docker")


def test_hung_clis_become_notes_within_the_timeout(fake: FakeHost) -> None:
    """Real run(): podman and docker on the fake PATH never answer; they run side by side, so the
    whole gather takes about one timeout."""
    hang = "#!/bin/sh\nexec sleep 30\n"
    for name in ("podman", "docker", "slirp4netns", "rootlesskit"):
        fake.binary(name, hang)
    fake.file("/var/run/docker.sock", "")
    start = time.monotonic()
    facts = host.gather(fake.paths, timeout=0.5, cwd=fake.home)
    elapsed = time.monotonic() - start
    assert elapsed < 2.5, f"gather took {elapsed:.2f} s with four hung CLIs at 0.5 s"
    assert facts.podman is not None and facts.docker is not None
    assert any("timed out after 0.5 s" in n for n in facts.podman.notes)
    assert any("timed out after 0.5 s" in n for n in facts.docker.notes)
    assert facts.docker.reachable is None  # unknown, not "down"
    assert any("slirp4netns --version" in n and "timed out" in n for n in facts.notes)


# --------------------------------------------------------------------------- standalone RootlessKit


def test_standalone_rootlesskits(short_fake: FakeHost) -> None:
    """Two standalone rootlesskit 1.1.0 instances captured on this machine: one with a state dir
    we serve /v1/info from, one (builtin) whose state dir only has .bp.sock."""
    fake = short_fake
    fake.procs(data("ps/rootlesskit-1.1.0-debian12-standalone-two-instances-ps-o.txt"))
    info = data(
        "rootlesskit-api/rootlesskit-1.1.0-debian12-standalone-portdriver-slirp4netns-v1-info.json"
    )
    server = ApiServer(fake.root / "tmp/rd-rootlesskit-zdr4mnw1/state/api.sock", info)
    fake.file("/tmp/rdp-rk.bqny/state/.bp.sock", "")
    try:
        facts = host.gather(fake.paths, runner=Served(), cwd=fake.home)
    finally:
        server.close()
    assert facts.docker is None
    by_pid = {rk.pid: rk for rk in facts.rootlesskits}
    assert set(by_pid) == {16900, 31682}  # the /proc/self/exe children are not counted
    assert by_pid[31682].port_driver == "slirp4netns" and by_pid[31682].version == "1.1.0"
    assert by_pid[31682].child == "python3"
    assert by_pid[16900].port_driver == "builtin" and by_pid[16900].child == "sleep"
    assert by_pid[16900].state_dir == "/tmp/rdp-rk.bqny/state"


# --------------------------------------------------------------------------- compose


def test_compose_found_in_cwd(fake: FakeHost, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(data("compose/docker-mailserver-compose.yaml"))
    facts = host.gather(fake.paths, runner=Served(), cwd=project)
    assert facts.compose is not None and facts.compose.path == str(project / "compose.yaml")
    assert facts.compose.services
    explicit = DATA / "compose/docker-mailserver-docs-podman-rootless-high-ports.yaml"
    facts = host.gather(fake.paths, runner=Served(), compose_file=explicit, cwd=project)
    assert facts.compose is not None and facts.compose.path == str(explicit)
    # A file named on the command line that cannot be read is bad input: one line, exit 2.
    missing = project / "nope.yaml"
    with pytest.raises(DoctorError, match=rf"^{missing}: not readable"):
        host.gather(fake.paths, runner=Served(), compose_file=missing, cwd=project)
    # The one found in the working directory, broken: the COMPOSE-FILE check reports it.
    (project / "compose.yaml").write_text("services:\n  a:\n   image: x\n  ports: [1\n")
    facts = host.gather(fake.paths, runner=Served(), cwd=project)
    assert facts.compose is not None and facts.compose.services == ()
    assert facts.compose.error.startswith("not JSON or YAML")


# --------------------------------------------------------------------------- real stack

# The venv's python resolves to a binary under /root, which the stack user cannot run: run the
# system python3 (same 3.11) with this checkout and the venv's site-packages on PYTHONPATH.
USER_PYTHON = "/usr/bin/python3"


def _user_env(u: Any) -> dict[str, str]:
    import stack

    repo = str(Path(host.__file__).parents[2])
    return stack.user_env(u, PYTHONPATH=f"{repo}:{sysconfig.get_paths()['purelib']}")


def _owner_interfaces(u: Any, pid: int) -> tuple[list[tuple[str, list[str]]] | None, str]:
    import stack

    script = (
        "import json, sys\n"
        "from rootless_doctor import host\n"
        "ifs, why = host.container_interfaces(int(sys.argv[1]))\n"
        "rows = [[i.name, list(i.addresses)] for i in ifs] if ifs is not None else None\n"
        "print(json.dumps(rows))\n"
        "print(why, file=sys.stderr)\n"
    )
    cp = stack.run_as(u, [USER_PYTHON, "-c", script, str(pid)], env=_user_env(u), timeout=30)
    assert cp.returncode == 0, cp.stderr
    owned: list[tuple[str, list[str]]] | None = json.loads(cp.stdout)
    return owned, cp.stderr.strip()


@pytest.mark.realstack
def test_container_interfaces_real_podman_slirp4netns() -> None:
    import stack

    stack.require()
    u = stack.user()
    with stack.podman_container(u, network="slirp4netns", name="rdhost-ifaces") as c:
        pid = int(stack.podman(u, "inspect", "-f", "{{.State.Pid}}", c.id).stdout.strip())
        # as root: host/netns_dump.py enters the netns directly (no user namespace to join)
        ifaces, why = host.container_interfaces(pid)
        assert why == "" and ifaces is not None
        by_name = {i.name: i.addresses for i in ifaces}
        assert "10.0.2.100/24" in by_name["tap0"] and "127.0.0.1/8" in by_name["lo"]
        # as the owner: setns is refused without entering the user namespace; nsenter -U does it
        owned, why = _owner_interfaces(u, pid)
        assert owned is not None, why
        assert any(n == "tap0" and "10.0.2.100/24" in a for n, a in owned), owned


@pytest.mark.realstack
def test_container_interfaces_other_owner_refused() -> None:
    import stack

    stack.require()
    u = stack.user()
    # A process of root's, asked about by the unprivileged user: a reason, no exception.
    script = "from rootless_doctor import host; print(host.container_interfaces(1, owner_uid=0))"
    cp = stack.run_as(u, [USER_PYTHON, "-c", script], env=_user_env(u), timeout=30)
    assert cp.returncode == 0 and "(None, " in cp.stdout and "uid 0" in cp.stdout


@pytest.mark.realstack
def test_gather_live_as_the_user() -> None:
    """gather() as the stack user with a real podman slirp4netns container: the container, its
    port handler from the processes, and its interfaces (its speed: bench/check.py)."""
    import stack

    stack.require()
    u = stack.user()
    script = (
        "import json\n"
        "from rootless_doctor import host\n"
        "f = host.gather(host.default_paths())\n"
        "p = f.podman\n"
        "print(json.dumps({'version': p and p.version, 'notes': p and list(p.notes),\n"
        "  'containers': [[c.name, c.port_handler, c.interfaces_error,\n"
        "    [[i.name, list(i.addresses)] for i in (c.interfaces or ())]]\n"
        "    for c in (p.containers if p else ())],\n"
        "  'subuid': f.subuid, 'tun': f.dev_net_tun}))\n"
    )
    env = _user_env(u)
    with stack.podman_container(u, network="slirp4netns", name="rdhost-gather"):
        cp = stack.run_as(u, [USER_PYTHON, "-c", script], env=env, timeout=60)
        assert cp.returncode == 0, cp.stderr
        out = json.loads(cp.stdout)
    assert out["version"] == "4.3.1" and out["tun"] == "ok" and out["subuid"]
    (c,) = [c for c in out["containers"] if c[0] == "rdhost-gather"]
    _, handler, err, ifaces = c
    assert handler == "rootlesskit" and err == ""
    assert any(n == "tap0" and "10.0.2.100/24" in a for n, a in ifaces)


def test_tun_modes(fake: FakeHost) -> None:
    tun = fake.file("/dev/net/tun", "", 0o600)
    other = HostPaths(root=fake.root, home=fake.home, uid=UID + 1, user="nobody-rd", env=())
    if os.geteuid() == 0:
        os.chown(tun, 0, 0)
        assert host.system.dev_net_tun(other) == "no-access"
        tun.chmod(0o666)
        assert host.system.dev_net_tun(other) == "ok"
    assert stat.S_ISREG(tun.stat().st_mode)


def test_own_children_are_not_host_processes(tmp_path: Path) -> None:
    """gather() lists processes while its own `rootlesskit --version` runs beside it: a child of
    this process named rootlesskit must not become a standalone RootlessKit (seen in CI)."""
    import subprocess

    fake_rk = tmp_path / "rootlesskit"
    fake_rk.write_text("#!/bin/sh\nsleep 30\n")
    fake_rk.chmod(0o755)
    child = subprocess.Popen([str(fake_rk), "--version"])
    try:
        paths = host.default_paths()
        procs = host.system.processes(paths)
        assert child.pid not in {p.pid for p in procs}
        assert os.getpid() in {p.pid for p in procs}  # the listing itself works
    finally:
        child.kill()
        child.wait()


def test_sudo_user_is_read(fake: FakeHost) -> None:
    paths = replace(fake.paths, env=(*fake.paths.env, ("SUDO_USER", "alice")))
    assert host.gather(paths, runner=Served(), cwd=fake.home).sudo_user == "alice"
    assert host.gather(fake.paths, runner=Served(), cwd=fake.home).sudo_user is None


def test_pasta_unknown_version_falls_back_to_the_debian_package(fake: FakeHost) -> None:
    """Debian 12's pasta prints "pasta unknown version" (captured); the version then comes from
    dpkg's status file, as podman info gets it."""
    fake.binary("pasta")
    fake.file("/var/lib/dpkg/status", data("dpkg/status-debian12-excerpt.txt"))
    runner = Served({("pasta", "--version"): "pasta unknown version\nCopyright Red Hat\n"})
    facts = host.gather(fake.paths, runner=runner, cwd=fake.home)
    assert facts.tools["pasta"].version == "2023_03_09.7c7625d"
    fake.file("/var/lib/dpkg/status", "")
    assert host.gather(fake.paths, runner=runner, cwd=fake.home).tools["pasta"].version is None


def test_every_public_name_comes_from_its_module() -> None:
    """host/__init__.py imports lazily: each name in __all__ resolves, to its module's object."""
    import importlib

    for name in host.__all__:
        module = importlib.import_module(f"rootless_doctor.host.{host._WHERE[name]}")
        assert getattr(host, name) is getattr(module, name), name
    with pytest.raises(AttributeError):
        _ = host.no_such_name


def test_conmon_ids_once_each_and_full_ids_only() -> None:
    """A `podman exec` session's second conmon (same -c ID) does not list its container twice;
    a value that is not a full container id (e.g. one starting with '-') is not taken."""
    from rootless_doctor.host.podman import conmon_ids
    from rootless_doctor.model import Proc

    a, b = "a" * 64, "0123456789abcdef" * 4

    def conmon(pid: int, cid: str, *extra: str, uid: int = 1000) -> Proc:
        argv = ("/usr/bin/conmon", "--api-version", "1", "-c", cid, *extra)
        return Proc(pid=pid, ppid=1, uid=uid, cmdline=argv)

    procs = [
        conmon(10, a, "-u", a),
        conmon(11, b, "-u", b),
        conmon(12, a, "-u", "f" * 64, "--exec"),  # podman exec into container a
        conmon(13, "--help"),
        conmon(14, "abc"),
        conmon(15, "c" * 64, uid=1001),  # another user's
    ]
    assert conmon_ids(procs, 1000) == [a, b]
