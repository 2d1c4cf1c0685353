"""Who runs the check and under what init: plain root without sudo, hosts without systemd."""

from __future__ import annotations

import pytest

from rootless_doctor.checks import all_checks
from rootless_doctor.model import CheckResult, DockerFacts, HostFacts, PodmanFacts

ROOTLESS_DOCKER_CLI = DockerFacts(cli="/usr/bin/docker", reachable=False)


def one(facts: HostFacts, cid: str) -> CheckResult:
    [r] = [c for c in all_checks(facts) if c.id == cid]
    return r


def test_plain_root_without_a_rootful_engine_is_told_whom_to_run_as() -> None:
    root = HostFacts(user="root", uid=0, docker=ROOTLESS_DOCKER_CLI)
    seen = HostFacts(user="root", uid=0, docker=ROOTLESS_DOCKER_CLI, engine_owners=("alice",))
    r = one(seen, "RUN-AS")
    assert r.status == "fail"
    assert "running as root" in r.detail and "seen running for: alice" in r.detail
    assert "`su - alice -c 'rootless-doctor check'`" in r.remedy
    many = one(HostFacts(uid=0, podman=PodmanFacts(rootless=True), engine_owners=("a", "b")),
               "RUN-AS")  # fmt: skip
    assert many.status == "fail" and "`su - USER -c 'rootless-doctor check'`" in many.remedy
    # Nobody seen: say it, without failing a host that may simply have its daemon stopped.
    assert one(root, "RUN-AS").status == "warn"
    # Root with a rootful engine, or through sudo, or with no engine at all: not this case.
    rootful = HostFacts(uid=0, docker=DockerFacts(rootless=False), engine_owners=("alice",))
    assert one(rootful, "RUN-AS").status == "ok"
    assert one(HostFacts(uid=0, engine_owners=("alice",)), "RUN-AS").status == "ok"
    assert one(
        HostFacts(uid=0, sudo_user="alice", docker=ROOTLESS_DOCKER_CLI), "RUN-AS"
    ).status == ("warn")


def test_a_host_without_systemd_says_so_and_points_to_the_restart_that_works() -> None:
    facts = HostFacts(user="alice", uid=1000, systemd_user=False, systemd_booted=False,
                      docker=ROOTLESS_DOCKER_CLI)  # fmt: skip
    r = one(facts, "SYSTEMD-USER")
    assert r.status == "warn" and "does not run systemd" in r.detail
    assert "dockerd-rootless.sh" in r.detail
    assert "`rootless-doctor fix docker --restart`" in r.remedy
    assert "machinectl" not in r.remedy
    su_session = HostFacts(user="alice", uid=1000, systemd_user=False, systemd_booted=True)
    assert "machinectl" in one(su_session, "SYSTEMD-USER").remedy


def test_host_reads_engine_owners_and_whether_systemd_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import pwd

    from rootless_doctor.host.system import engine_owners, systemd_booted
    from rootless_doctor.model import HostPaths, Proc

    me = os.getuid() or 65534
    name = pwd.getpwuid(me).pw_name
    procs = [
        Proc(pid=10, ppid=1, uid=me, cmdline=("rootlesskit", "--net=slirp4netns", "x")),
        Proc(pid=11, ppid=1, uid=me, cmdline=("/usr/bin/conmon", "--api-version", "1")),
        Proc(pid=12, ppid=1, uid=0, cmdline=("rootlesskit", "x")),  # root's: not an owner
        Proc(pid=13, ppid=1, uid=4242424, cmdline=("catatonit", "-P")),  # no passwd entry
        Proc(pid=14, ppid=1, uid=4242425, cmdline=("catatonit", "--", "sh")),  # not the pause
        Proc(pid=15, ppid=1, uid=4242426, cmdline=("bash",)),
    ]
    assert engine_owners(procs) == (name, "4242424")
    root = HostPaths(root=tmp_path)
    assert systemd_booted(root) is False
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert systemd_booted(root) is True


