"""RootlessKit 3 / Docker 29 (issue 7): sourceIPTransparentBackend read live and with --from,
--source-ip-transparent=false on a command line, the launcher's exit before 29.5, RootlessKit
3.0.0's UDP bug, and br_netfilter before `fix docker` writes "userland-proxy": false.

No real RootlessKit 3 `/v1/info` exists upstream (tests/data/SOURCES.md "RootlessKit 3.x"): its
shape is fixed by rootlesskit's own tests after PR 613 — pkg/port/builtin/builtin_test.go
(TestSourceIPTransparentBackend: ``info.Extra["sourceIPTransparentBackend"]`` is the backend) and
hack/integration-port-source-ip.sh (``rootlessctl info --json | jq -r
'.portDriver.extra.sourceIPTransparentBackend'``; none/null/empty = not transparent). The bodies
below are the captured RootlessKit 1.1.0 `/v1/info` with that key (and the version) changed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from test_cli import rd
from test_host import RUN, ApiServer, FakeHost, Served

from rootless_doctor import cli_fix, host, knowledge, parse
from rootless_doctor.checks import all_checks
from rootless_doctor.checks.docker_rk3 import br_netfilter
from rootless_doctor.fixes import docker as fix_docker
from rootless_doctor.model import (
    ContainerFacts,
    DockerFacts,
    DoctorError,
    HostFacts,
    PublishedPort,
    RootlessKitFacts,
    Tool,
)

V1_INFO = DATA / "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-builtin-v1-info.json"
UNRECOGNISED = DATA / "unrecognised"
PS_29_8_2 = UNRECOGNISED / (
    "docker-29.8.2-rootlesskit-3.1.0-gvisor-tap-vsock-ps-eo-user-args-CUT-BY-AUTHOR.txt"
)
NO_BR_NF = UNRECOGNISED / (
    "docker-29.8.2-rootless-userland-proxy-false-no-br-netfilter-failed-to-start.txt"
)
PROXY_FALSE = DATA / "daemon-json/alfredo-docker-modes-test-userland-proxy-false.json"
BR_NF_SYSCTL = DATA / "proc/bridge-nf-call-iptables-debian12-ci-machine"


def rk3_info(backend: str | None, *, version: str = "3.1.0", state_dir: str | None = None) -> str:
    """The captured /v1/info as RootlessKit ≥ 3 with PR 613 answers it (see the module doc)."""
    data: dict[str, Any] = json.loads(V1_INFO.read_text())
    data["version"] = version
    if state_dir is not None:
        data["stateDir"] = state_dir
    if backend is not None:
        data["portDriver"]["extra"] = {"sourceIPTransparentBackend": backend}
    return json.dumps(data)


# --------------------------------------------------------------------------- parse


@pytest.mark.parametrize("backend", ["nft", "iptables", "none"])
def test_v1_info_backend_is_read(backend: str) -> None:
    rk = parse.rootlesskit_api_info(rk3_info(backend))
    assert rk.version == "3.1.0" and rk.port_driver == "builtin"
    assert rk.transparent_backend == backend
    # `rootlessctl info --json` prints the same object indented by 4 (cmd/rootlessctl/info.go:
    # json.MarshalIndent(info, "", "    ")); its text form has no extra fields.
    indented = json.dumps(json.loads(rk3_info(backend)), indent=4) + "\n"
    assert parse.rootlesskit_api_info(indented).transparent_backend == backend


def test_v1_info_without_the_key_is_not_known() -> None:
    # RootlessKit 1.1.0 (captured) and 3.0.x have no extra.sourceIPTransparentBackend.
    assert parse.rootlesskit_api_info(V1_INFO.read_text()).transparent_backend is None
    assert parse.rootlesskit_api_info(rk3_info(None, version="3.0.2")).transparent_backend is None


@pytest.mark.parametrize(
    ("flag", "backend"),
    [
        ("--source-ip-transparent=false", "none"),
        ("--source-ip-transparent=0", "none"),
        ("--source-ip-transparent", None),  # a bare boolean flag is true
        ("--source-ip-transparent=true", None),
    ],
)
def test_command_line_source_ip_transparent(flag: str, backend: str | None) -> None:
    # The 29.8.2 listing (author's cuts dropped), with the flag added where FLAGS would put it.
    line = PS_29_8_2.read_text().splitlines()[0].split(None, 1)[1]
    argv = [w for w in line.split() if w != "..."]
    argv.insert(-1, flag)
    rk = parse.rootlesskit_argv(argv)
    assert rk.port_driver == "builtin" and rk.network_driver == "gvisor-tap-vsock"
    assert rk.transparent_backend == backend


# --------------------------------------------------------------------------- verdicts


def docker(backend: str | None, rk: str = "3.1.0", **kw: Any) -> DockerFacts:
    kw.setdefault("userland_proxy", False)
    return DockerFacts(
        rootless=True,
        version="29.8.2",
        running=RootlessKitFacts(
            version=rk,
            network_driver="gvisor-tap-vsock",
            port_driver="builtin",
            source="api.sock",
            transparent_backend=backend,
        ),
        **kw,
    )


def test_backend_decides_and_absent_is_inferred_with_the_3_0_note() -> None:
    kept = knowledge.docker_verdict(docker("nft"))
    assert kept.preserved is True and "backend nft" in kept.reason
    assert "inferred" not in kept.reason
    off = knowledge.docker_verdict(docker("none"))
    assert off.preserved is False and off.seen == "172.17.0.1"
    inferred = knowledge.docker_verdict(docker(None, rk="3.0.2"))
    assert inferred.preserved is True
    assert "inferred" in inferred.reason and "iptables is missing" in inferred.reason
    # RootlessKit < 3 has no transparency to infer: no note.
    old = knowledge.docker_verdict(docker(None, rk="2.3.6"))
    assert old.preserved is False and "inferred" not in old.reason


def test_launcher_exits_before_29_5_without_network_helpers() -> None:
    missing = {n: Tool(name=n, path=None) for n in ("slirp4netns", "pasta", "rootlesskit")}
    d = DockerFacts(rootless=True, version="29.4.3", configured_env={"X": "1"})
    v = knowledge.docker_verdict(d, missing)
    assert v.preserved is None and knowledge.LAUNCHER_EXIT_MESSAGE in v.reason
    assert "slirp4netns" in v.fix
    # 29.5+: gvisor-tap-vsock instead (moby 5249b1d165), the builtin row decides.
    v29 = knowledge.docker_verdict(DockerFacts(rootless=True, version="29.5.0"), missing)
    assert knowledge.LAUNCHER_EXIT_MESSAGE not in v29.reason and "builtin" in v29.reason
    # A helper installed, or a network named in FLAGS: the launcher starts.
    slirp = {**missing, "slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns")}
    assert knowledge.docker_launcher_exits(d, slirp) is None
    flags = {"DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS": "--net=vpnkit"}
    d_flags = DockerFacts(rootless=True, version="29.4.3", configured_env=flags)
    assert knowledge.docker_launcher_exits(d_flags, missing) is None


def test_rk3_udp_warn_only_on_3_0_0() -> None:
    c = ContainerFacts(
        engine="docker",
        name="dns",
        ports=(PublishedPort(host_port=53, container_port=53, protocol="udp"),
               PublishedPort(host_port=8080, container_port=80)),
    )  # fmt: skip
    for rk, warned in (("3.0.0", True), ("3.0.1", False), ("2.3.6", False)):
        facts = HostFacts(docker=docker("iptables", rk=rk, containers=(c,)))
        found = [r for r in all_checks(facts) if r.id == "DOCKER-RK3-UDP"]
        assert bool(found) is warned, rk
        if warned:
            assert found[0].status == "warn" and "53/udp" in found[0].detail
            assert "8080" not in found[0].detail and found[0].container == "dns"


# --------------------------------------------------------------------------- br_netfilter


def test_br_netfilter_read_on_fake_roots(tmp_path: Path) -> None:
    def root(name: str, files: dict[str, str]) -> FakeHost:
        fake = FakeHost(tmp_path / name)
        for path, text in files.items():
            fake.file(path, text)
        return fake

    sysctl = BR_NF_SYSCTL.read_text()
    # This machine's kernel (CONFIG_BRIDGE_NETFILTER=y, no modules): only the sysctl shows it.
    assert host.docker.br_netfilter(root("ci", {host.docker.BR_NF_SYSCTL: sysctl}).paths)
    # proc(5) /proc/modules: "name size refcount deps state offset"
    mods = (
        "br_netfilter 32768 0 - Live 0x0000000000000000\nbridge 311296 1 br_netfilter, Live 0x0\n"
    )
    with_mod = root("mod", {"/proc/modules": mods, "/proc/sys/net/core/somaxconn": "4096\n"})
    assert host.docker.br_netfilter(with_mod.paths) is True
    sysmod = root("sys", {"/sys/module/br_netfilter/refcnt": "0\n"})
    assert host.docker.br_netfilter(sysmod.paths) is True
    without = {
        "/proc/modules": "bridge 311296 0 - Live 0x0\nbr_netfilter_x 1 0 - Live 0x0\n",
        "/proc/sys/net/core/somaxconn": "4096\n",
    }
    assert host.docker.br_netfilter(root("none", without).paths) is False
    assert host.docker.br_netfilter(root("empty", {}).paths) is None  # no /proc: not known


@pytest.mark.parametrize(
    ("present", "reachable", "status"),
    [(True, None, "ok"), (False, None, "fail"), (False, True, "warn"), (None, None, "unknown")],
)
def test_br_netfilter_check(present: bool | None, reachable: bool | None, status: str) -> None:
    d = docker("nft", br_netfilter=present, reachable=reachable, daemon_json="/h/daemon.json")
    r = br_netfilter(d)
    assert r.status == status
    if status in ("fail", "warn"):
        assert "sudo modprobe br_netfilter" in r.remedy
        assert "/etc/modules-load.d/br_netfilter.conf" in r.remedy
        assert knowledge.BR_NETFILTER_ERROR in r.detail
    # The daemon's own words, as journald printed them (upstream capture).
    assert knowledge.BR_NETFILTER_ERROR in NO_BR_NF.read_text()
    assert br_netfilter(docker("nft", userland_proxy=None, br_netfilter=False)).status == "skip"


# --------------------------------------------------------------------------- fix docker, fake host


def rk3_host(fake: FakeHost, *, br_nf: bool, daemon_json: str | None = None) -> ApiServer:
    """Rootless Docker 29.8.2 + RootlessKit 3.1.0 builtin, state in $XDG_RUNTIME_DIR: api.sock
    answers /v1/info (backend nft), .bp.sock, the docker socket; no slirp4netns/pasta installed
    (the upstream alfredo host). /proc/sys/net is there; the br_netfilter sysctl only if br_nf."""
    state = f"{RUN}/dockerd-rootless"
    fake.file(f"{state}/.bp.sock", "")
    fake.file(f"{state}/child_pid", "4242")
    fake.file(f"{RUN}/docker.sock", "")
    fake.file("/proc/sys/net/core/somaxconn", "4096\n")
    if br_nf:
        fake.file(host.docker.BR_NF_SYSCTL, BR_NF_SYSCTL.read_text())
    if daemon_json is not None:
        fake.file("~/.config/docker/daemon.json", daemon_json)
    return ApiServer(fake.root / state.lstrip("/") / "api.sock", rk3_info("nft", state_dir=state))


def fix_on(
    fake: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    br_nf: bool,
    daemon_json: str | None = None,
) -> tuple[int, str]:
    """`fix docker ARGS` on the rk3_host built in ``fake``, its facts gathered from that root."""
    from typer.testing import CliRunner

    from rootless_doctor import apply

    # The test runs as itself (root in CI): the fix writes with the owner's rights, so the owner
    # is this process, as in tests/test_fixes.py.
    o = apply.Owner(name="t", uid=os.geteuid(), gid=os.getegid(), home=fake.home, via_sudo=False)
    monkeypatch.setattr(cli_fix, "owner", lambda: o)
    monkeypatch.setattr(cli_fix, "host_paths", lambda _o: fake.paths)
    monkeypatch.setattr(
        cli_fix, "gather_facts", lambda p: host.gather(p, runner=Served(), cwd=fake.home)
    )
    server = rk3_host(fake, br_nf=br_nf, daemon_json=daemon_json)
    try:
        r = CliRunner().invoke(cli_fix.fix_app, ["docker", *args])
    finally:
        server.close()
    if isinstance(r.exception, DoctorError):
        return r.exception.exit_code, str(r.exception)
    return r.exit_code, r.output


@pytest.fixture
def short_root() -> Iterator[Path]:
    """A short /tmp path: api.sock must fit in a unix socket address."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rdk3-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_fix_docker_without_br_netfilter_writes_nothing(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeHost(short_root)
    code, out = fix_on(fake, monkeypatch, br_nf=False)
    assert code == 1
    assert out.startswith("nothing written: br_netfilter is not loaded")
    lines = out.splitlines()
    assert "    sudo modprobe br_netfilter" in lines
    assert "    echo br_netfilter | sudo tee /etc/modules-load.d/br_netfilter.conf" in lines
    assert "rootless-doctor fix docker` again" in out
    assert not (fake.home / ".config/docker/daemon.json").exists()
    assert not (fake.home / ".config/systemd").exists()


