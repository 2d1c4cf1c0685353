"""collect.py and apply.create_private without a real stack: the facts codec, the archive's
bounds on reading it back, and the private, never-overwriting write."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rootless_doctor import apply, collect
from rootless_doctor.model import (
    ComposeFacts,
    ComposeService,
    ContainerFacts,
    DockerFacts,
    DoctorError,
    HostFacts,
    PodmanFacts,
    PublishedPort,
    RootlessKitFacts,
    Tool,
)

REPO = Path(__file__).resolve().parent.parent


def _facts() -> HostFacts:
    c = ContainerFacts(
        engine="podman",
        name="web",
        network_mode="bridge",
        port_handler="rootlessport",
        networks=("rdnet",),
        ports=(PublishedPort(host_port=8080, container_port=80),),
        env={"NETWORK_INTERFACE": "eth0", "DB_PASSWORD": "hunter2"},
        create_command=("podman", "run", "-e", "DB_PASSWORD=hunter2", "img"),
    )
    return HostFacts(
        user="alice",
        uid=1000,
        docker=DockerFacts(
            cli="/usr/bin/docker",
            rootless=True,
            running=RootlessKitFacts(
                version="2.0.2", network_driver="pasta", port_driver="implicit"
            ),
            configured_env={"DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "pasta"},
        ),
        podman=PodmanFacts(version="5.4.2", conf={"network.x": 1}, containers=(c,)),
        tools={"pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2025_05_03")},
        subuid=((100000, 65536),),
        compose=ComposeFacts(path="/srv/c.yaml", services=(ComposeService(name="mail"),)),
    )


def test_facts_round_trip_through_json() -> None:
    facts = _facts()
    data = json.loads(json.dumps(collect.encode(facts)))
    assert collect.decode(HostFacts, data) == facts


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(uid="1000"), "facts.uid"),
        (lambda d: d["podman"]["containers"][0].update(engine="lxc"), "'lxc' is not one of"),
        (lambda d: d["podman"]["containers"][0].pop("name"), "name is missing"),
        (lambda d: d.update(subuid=[[1, 2, 3]]), "expected 2 items"),
    ],
)
def test_facts_of_the_wrong_shape_name_the_field(change, words: str) -> None:  # type: ignore[no-untyped-def]
    data = collect.encode(_facts())
    change(data)
    with pytest.raises(DoctorError, match=words.replace("(", r"\(").replace("[", r"\[")):
        collect.decode(HostFacts, data)


def test_facts_member_redacts_env_values_and_create_command() -> None:
    m = collect.facts_member(_facts())
    assert b"hunter2" not in m.data
    data = json.loads(m.data)
    c = data["podman"]["containers"][0]
    assert c["env"] == {"NETWORK_INTERFACE": "eth0", "DB_PASSWORD": "%redacted%"}
    assert c["create_command"][3] == "DB_PASSWORD=%redacted%"
    assert data["docker"]["configured_env"] == {"DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "pasta"}


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (gzip.compress(b"not a tar" * 100), "not a readable tar.gz"),
        (_tar([("../facts.json", b"{}")]), "points outside the archive"),
        (_tar([("rootless-doctor-collect/manifest.json", b"{}")]), "no facts.json"),
        (_tar([("rootless-doctor-collect/facts.json", b"[1")]), "is not JSON"),
        (_tar([("rootless-doctor-collect/facts.json", b'{"uid": "x"}')]), "facts.uid"),
    ],
)
def test_bad_archives_are_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(DoctorError, match=words):
        collect.load(data, "bundle.tar.gz")


def test_a_gzip_bomb_stops_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect, "MAX_UNPACKED_BYTES", 1 << 20)
    bomb = _tar([("rootless-doctor-collect/facts.json", b" " * (4 << 20))])
    assert len(bomb) < 64 * 1024
    with pytest.raises(DoctorError, match="unpacks to more than"):
        collect.load(bomb, "bomb.tar.gz")


def test_check_from_archive_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.tar.gz"
    facts = json.dumps(collect.encode(_facts())).encode()
    good.write_bytes(_tar([("rootless-doctor-collect/facts.json", facts)]))
    run = [sys.executable, "-m", "rootless_doctor", "check", "--json", "--from", str(good)]
    cp = subprocess.run(run, capture_output=True, text=True, cwd=REPO, check=False)
    assert cp.returncode in (0, 1), cp.stderr
    data = json.loads(cp.stdout)
    web = data["engines"][1]["containers"][0]
    assert (web["engine"], web["container"], web["source_ip_preserved"]) == ("podman", "web", False)
    mixed = subprocess.run([*run, "--from", str(good)], capture_output=True, text=True, cwd=REPO)
    assert mixed.returncode == 2 and "alone" in mixed.stderr and mixed.stderr.count("\n") == 1


def test_create_private_is_0600_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "a.tar.gz"
    apply.create_private(target, b"one")
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(DoctorError, match="exists"):
        apply.create_private(target, b"two")
    assert target.read_bytes() == b"one"
    link = tmp_path / "link.tar.gz"
    os.symlink(tmp_path / "elsewhere", link)
    with pytest.raises(DoctorError, match="exists"):
        apply.create_private(link, b"x")
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "link.tar.gz"]
    with pytest.raises(DoctorError, match="no such directory"):
        apply.create_private(tmp_path / "missing" / "x.tar.gz", b"x")


def test_archive_holds_the_compose_env_files_redacted(tmp_path: Path) -> None:
    import datetime as dt

    from rootless_doctor.host.files import read
    from rootless_doctor.model import EnvFileRef, HostPaths

    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text("services:\n  mail:\n    image: x\n    env_file: mail.env\n")
    (tmp_path / "mail.env").write_text("PERMIT_DOCKER=none\nRELAY_PASSWORD=hunter2\nTZ=UTC\n")
    (tmp_path / ".env").write_text("IMAGE_TAG=15\n")
    ref = EnvFileRef(written="mail.env", path=str(tmp_path / "mail.env"))
    facts = HostFacts(
        user="alice",
        uid=1000,
        sources=(str(compose_file),),
        compose=ComposeFacts(
            path=str(compose_file), services=(ComposeService(name="mail", env_files=(ref,)),)
        ),
    )
    data, manifest = collect.build(
        paths=HostPaths(user="alice", uid=1000, home=tmp_path / "home"),
        facts=facts,
        outputs=[],
        procs=[],
        report_json={},
        read=read,
        hostname="h",
        now=dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc),
    )
    members = collect.members_of(data, "x")
    env = members[f"files/{str(tmp_path / 'mail.env').lstrip('/')}"].decode()
    assert env == "PERMIT_DOCKER=none\nRELAY_PASSWORD=%redacted%\nTZ=%redacted%\n"
    assert members[f"files/{str(tmp_path / '.env').lstrip('/')}"] == b"IMAGE_TAG=%redacted%\n"
    assert b"hunter2" not in gzip.decompress(data)
    assert {"file": f"files/{str(tmp_path / 'mail.env').lstrip('/')}",
            "what": "environment value of RELAY_PASSWORD"} in manifest["redacted"]  # fmt: skip
