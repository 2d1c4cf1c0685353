"""`check --from` on what people really paste into bug reports (issue 8, part 3).

Read what is there, list what was skipped in ``notes``, decide from what remains: never exit 2
when the rest is readable. Sources of every file: tests/data/SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from fromcheck import check, engine
from test_cli import rd

PS = DATA / "ps"
PS_CAP = "docker-20.10.24-debian12-rootless-builtin-published-port"  # in pastes/
QUADLET = DATA / "quadlet"
PODMAN6 = DATA / "podman-info/podman-6.1.1-remote-macos-machine-rootless.yaml"
PODMAN5 = DATA / "podman-info/podman-5.4.2-rootless-fedora42-via-ramalama-info.json"
PODMAN4 = DATA / "podman-info/podman-4.3.1-rootless-debian12.json"


def by_id(data: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [c for c in data["checks"] if c["id"].startswith(prefix)]


@pytest.mark.parametrize(
    "name",
    [
        f"{PS_CAP}-ps-u-o-user-args.txt",
        f"{PS_CAP}-ps-u-o-user-args-forest.txt",
        f"{PS_CAP}-ps-u-o-user20-stat-etime-args.txt",
        f"{PS_CAP}-ps-u-o-args-noheader.txt",
        f"{PS_CAP}-ps-axo-user-comm-args-grep-user.txt",
    ],
)
def test_ps_layouts_without_a_pid_column(name: str) -> None:
    code, data = check(DATA / "pastes" / name)
    d = engine(data, "docker")
    assert d["rootless"] is True
    assert d["port_driver"] == "builtin"
    # RootlessKit 1.1 builtin + docker-proxy: the client IP is lost (no version is shown, but a
    # builtin port driver with rootlesskit-docker-proxy in the listing loses it on every version
    # while userland-proxy is on)
    assert d["source_ip_preserved"] is False
    assert code == 1


def test_timestamped_log_with_docker_version_inside() -> None:
    # Dev Containers log: a timestamp prefix on some lines of the docker version output only
    code, data = check(
        DATA / "pastes/devcontainers-log-timestamped-docker-version-26.0.0-rootlesskit-2.0.2-"
        "builtin.log"
    )
    d = engine(data, "docker")
    assert (d["version"], d["rootlesskit_version"]) == ("26.0.0", "2.0.2")
    assert (d["network_driver"], d["port_driver"]) == ("slirp4netns", "builtin")
    assert d["source_ip_preserved"] is False
    assert code == 1
    assert data["notes"], "the log lines around the output are listed as skipped"


def test_lone_rootlesskit_block_without_apiversion(tmp_path: Path) -> None:
    # What people cut out of `docker version`: only the rootlesskit component, ApiVersion dropped.
    src = (
        DATA / "docker-version/docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt"
    ).read_text()
    block = src[src.index(" rootlesskit:") : src.index(" slirp4netns:")]
    block = "".join(ln for ln in block.splitlines(keepends=True) if "ApiVersion" not in ln)
    f = tmp_path / "paste.txt"
    f.write_text(block)
    _, data = check(f)
    d = engine(data, "docker")
    assert (d["rootlesskit_version"], d["port_driver"]) == ("2.3.4", "builtin")
    assert d["source_ip_preserved"] is False


@pytest.mark.parametrize("mark", ["...", "|...|", "[...]", "[snip]"])
def test_author_elisions_are_skipped_and_listed(tmp_path: Path, mark: str) -> None:
    src = (PS / "docker-20.10.24-debian12-rootless-portdriver-slirp4netns-ps-aux.txt").read_text()
    lines = src.splitlines()
    keep = [ln for ln in lines if "rootlesskit" in ln or "slirp4netns" in ln or "USER" in ln]
    f = tmp_path / "paste.txt"
    f.write_text("\n".join([keep[0], mark, *keep[1:], mark]) + "\n")
    _, data = check(f)
    d = engine(data, "docker")
    assert d["port_driver"] == "slirp4netns"
    assert any(mark in n for n in data["notes"])


def test_issue_paste_with_prompt_cat_and_error_reads_the_dropin() -> None:
    # `Environment=VAR="slirp4netns"`: systemd removes the quotes inside the word too.
    _, data = check(DATA / "pastes/rootlesskit-issue250-cat-override-quoted-value-and-error.txt")
    d = engine(data, "docker")
    assert d["port_driver"] == "slirp4netns"
    assert any("docker: Error response" in n or "skipped" in n for n in data["notes"])


def test_flags_set_the_port_driver_last_value_wins(tmp_path: Path) -> None:
    # dockerd-rootless.sh appends DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS after --port-driver, and
    # rootlesskit takes the last value (moby contrib/dockerd-rootless.sh).
    base = (
        DATA / "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"
    ).read_text()
    f = tmp_path / "override.conf"
    f.write_text(base + 'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--port-driver=builtin"\n')
    _, data = check(f)
    assert engine(data, "docker")["port_driver"] == "builtin"


@pytest.mark.parametrize(
    ("quadlet", "on5", "on6"),
    [
        ("podman-networking-docs-nginx-network-slirp4netns-port_handler-rootlesskit.container",
         "fail", "fail"),
        ("podman-networking-docs-nginx-network-slirp4netns-port_handler-slirp4netns.container",
         "ok", "fail"),
        ("podman-networking-docs-nginx-network-pasta-bind-eth0.container", "ok", "ok"),
    ],
)  # fmt: skip
def test_quadlet_network_per_podman_version(quadlet: str, on5: str, on6: str) -> None:
    f = QUADLET / quadlet
    _, data = check(PODMAN5, f)
    assert [c["status"] for c in by_id(data, "QUADLET-")] == [on5]
    _, data = check(PODMAN6, f)
    q6 = by_id(data, "QUADLET-")
    assert [c["status"] for c in q6] == [on6]
    if "slirp4netns" in quadlet:
        assert "start" in q6[0]["detail"]  # Podman 6 removed slirp4netns: it does not start
    # no Podman version given: say what each version would do
    _, data = check(f)
    q = by_id(data, "QUADLET-")
    assert len(q) == 1
    assert "5" in q[0]["detail"] and "6" in q[0]["detail"]


def test_dms_quadlet_without_network_line_takes_the_version_default() -> None:
    f = DATA / "systemd/docker-mailserver-docs-podman-quadlet-dms.container"
    _, data = check(PODMAN4, f)
    assert [c["status"] for c in by_id(data, "QUADLET-")] == [
        "fail"
    ]  # 4.x: slirp4netns+rootlessport
    _, data = check(PODMAN5, f)
    assert [c["status"] for c in by_id(data, "QUADLET-")] == ["ok"]  # 5.x: pasta


def test_rootless_port_forwarder_means_podman_6() -> None:
    f = (
        DATA
        / "containers-conf/user-snippet-aeo-containers.conf.d-rootless-port-forwarder-pasta.conf"
    )
    _, data = check(f)
    p = engine(data, "podman")
    text = p["reason"] + " ".join(data["notes"])
    assert "6" in text and "rootless_port_forwarder" in text


UNREC = DATA / "unrecognised"  # real pastes m7facts collected (tests/data/SOURCES.md)


def test_setuptool_printed_rootlesskit_block_rk3_gvisor_tap_vsock() -> None:
    code, data = check(
        UNREC / "docker-29.8.2-rootless-rootlesskit-3.1.0-gvisor-tap-vsock-builtin-setuptool.txt"
    )
    d = engine(data, "docker")
    assert d["rootlesskit_version"] == "3.1.0"
    assert (d["network_driver"], d["port_driver"]) == ("gvisor-tap-vsock", "builtin")
    # RootlessKit 3 builtin, but userland-proxy is on unless daemon.json says otherwise
    assert d["source_ip_preserved"] is False
    assert code == 1


def test_ps_user_args_cut_by_the_author_keeps_what_is_shown() -> None:
    _, data = check(
        UNREC / "docker-29.8.2-rootlesskit-3.1.0-gvisor-tap-vsock-ps-eo-user-args-CUT-BY-AUTHOR.txt"
    )
    d = engine(data, "docker")
    assert (d["network_driver"], d["port_driver"]) == ("gvisor-tap-vsock", "builtin")
    assert any("..." in n for n in data["notes"])


def test_bare_dockerd_error_line_is_read_not_refused() -> None:
    f = UNREC / "docker-29.8.2-rootless-userland-proxy-false-no-br-netfilter-failed-to-start.txt"
    cp = rd("check", "--json", "--from", str(f))
    assert cp.returncode in (0, 1), cp.stderr
    data = json.loads(cp.stdout)
    said = " ".join(data["notes"]) + " ".join(c["detail"] for c in data["checks"])
    assert "br_netfilter" in said or "bridge-nf-call-iptables" in said


def test_containerd_variable_in_a_docker_dropin_is_ignored(tmp_path: Path) -> None:
    # The docker-mailserver docs' drop-in with the other launcher's variable name.
    d = tmp_path / "docker.service.d"
    d.mkdir()
    src = DATA / "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"
    (d / "override.conf").write_text(
        src.read_text().replace("DOCKERD_ROOTLESS_", "CONTAINERD_ROOTLESS_")
    )
    _, data = check(d / "override.conf")
    assert engine(data, "docker")["port_driver"] != "slirp4netns"
    assert any(
        "ignored" in n and "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER" in n for n in data["notes"]
    )
