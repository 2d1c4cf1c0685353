"""ansible/rootless-doctor.yml, run by real ansible-playbook against this machine.

The inventory is the local machine under several names (ansible_connection=local), each with its
own settings: the installed tool, a missing one, a gate (rootless_doctor_fail_on), and pipx
installing a copy of this checkout for the stack user. The play runs as root and becomes the
stack user (su: sudo is not installed here), as an operator's play becomes the engines' owner.
A podman container on slirp4netns publishes a port meanwhile, so the reports hold a real
finding. Needs the real stack, ansible-core and pipx: skips without them, fails in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdtool
import stack

import rootless_doctor

pytestmark = pytest.mark.realstack

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "ansible" / "rootless-doctor.yml"
INSTALL = "Install rootless-doctor for the owner with pipx"  # the task's name


def _ansible_playbook() -> str:
    for cand in (
        Path(sys.executable).with_name("ansible-playbook"),
        shutil.which("ansible-playbook"),
    ):
        if cand and os.access(cand, os.X_OK):
            return str(cand)
    reason = "ansible-playbook not found (pip install '.[test]' installs ansible-core)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _require_pipx() -> None:
    if shutil.which("pipx", path=stack.USER_PATH) is None:
        reason = "pipx not installed (Debian: apt-get install pipx; .ci/setup-stack.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def tool(u: stack.User, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One executable path that runs the tool under test as the user (rootless_doctor_bin)."""
    prefix, extra = rdtool.argv(u)
    if len(prefix) == 1 and not extra:
        return prefix[0]
    d = tmp_path_factory.mktemp("bin")
    script = d / "rootless-doctor"
    env = " ".join(f"{k}={v}" for k, v in extra.items())
    script.write_text(f'#!/bin/sh\nexec env {env} {" ".join(prefix)} "$@"\n')
    script.chmod(0o755)
    d.chmod(0o755)
    for parent in d.parents:
        if parent == Path(d.anchor) or parent.stat().st_mode & 0o005 == 0o005:
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    return str(script)


@pytest.fixture(scope="module")
def container(u: stack.User) -> Iterator[stack.PodmanContainer]:
    # slirp4netns with podman's default port handler: source IPs lost, CONTAINER-SOURCE-IP fails.
    with stack.podman_container(u, network="slirp4netns", name="rd-ansible") as c:
        yield c
    stack.podman_reset(u)  # the checks' `podman info` started podman's pause process


@pytest.fixture(scope="module")
def checkout(u: stack.User) -> Iterator[Path]:
    """A copy of this checkout the stack user owns (pipx builds in the source tree)."""
    d = stack._user_tmpdir(u, "rd-ansible-src-")
    src = d / "rootless-doctor"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".venv"
        ),
    )
    subprocess.run(["chown", "-R", f"{u.uid}:{u.gid}", str(d)], check=True)
    yield src
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def pipx_cleanup(u: stack.User) -> Iterator[None]:
    """Leave the stack user's pipx as found: uninstall, and remove the pipx home if we made it."""
    pipx_home = Path(u.home, ".local/pipx")
    had_home = pipx_home.exists()
    yield
    stack.run_as(u, ["pipx", "uninstall", "rootless-doctor"], timeout=120)
    if not had_home:
        shutil.rmtree(pipx_home, ignore_errors=True)


