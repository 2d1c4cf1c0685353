"""`collect` → `check --from ARCHIVE` on the real stack, as the unprivileged owner.

Two podman containers (podman's default network, which loses source IPs here, with a secret in
its environment; and port_handler=slirp4netns, which keeps them) and a Docker drop-in holding a
secret value beside the driver setting the tool reads. The archive must be the owner's, mode
0600, hold neither secret anywhere, name what it redacted, and give the same verdicts as the
live check. Needs the real stack: skips without it, fails in CI.
"""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdtool
import stack

from rootless_doctor import redact

pytestmark = pytest.mark.realstack


@pytest.fixture
def secret_dropin(u: stack.User) -> Iterator[str]:
    """A drop-in with the driver setting and a secret; removed with the dirs it needed."""
    secret = "tok-" + secrets.token_hex(8)
    unit_dir = Path(u.home, ".config/systemd/user/docker.service.d")
    made = [p for p in (*reversed(unit_dir.parents), unit_dir) if not p.exists()]
    for d in made:
        d.mkdir()
        shutil.chown(d, u.uid, u.gid)
    f = unit_dir / "override.conf"
    assert not f.exists(), f"{f} exists: the test would overwrite the user's drop-in"
    f.write_text(
        "[Service]\n"
        "Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns\n"
        f'Environment="API_TOKEN={secret}"\n'
    )
    shutil.chown(f, u.uid, u.gid)
    try:
        yield secret
    finally:
        f.unlink()
        for d in reversed(made):
            d.rmdir()


@pytest.fixture
def secret_container(u: stack.User) -> Iterator[tuple[str, str]]:
    """`podman run -p` with podman's defaults and a secret in the environment."""
    secret = "pw-" + secrets.token_hex(8)
    name = "rd-collect-secret"
    stack.podman(u, "rm", "-f", "-t0", name)
    cp = stack.podman(
        u, "run", "-d", "--name", name, "-e", f"DB_PASSWORD={secret}",
        "-e", "PERMIT_DOCKER=network", "-p", f"{stack.free_port()}:8080",
        "-v", "/usr:/usr:ro", "--rootfs", stack.rootfs(u), "python3", "-c", stack.PEER_SERVER,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    try:
        yield name, secret
    finally:
        stack.podman(u, "rm", "-f", "-t0", name)


def _unpacked(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }


def test_collect_then_check_from_archive_gives_the_live_verdicts(
    u: stack.User, secret_dropin: str, secret_container: tuple[str, str]
) -> None:
    name, pw = secret_container
    with stack.podman_container(u, network="slirp4netns:port_handler=slirp4netns", name="rd-keep"):
        live = rdtool.check_json(u)
        out_dir = stack._user_tmpdir(u, "rd-collect-")
        try:
            archive = out_dir / "bundle.tar.gz"
            cp = rdtool.run(u, "collect", "-o", str(archive))
            assert cp.returncode == 0, cp.stderr
            assert str(archive) in cp.stdout and "0600" in cp.stdout
            again = rdtool.run(u, "collect", "-o", str(archive))
            assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
            st = archive.stat()
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == u.uid
            assert [p.name for p in out_dir.iterdir()] == ["bundle.tar.gz"]  # no temp left
            raw = archive.read_bytes()
            replay = rdtool.check_json(u, "--from", str(archive))
            members = _unpacked(archive)
        finally:
            shutil.rmtree(out_dir)
    stack.podman_reset(u)

    # No secret anywhere: not in the compressed bytes, not in any member.
    unpacked = gzip.decompress(raw)
    for secret in (secret_dropin, pw):
        assert secret.encode() not in raw and secret.encode() not in unpacked

    manifest = json.loads(members["manifest.json"])
    redacted = {(r["file"], r["what"]) for r in manifest["redacted"]}
    assert ("files/~/.config/systemd/user/docker.service.d/override.conf",
            "environment value of API_TOKEN") in redacted  # fmt: skip
    assert any(w == "environment value of DB_PASSWORD" for _, w in redacted)
    # What the tool reads stays: the driver setting, and the container's PERMIT_DOCKER.
    dropin = members["files/~/.config/systemd/user/docker.service.d/override.conf"].decode()
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns" in dropin
    assert "API_TOKEN=%redacted%" in dropin
    facts = json.loads(members["facts.json"])
    env = next(c["env"] for c in facts["podman"]["containers"] if c["name"] == name)
    assert env["DB_PASSWORD"] == "%redacted%" and env["PERMIT_DOCKER"] == "network"
    # Each file is named by what it is, and the manifest says what.
    assert "commands/podman-info-format-json.json" in members
    assert any(n.startswith("commands/podman-inspect") for n in members)
    whats = {m["name"]: m["what"] for m in manifest["members"]}
    what = whats["commands/podman-info-format-json.json"]
    assert what.startswith("output of `") and what.endswith("podman info --format json`")
    assert "conmon" in members["processes.txt"].decode()
    assert json.loads(members["report.json"])["engines"] == live["engines"]

    # The same verdicts, check for check, container for container; the texts are the live
    # ones up to redaction (a remedy that repeats the container's `podman run -e ...`).
    assert replay["engines"] == live["engines"]
    assert [(c["id"], c["status"]) for c in replay["checks"]] == [
        (c["id"], c["status"]) for c in live["checks"]
    ]
    want = redact.json_value(live["checks"])[0]
    for got, exp in zip(replay["checks"], want, strict=True):
        assert got == exp
    verdicts = {
        c["name"]: c["source_ip_preserved"] for e in live["engines"] for c in e["containers"]
    }
    assert verdicts[name] is False and verdicts["rd-keep"] is True