def _proc_root(tmp_path, procs) -> object:  # type: ignore[no-untyped-def]
    """A fake root whose /proc holds ``procs`` (pid, ppid, uid, argv, environ) and a PATH dir
    with dockerd-rootless.sh."""
    from rootless_doctor.model import HostPaths

    for pid, ppid, uid, argv, environ in procs:
        d = tmp_path / "proc" / str(pid)
        d.mkdir(parents=True)
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (d / "status").write_text(f"Name:\tx\nPPid:\t{ppid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        (d / "environ").write_bytes(b"\0".join(e.encode() for e in environ) + b"\0")
    bin_dir = tmp_path / "usr/share/docker.io/contrib"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "dockerd-rootless.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return HostPaths(root=tmp_path, uid=1000, user="alice", env=(("PATH", "/usr/bin"),))


SCRIPT = "/usr/share/docker.io/contrib/dockerd-rootless.sh"
RK = ("rootlesskit", "--net=slirp4netns", "--port-driver=builtin", SCRIPT)


def test_the_running_daemon_found_for_a_restart_by_hand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rootless_doctor.host.daemon import docker_launch

    env = ("HOME=/home/alice", "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500", "SECRET=x")
    paths = _proc_root(tmp_path, [(500, 1, 1000, RK, env), (501, 500, 1000,
                                  ("/proc/self/exe", *RK[1:]), ())])  # fmt: skip
    launch = docker_launch(paths)  # type: ignore[arg-type]
    assert (launch.pid, launch.script, launch.problem) == (500, SCRIPT, "")
    assert launch.env == {"DOCKERD_ROOTLESS_ROOTLESSKIT_MTU": "1500"}  # only its own settings


@pytest.mark.parametrize(
    ("procs", "problem"),
    [
        ([(500, 1, 1000, RK, ()), (600, 1, 1000, RK, ())], "2 rootless dockerd instances"),
        ([(400, 1, 1000, ("/lib/systemd/systemd", "--user"), ()), (500, 400, 1000, RK, ())],
         "run by /lib/systemd/systemd --user (PID 400)"),
    ],
)  # fmt: skip
def test_a_restart_by_hand_is_refused_with_the_reason(tmp_path, procs, problem) -> None:  # type: ignore[no-untyped-def]
    from rootless_doctor import apply
    from rootless_doctor.host.daemon import docker_launch
    from rootless_doctor.model import DoctorError, Owner

    launch = docker_launch(_proc_root(tmp_path, procs))  # type: ignore[arg-type]
    assert problem in launch.problem
    owner = Owner(name="alice", uid=1000, gid=1000, home=tmp_path / "home")
    said: list[str] = []
    with pytest.raises(DoctorError, match="cannot restart rootless Docker by hand"):
        apply.restart_docker_by_hand(launch, {}, owner, said.append, runtime_dir=tmp_path)
    assert said == []  # nothing stopped, nothing started


def test_a_restart_by_hand_starts_the_launcher_on_the_owners_runtime_dir(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import os
    import pwd

    from rootless_doctor import apply
    from rootless_doctor.model import DockerLaunch, DoctorError, Owner

    # A stand-in launcher (no daemon runs here; it runs in the owner's home): it records its
    # XDG_RUNTIME_DIR and exits.
    script = tmp_path / "dockerd-rootless.sh"
    script.write_text('#!/bin/sh\nprintf %s "$XDG_RUNTIME_DIR" > seen\nexit 3\n')
    script.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "this-shells"))  # not the owner's
    me = pwd.getpwuid(os.getuid())
    owner = Owner(name=me.pw_name, uid=me.pw_uid, gid=me.pw_gid, home=home)
    launch = DockerLaunch(script=str(script))
    with pytest.raises(DoctorError, match=r"exited \(3\)"):
        apply.restart_docker_by_hand(launch, {}, owner, lambda _: None,
                                     runtime_dir=tmp_path / "owners")  # fmt: skip
    assert (home / "seen").read_text() == str(tmp_path / "owners")


def _fix_docker(tmp_path, monkeypatch, facts, *args):  # type: ignore[no-untyped-def]
    import os
    import pwd

    from typer.testing import CliRunner

    from rootless_doctor import cli_fix
    from rootless_doctor.model import HostPaths, Owner

    me = pwd.getpwuid(os.getuid())  # the owner is whoever runs the test: it owns tmp_path
    o = Owner(name=me.pw_name, uid=me.pw_uid, gid=me.pw_gid, home=tmp_path / "home")
    monkeypatch.setattr(cli_fix, "owner", lambda: o)
    monkeypatch.setattr(cli_fix, "host_paths", lambda _o: HostPaths(home=o.home, uid=o.uid))
    monkeypatch.setattr(cli_fix, "gather_facts", lambda _p: facts)
    r = CliRunner().invoke(cli_fix.fix_app, ["docker", "--driver", "slirp4netns", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_fix_docker_says_when_no_unit_reads_the_dropin(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rootless_doctor.model import RootlessKitFacts, Tool

    docker = DockerFacts(cli="/usr/bin/docker", rootless=True, version="20.10.24",
                         running=RootlessKitFacts(version="1.1.0", network_driver="slirp4netns",
                                                  port_driver="builtin"))  # fmt: skip
    tools = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")}
    with_manager = HostFacts(user="alice", uid=4242, systemd_user=True, docker=docker, tools=tools)
    out = _fix_docker(tmp_path, monkeypatch, with_manager, "--dry-run")
    assert "no docker.service user unit here" in out
    assert "next: systemctl --user daemon-reload && systemctl --user restart docker" in out
    no_manager = HostFacts(user="alice", uid=4242, systemd_user=False, docker=docker, tools=tools)
    out = _fix_docker(tmp_path, monkeypatch, no_manager, "--dry-run")
    assert "no systemd user manager here: nothing reads the drop-in by itself" in out
    assert "systemctl" not in out
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns" in out and "dockerd-rootless.sh" in out


def test_fix_docker_restart_after_drift_restarts(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Drop-in written earlier, daemon never restarted: --restart runs the restart (a recording
    systemctl on PATH: this machine has no systemd), not "nothing to do"."""
    from rootless_doctor import cli_fix
    from rootless_doctor.fixes import docker as fix_docker
    from rootless_doctor.model import RootlessKitFacts, Tool

    log = tmp_path / "systemctl.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    rechecked: list[bool] = []
    monkeypatch.setattr(cli_fix, "_recheck", lambda o, quiet: rechecked.append(quiet))
    tools = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")}
    drifted = DockerFacts(
        cli="/usr/bin/docker", rootless=True, version="20.10.24",
        running=RootlessKitFacts(version="1.1.0", network_driver="slirp4netns",
                                 port_driver="builtin"),
        configured_net="slirp4netns", configured_port_driver="slirp4netns",
    )  # fmt: skip
    facts = HostFacts(user="alice", uid=4242, systemd_user=True, docker=drifted, tools=tools)
    home = tmp_path / "home"
    dropin = fix_docker.dropin_path(home / ".config")
    dropin.parent.mkdir(parents=True)
    first = _fix_docker(tmp_path, monkeypatch, facts)  # writes the drop-in, restarts nothing
    assert "wrote" in first and dropin.exists() and not log.exists()
    out = _fix_docker(tmp_path, monkeypatch, facts, "--restart")
    assert "nothing to do" in out and "restarting it" in out
    assert log.read_text() == "--user daemon-reload\n--user restart docker\n"
    assert rechecked == [False]
