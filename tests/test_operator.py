"""Who runs the check and under what init: plain root without sudo, hosts without systemd."""

from __future__ import annotations

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