def _play(
    tmp: Path, inventory: str, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    inv = tmp / "inventory.yml"
    inv.write_text(inventory)
    env = dict(os.environ)
    env.update(
        LC_ALL="C.UTF-8",  # ansible refuses a non-UTF-8 locale
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return subprocess.run(
        [_ansible_playbook(), "-i", str(inv), str(PLAYBOOK), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp,  # the default report dir is relative to here
        env=env,
        check=False,
    )


def _recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP: host → {ok: n, changed: n, failed: n, ...}."""
    rows: dict[str, dict[str, int]] = {}
    recap = out.split("PLAY RECAP", 1)[1]
    for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", recap, re.M):
        rows[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return rows


def _task_status(out: str, task: str, host: str) -> str:
    """'ok', 'changed', 'skipping', 'fatal' ... of ``host`` in the task titled ``task``."""
    block = out.split(f"TASK [rootless_doctor : {task}]", 1)[1].split("\nTASK [", 1)[0]
    m = re.search(rf"^(\w+): \[{re.escape(host)}\]", block, re.M)
    assert m, f"{host} not in task {task!r}:\n{block}"
    return m.group(1)


def _host(u: stack.User, **hostvars: object) -> dict[str, object]:
    """Inventory variables of one name for this machine."""
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become_method": "su",  # sudo is not installed here
        "rootless_doctor_user": u.name,
        **hostvars,
    }


def _inventory(**hosts: dict[str, object]) -> str:
    """A YAML inventory (written as JSON, which YAML reads) with ``hosts`` in group ``fleet``."""
    return json.dumps({"fleet": {"hosts": hosts}}, indent=1)


def test_fleet_reports_summary_and_gates(
    u: stack.User,
    tool: str,
    container: stack.PodmanContainer,
    checkout: Path,
    pipx_cleanup: None,
    tmp_path: Path,
) -> None:
    _require_pipx()
    live = rdtool.check_json(u)
    (tmp_path / "rootless-doctor-reports").mkdir()
    # A report left from an earlier run of a host that gives none now must not survive.
    stale = tmp_path / "rootless-doctor-reports" / "broken.json"
    stale.write_text("{}\n")
    inventory = _inventory(
        plain=_host(u, rootless_doctor_bin=tool),
        gated=_host(u, rootless_doctor_bin=tool, rootless_doctor_fail_on="fail"),
        **{
            "gated-ok": _host(
                u,
                rootless_doctor_bin=tool,
                rootless_doctor_fail_on="fail",
                # a check that passes for the stack user (setup-stack.sh gives it 65536 subuids)
                rootless_doctor_check_args="--only SUBUID",
            )
        },
        broken=_host(u, rootless_doctor_bin="/nonexistent/rootless-doctor"),
        piped=_host(u, rootless_doctor_source=str(checkout)),
    )
    cp = _play(tmp_path, inventory)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 2, out  # 2: some hosts failed
    recap = _recap(out)
    assert {h: r["failed"] for h, r in recap.items()} == {
        "plain": 0,
        "gated": 1,
        "gated-ok": 0,
        "broken": 1,
        "piped": 0,
    }, out
    gate = re.search(r"gated: failing checks ([A-Z0-9, -]+);", out)
    assert gate and "CONTAINER-SOURCE-IP" in gate.group(1).split(", "), out
    assert _task_status(out, INSTALL, "piped") == "changed"

    reports = tmp_path / "rootless-doctor-reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "fleet-summary.json",
        "gated-ok.json",
        "gated.json",
        "piped.json",
        "plain.json",
    ]
    summary = json.loads((reports / "fleet-summary.json").read_text())
    rows = {r["host"]: r for r in summary["hosts"]}
    assert list(rows) == ["plain", "gated", "gated-ok", "broken", "piped"]  # inventory order
    assert summary["hosts_not_checked"] == ["broken"]
    assert "/nonexistent/rootless-doctor" in rows["broken"]["error"]
    assert rows["broken"]["report"] is None and rows["broken"]["exit_code"] is None

    live_fail = sorted(c["id"] for c in live["checks"] if c["status"] == "fail")
    # The container really loses source IPs here (slirp4netns + rootlessport on Podman 4.3).
    assert "CONTAINER-SOURCE-IP" in live_fail
    for host in ("plain", "gated", "piped"):
        report = json.loads((reports / f"{host}.json").read_text())
        row = rows[host]
        # Ran as the engines' owner, and saw what a direct run sees.
        run_as = next(c for c in report["checks"] if c["id"] == "RUN-AS")
        assert run_as["status"] == "ok" and u.name in run_as["detail"], run_as
        assert sorted(c["id"] for c in report["checks"] if c["status"] == "fail") == live_fail
        assert row["exit_code"] == 1 and row["error"] == ""
        assert row["tool_version"] == report["tool_version"] == rootless_doctor.__version__
        assert sorted(row["failing_checks"]) == live_fail
        assert row["warning_checks"] == [c["id"] for c in report["checks"] if c["status"] == "warn"]
        podman = next(e for e in report["engines"] if e["engine"] == "podman")
        ct = next(c for c in podman["containers"] if c["name"] == container.name)
        assert ct["source_ip_preserved"] is False
        word = {True: "kept", False: "lost", None: "unknown"}
        verdicts = {e["engine"]: e["source_ip"] for e in row["engines"]}
        # The summary row says what that host's own report says, engine by engine ...
        assert verdicts == {e["engine"]: word[e["source_ip_preserved"]] for e in report["engines"]}
        # ... and agrees with the direct run on every engine that run saw (a run at another
        # moment may see one more short-lived process, e.g. a standalone RootlessKit).
        live_verdicts = {e["engine"]: word[e["source_ip_preserved"]] for e in live["engines"]}
        assert {k: verdicts.get(k) for k in live_verdicts} == live_verdicts
        assert verdicts["podman"] == "lost"
    assert summary["hosts_failing"] == ["plain", "gated", "piped"]
    only = json.loads((reports / "gated-ok.json").read_text())
    assert [c["id"] for c in only["checks"]] == ["SUBUID"]
    assert rows["gated-ok"]["exit_code"] == 0 and rows["gated-ok"]["failing_checks"] == []

    # pipx put the tool where the play found it, for the owner.
    link = Path(u.home, ".local/bin/rootless-doctor")
    assert link.is_symlink() and link.lstat().st_uid == u.uid

    # Again, the pipx host only: already installed, nothing to install.
    again = _play(tmp_path, inventory, "--limit", "piped")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _task_status(again.stdout, INSTALL, "piped") == "ok"


def test_bad_settings_stop_before_any_host(u: stack.User, tmp_path: Path) -> None:
    inventory = _inventory(plain=_host(u, rootless_doctor_fail_on="sometimes"))
    cp = _play(tmp_path, inventory, timeout=300)
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0
    assert "rootless_doctor_fail_on" in out and "sometimes" in out
    assert not (tmp_path / "rootless-doctor-reports").exists()
