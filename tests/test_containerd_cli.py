"""nerdctl / rootless containerd read from what users paste (issue 8, part 2), through the CLI.

containerd-rootless.sh (nerdctl extras/rootless) runs containerd under RootlessKit with
CONTAINERD_ROOTLESS_ROOTLESSKIT_{NET,PORT_DRIVER,FLAGS} from the unit and its drop-ins; default
net slirp4netns → vpnkit → gvisor-tap-vsock, port driver builtin. There is no userland proxy, so
RootlessKit ≥ 3 builtin keeps TCP client IPs (rootlesskit PR 565); before 3, builtin shows
127.0.0.1. Captures: tests/data/nerdctl (sources in tests/data/SOURCES.md).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from conftest import DATA
from fromcheck import check

N = DATA / "nerdctl"
STATUS_2021 = N / "systemctl-status-containerd-rootless-dropin-override-journal.txt"
CONSOLE_2024 = N / "setuptool-install-console-al2023-detach-netns-with-elision.txt"
PSTREE_2024 = N / "pstree-al2023-rootlesskit-containerd-with-elisions.txt"
UNIT = N / "containerd-rootless-user-unit-rendered-from-nerdctl-setuptool-8da5040.service"
PR_VERSION = N / "nerdctl-pr4971-description-version-server-rootlesskit-2.3.1.txt"


def containerd(data: dict[str, Any]) -> dict[str, Any]:
    found = [e for e in data["engines"] if e["engine"] == "containerd"]
    assert len(found) == 1, data["engines"]
    return found[0]


def ids(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in data["checks"]}


def test_systemctl_status_tree_is_rootless_containerd_not_docker() -> None:
    _, data = check(STATUS_2021)
    e = containerd(data)
    assert e["rootless"] is True
    assert (e["network_driver"], e["port_driver"]) == ("slirp4netns", "builtin")
    # no RootlessKit version in the paste: builtin loses IPs before 3.0 and keeps TCP from 3.0
    assert e["source_ip_preserved"] is None
    assert "3" in e["reason"]
    assert not [x for x in data["engines"] if x["engine"] in ("docker", "rootlesskit")]


def test_status_and_nerdctl_version_decide_builtin_before_3_loses() -> None:
    code, data = check(STATUS_2021, PR_VERSION)
    e = containerd(data)
    assert e["rootlesskit_version"] == "2.3.1"
    assert e["source_ip_preserved"] is False
    assert code == 1
    c = ids(data)["CONTAINERD-SOURCE-IP"]
    assert c["status"] == "fail" and "fix containerd" in c["remedy"]


def _nerdctl_version(kit: str, port_driver: str, seed: int) -> str:
    """`nerdctl version` as nerdctl ≥ 2.3.4 prints it (pkg/infoutil rootlessKitVersion, cmd
    version.go): tab-separated, the rootlesskit details from a Go map, so in any order."""
    details = [
        ("ApiVersion", "1.1.1"),
        ("NetworkDriver", "slirp4netns"),
        ("PortDriver", port_driver),
        ("StateDir", "/run/user/1000/containerd-rootless"),
    ]
    random.Random(seed).shuffle(details)
    lines = [
        "Client:",
        " Version:\tv2.3.5",
        " OS/Arch:\tlinux/amd64",
        " Git commit:\t0d6d7c3",
        " buildctl:",
        "  Version:\t",
        "",
        "Server:",
        " containerd:",
        "  Version:\tv2.2.1",
        "  GitCommit:\tdea7da592f5d1d2b7755e3a161be07f43fad8f75",
        " runc:",
        "  Version:\t1.3.4",
        " rootlesskit:",
        f"  Version:\t{kit}",
        *(f"  {k}:\t{v}" for k, v in details),
    ]
    return "\n".join(lines) + "\n"


def test_rootlesskit_3_builtin_keeps_tcp_ips_without_any_setting(tmp_path: Path) -> None:
    for seed in range(4):
        f = tmp_path / f"nerdctl-version-{seed}.txt"
        f.write_text(_nerdctl_version("3.1.0", "builtin", seed))
        _, data = check(f)
        e = containerd(data)
        assert (e["rootlesskit_version"], e["port_driver"]) == ("3.1.0", "builtin")
        assert e["source_ip_preserved"] is True
        assert "TCP" in e["reason"]
        # nothing like Docker's userland-proxy finding applies to containerd
        assert "DOCKER-USERLAND-PROXY" not in ids(data)


def test_unit_and_dropin_configure_the_slirp4netns_port_driver(tmp_path: Path) -> None:
    d = tmp_path / "containerd.service.d"
    d.mkdir()
    shutil.copy(N / "nerdctl-ci-dropin-port-slirp4netns.conf", d / "port-slirp4netns.conf")
    _, data = check(UNIT, d / "port-slirp4netns.conf")
    e = containerd(data)
    assert e["port_driver"] == "slirp4netns"
    assert e["source_ip_preserved"] is True


def test_dropin_written_but_daemon_not_restarted_is_drift(tmp_path: Path) -> None:
    # The 2021 status shows "Drop-In: .../override.conf" and still --port-driver=builtin.
    d = tmp_path / "containerd.service.d"
    d.mkdir()
    shutil.copy(
        N / "rootlesscontaine-rs-override-port-driver-slirp4netns.conf", d / "override.conf"
    )
    _, data = check(STATUS_2021, UNIT, d / "override.conf")
    drift = ids(data)["CONTAINERD-DRIVER-DRIFT"]
    assert drift["status"] in ("warn", "fail")
    assert "slirp4netns" in drift["detail"] and "builtin" in drift["detail"]
    assert "restart containerd" in drift["remedy"]


def test_docker_variable_in_a_containerd_dropin_is_ignored(tmp_path: Path) -> None:
    # The launcher reads CONTAINERD_ROOTLESS_*; a DOCKERD_ROOTLESS_* line there does nothing.
    d = tmp_path / "containerd.service.d"
    d.mkdir()
    text = (N / "rootlesscontaine-rs-override-port-driver-slirp4netns.conf").read_text()
    (d / "override.conf").write_text(text.replace("CONTAINERD_ROOTLESS_", "DOCKERD_ROOTLESS_"))
    _, data = check(UNIT, d / "override.conf")
    e = containerd(data)
    assert e["port_driver"] != "slirp4netns"
    said = " ".join(data["notes"]) + " ".join(c["detail"] for c in data["checks"])
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER" in said and "ignored" in said


def test_setuptool_console_with_elision_reads_the_tree_and_notes_the_skip() -> None:
    _, data = check(CONSOLE_2024)
    e = containerd(data)
    assert (e["network_driver"], e["port_driver"]) == ("slirp4netns", "builtin")
    # --detach-netns exists from RootlessKit 2.0: at least 2, still unknown whether ≥ 3
    assert e["source_ip_preserved"] is None
    assert any("..." in n for n in data["notes"])


def test_pstree_without_arguments_finds_containerd_but_no_drivers() -> None:
    _, data = check(PSTREE_2024)
    e = containerd(data)
    # no arguments: the drivers are the launcher's defaults at best, and no version: undecided
    assert e["port_driver"] in (None, "builtin") and e["source_ip_preserved"] is None
    assert "default" in e["reason"] or e["port_driver"] is None
    assert any("..." in n for n in data["notes"])


def test_nerdctl_info_is_containerd_not_docker_and_rootful_here() -> None:
    _, data = check(N / "nerdctl-system-info-rootful-containerd-1.7.2-sudo.txt")
    assert not [e for e in data["engines"] if e["engine"] == "docker"]
    e = containerd(data)
    assert e["rootless"] is False and e["version"] == "1.7.2"