def test_fix_docker_with_br_netfilter_writes_daemon_json(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeHost(short_root)
    code, out = fix_on(fake, monkeypatch, br_nf=True)
    assert code == 0, out
    daemon_json = fake.home / ".config/docker/daemon.json"
    assert daemon_json.read_text() == fix_docker.FRESH_DAEMON_JSON


def test_fix_docker_refuses_a_dropin_while_daemon_json_keeps_dockerd_down(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "userland-proxy": false already written (the upstream alfredo file) and no br_netfilter:
    # dockerd exits whatever driver a drop-in picks, so `--driver slirp4netns` must not "fix" it.
    fake = FakeHost(short_root)
    fake.binary("slirp4netns", "#!/bin/sh\necho 'slirp4netns version 1.2.0'\n")
    code, out = fix_on(
        fake,
        monkeypatch,
        "--driver",
        "slirp4netns",
        br_nf=False,
        daemon_json=PROXY_FALSE.read_text(),
    )
    assert code == 1 and "nothing written" in out
    assert '"userland-proxy": true' in out
    assert not (fake.home / ".config/systemd").exists()


def test_choose_offers_the_dropin_drivers_when_br_netfilter_is_missing() -> None:
    slirp = Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")
    d = docker("nft", br_netfilter=False, userland_proxy=None)
    with pytest.raises(DoctorError) as e:
        fix_docker.choose(HostFacts(docker=d, tools={"slirp4netns": slirp}), None)
    assert e.value.exit_code == 1
    assert "`rootless-doctor fix docker --driver slirp4netns`" in str(e.value)
    # The drop-in itself is fine while daemon.json does not say false.
    ch = fix_docker.choose(HostFacts(docker=d, tools={"slirp4netns": slirp}), "slirp4netns")
    assert ch.option.key == "slirp4netns"


# --------------------------------------------------------------------------- check --from


def test_check_from_v1_info_backend_none_and_nft(tmp_path: Path) -> None:
    """Whole files: a RootlessKit 3.1.0 /v1/info of Docker's state dir + the upstream daemon.json
    with "userland-proxy": false."""
    state = "/run/user/999/dockerd-rootless"
    out = {}
    for backend in ("none", "nft"):
        f = tmp_path / f"v1-info-{backend}.json"
        f.write_text(rk3_info(backend, state_dir=state) + "\n")
        cp = rd("check", "--json", "--from", str(f), "--from", str(PROXY_FALSE))
        assert cp.returncode in (0, 1), cp.stderr
        (eng,) = json.loads(cp.stdout)["engines"]
        out[backend] = eng
    assert out["nft"]["source_ip_preserved"] is True and out["nft"]["seen_address"] == "the client"
    assert "backend nft" in out["nft"]["reason"]
    assert out["none"]["source_ip_preserved"] is False
    assert out["none"]["seen_address"] == "172.17.0.1" and "'none'" in out["none"]["reason"]


def test_check_from_flags_in_a_dropin_win(tmp_path: Path) -> None:
    """The moby 29.7.2 unit (rendered from the setuptool) + a drop-in: FLAGS come after
    NET/PORT_DRIVER and win (the last --net/--port-driver, either spelling)."""
    unit = (
        DATA
        / "systemd/docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service"
    )
    dropin = tmp_path / "override.conf"
    dropin.write_text(
        "[Service]\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--port-driver builtin '
        '--net=slirp4netns --port-driver=slirp4netns"\n'
    )
    cp = rd("check", "--json", "--from", str(unit), "--from", str(dropin))
    assert cp.returncode in (0, 1), cp.stderr
    (eng,) = json.loads(cp.stdout)["engines"]
    assert (eng["network_driver"], eng["port_driver"]) == ("slirp4netns", "slirp4netns")
    assert eng["source_ip_preserved"] is True


# --------------------------------------------------------------------------- FLAGS vs the fix


FLAGS = knowledge.FLAGS_ENV


def configured(*texts: tuple[str, str]) -> DockerFacts:
    """What check reads from unit + drop-ins (parse.unit_environment, systemd order)."""
    env = parse.unit_environment(list(texts))
    return DockerFacts(
        rootless=True,
        version="28.5.2",
        configured_net=env.get("DOCKERD_ROOTLESS_ROOTLESSKIT_NET"),
        configured_port_driver=env.get("DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"),
        configured_env={k: v for k, v in env.items() if k.startswith("DOCKERD_ROOTLESS_")},
    )


def test_fix_dropin_takes_the_driver_flags_out_of_flags(tmp_path: Path) -> None:
    # The phaidra drop-in (upstream) with --net/--port-driver added to its FLAGS, both spellings:
    # they come after _NET/_PORT_DRIVER on rootlesskit's command line and would undo the fix.
    src = (DATA / "systemd/phaidra-readme-override-assembled.conf").read_text()
    before = src.replace('FLAGS="-p', 'FLAGS="--net=vpnkit --port-driver builtin -p')
    d = configured(("override.conf", before))
    assert knowledge.docker_drivers(d, {}).port_driver == "builtin"  # FLAGS win today
    slirp = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2")}
    opt = fix_docker.choose(HostFacts(docker=d, tools=slirp), "slirp4netns").option
    (p,) = fix_docker.plan(
        opt,
        config_dir=tmp_path,
        dropin_text=before,
        daemon_json_text=None,
        flags=d.configured_env[FLAGS],
    )
    assert p.after == (
        "[Service]\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=-p 0.0.0.0:9323:9323/tcp"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
    )
    after = configured(("override.conf", p.after))
    dr = knowledge.docker_drivers(after, {})
    assert (dr.network_driver, dr.port_driver) == ("slirp4netns", "slirp4netns")
    (p2,) = fix_docker.plan(
        opt,
        config_dir=tmp_path,
        dropin_text=p.after,
        daemon_json_text=None,
        flags=after.configured_env[FLAGS],
    )
    assert not p2.changed


def test_fix_fresh_dropin_resets_flags_set_in_the_unit(tmp_path: Path) -> None:
    unit = "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--port-driver=builtin\n"
    d = configured(("docker.service", unit))
    slirp = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2")}
    opt = fix_docker.choose(HostFacts(docker=d, tools=slirp), None).option
    (p,) = fix_docker.plan(
        opt,
        config_dir=tmp_path,
        dropin_text=None,
        daemon_json_text=None,
        flags="--port-driver=builtin",
    )
    assert p.after.endswith('Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="\n')
    dr = knowledge.docker_drivers(configured(("docker.service", unit), ("override.conf", p.after)))
    assert dr.port_driver == opt.port_driver == "slirp4netns"


def test_fix_builtin_transparent_drops_source_ip_transparent_false(tmp_path: Path) -> None:
    d = docker(None, br_netfilter=True, userland_proxy=None)
    opt = fix_docker.choose(HostFacts(docker=d), None).option
    assert opt.key == "builtin-transparent"
    flags = "--source-ip-transparent=false --mtu=65520"
    daemon, dropin = fix_docker.plan(
        opt, config_dir=tmp_path, dropin_text=None, daemon_json_text=None, flags=flags
    )
    assert daemon.after == fix_docker.FRESH_DAEMON_JSON
    assert 'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--mtu=65520"\n' in dropin.after
    assert knowledge.launcher_flags_without("--source-ip-transparent=1 -p 1:1", (), false_bools=(
        "source-ip-transparent",)) == "--source-ip-transparent=1 -p 1:1"  # fmt: skip
    with pytest.raises(DoctorError, match="by hand"):
        fix_docker.plan(
            opt,
            config_dir=tmp_path,
            dropin_text=None,
            daemon_json_text=None,
            flags="--port-driver=slirp4netns --cidr=10.0.%i.0/24",
        )


def test_live_flags_in_a_dropin_win(tmp_path: Path) -> None:
    """Live reading on a fake root: the moby 29.7.2 unit + two drop-ins in systemd order; the
    last FLAGS assignment is the one the launcher gets, its last --port-driver wins."""
    fake = FakeHost(tmp_path)
    unit = "systemd/docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service"
    fake.file("~/.config/systemd/user/docker.service", (DATA / unit).read_text())
    fake.file(
        "~/.config/systemd/user/docker.service.d/10-net.conf",
        "[Service]\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--port-driver=slirp4netns"\n',
    )
    fake.file(
        "~/.config/systemd/user/docker.service.d/20-flags.conf",
        '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--port-driver slirp4netns '
        '--mtu=65520 --port-driver=builtin"\n',
    )
    d = host.gather(fake.paths, runner=Served(), cwd=fake.home).docker
    assert d is not None and d.configured_env[FLAGS].endswith("--port-driver=builtin")
    dr = knowledge.docker_drivers(d, {})
    assert (dr.network_driver, dr.port_driver) == ("slirp4netns", "builtin")
    assert "FLAGS overrides" in dr.origin


@pytest.mark.parametrize("backend", ["nft", "none"])
def test_live_api_sock_backend(short_root: Path, backend: str) -> None:
    """Live reading: the real api.sock client asks /v1/info in Docker's state dir; the backend
    RootlessKit resolved reaches the facts and decides the verdict."""
    fake = FakeHost(short_root)
    state = f"{RUN}/dockerd-rootless"
    fake.file(f"{state}/.bp.sock", "")
    fake.file(f"{RUN}/docker.sock", "")
    fake.file("~/.config/docker/daemon.json", PROXY_FALSE.read_text())
    server = ApiServer(
        fake.root / state.lstrip("/") / "api.sock", rk3_info(backend, state_dir=state)
    )
    try:
        d = host.gather(fake.paths, runner=Served(), cwd=fake.home).docker
    finally:
        server.close()
    assert d is not None and d.running is not None and d.userland_proxy is False
    assert (d.running.version, d.running.transparent_backend) == ("3.1.0", backend)
    assert server.requests and server.requests[0].startswith(b"GET /v1/info ")
    v = knowledge.docker_verdict(d, {})
    assert v.preserved is (backend != "none")


def test_flags_turn_transparency_off_for_a_daemon_read_without_its_command_line() -> None:
    """The running RootlessKit known from `docker version` only (no command line, no backend):
    the launcher's FLAGS are what it was started with. A command line read wins over FLAGS."""
    env = {FLAGS: "--source-ip-transparent --source-ip-transparent=false"}
    running = RootlessKitFacts(
        version="3.0.2",
        network_driver="slirp4netns",
        port_driver="builtin",
        source="docker version",
    )
    d = DockerFacts(rootless=True, version="29.7.2", userland_proxy=False, running=running,
                    configured_env=env)  # fmt: skip
    assert knowledge.docker_drivers(d).transparent_backend == "none"
    assert knowledge.docker_verdict(d).preserved is False
    from dataclasses import replace

    argv = replace(running, source="command line + docker version")
    assert knowledge.docker_verdict(replace(d, running=argv)).preserved is True
    assert knowledge.docker_verdict(replace(d, configured_env={})).preserved is True
