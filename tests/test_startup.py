"""What a command loads as it starts (issue 12): `check --from` is the pure side only.

Each test runs the console entry (entry.main, as the ``rootless-doctor`` script does) in a fresh
interpreter and reads ``sys.modules`` as the process leaves through ``os._exit``: everything it
imported, whichever way (``-X importtime`` and the "import" audit event miss what
``importlib.import_module`` loads, e.g. host/'s lazy names). The speed itself is measured in
bench/check.py, not here.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, read_terminal

REPO = Path(__file__).resolve().parent.parent

# A bug report's worth of pasted files (the same as bench/check.py's --from row).
PASTES = [
    DATA / "docker-version" / "docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt",
    DATA / "daemon-json" / "rdtest-captured-rootless-userland-proxy-false.json",
    DATA / "ps" / "docker-20.10.24-debian12-rootless-builtin-ps-eo.txt",
]

# What an offline diagnosis must not pay for: the live side (host/ beyond its bounded file
# reader, the subprocess runner, the probe), the writer and the fix planners, the other commands,
# and the third-party libraries only they use. Prefixes: a name or any submodule of it.
NOT_FOR_CHECK_FROM = (
    "rootless_doctor.host.runner",
    "rootless_doctor.host.gathering",
    "rootless_doctor.host.system",
    "rootless_doctor.host.podman",
    "rootless_doctor.host.docker",
    "rootless_doctor.host.containers",
    "rootless_doctor.host.containerd",
    "rootless_doctor.host.identity",
    "rootless_doctor.host.composefiles",
    "rootless_doctor.host.daemon",
    "rootless_doctor.host.layout",
    "rootless_doctor.host.rootlesskit",
    "rootless_doctor.host.netns_dump",
    "rootless_doctor.apply",
    "rootless_doctor.probe",
    "rootless_doctor.checks.probe",
    "rootless_doctor.collect",
    "rootless_doctor.redact",
    "rootless_doctor.fixes",
    "rootless_doctor.cli_fix",
    "rootless_doctor.throughput",
    "rootless_doctor.envfile",  # only with a compose file
    "psutil",
    "pyroute2",
    "tomlkit",
    "ruamel",  # YAML input only
    "dotenv",
    "filelock",
    "rich",  # render writes its own colour codes (Typer loads Rich for --help and usage errors)
)


# entry.main ends the process with os._exit (no interpreter teardown): list sys.modules there.
RUN_ENTRY = """
import os, sys
def leave(status, _exit=os._exit):
    sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
    sys.stderr.flush()
    _exit(status)
os._exit = leave
sys.argv[0] = "rootless-doctor"
from rootless_doctor.entry import main
main()
"""


def imported(
    *args: str, terminal: bool = False
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``rootless-doctor ARGS`` as a fresh process (its stdout a pipe, or a terminal of the
    test's own); its result and every module it imported."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-c", RUN_ENTRY, *args]
    if terminal:
        leader, follower = pty.openpty()
        with subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=REPO) as proc:  # fmt: skip
            os.close(follower)
            out = read_terminal(leader)
            err = proc.stderr.read() if proc.stderr else ""
            code = proc.wait(timeout=60)
        os.close(leader)
        cp = subprocess.CompletedProcess(argv, code, out.decode(errors="replace"), err)
    else:
        cp = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False
        )
    marker = cp.stderr.rpartition("\nMODULES ")[2]
    assert marker != cp.stderr, f"it did not leave through entry._exit: {cp.stderr[-2000:]}"
    return cp, set(marker.split())


def unwanted(names: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


@pytest.mark.parametrize("json_out", [True, False], ids=["json", "text"])
def test_check_from_loads_only_the_pure_side(json_out: bool) -> None:
    cp, names = imported(
        "check", *(["--json"] if json_out else []), *(a for p in PASTES for a in ("--from", str(p)))
    )
    assert cp.returncode in (0, 1), cp.stderr[-2000:]
    assert "builtin" in cp.stdout  # it diagnosed the pastes (RootlessKit's port driver)
    # the modules that do the work are seen (the listing is complete, not empty)
    assert {"rootless_doctor.offline", "rootless_doctor.checks", "rootless_doctor.render"} <= names
    assert "rootless_doctor.host.files" in names  # the bounded reader of the pasted files
    assert unwanted(names, NOT_FOR_CHECK_FROM) == []


def test_check_from_on_a_terminal_is_coloured_without_rich() -> None:
    cp, names = imported("check", *(a for p in PASTES for a in ("--from", str(p))), terminal=True)
    assert cp.returncode in (0, 1), cp.stderr[-2000:]
    assert "\x1b[1;31m" in cp.stdout or "\x1b[33m" in cp.stdout  # FAIL or WARN, coloured
    assert unwanted(names, NOT_FOR_CHECK_FROM) == []


def test_fix_group_is_built_when_asked_for() -> None:
    """`fix` is loaded when a fix command runs (or help lists it), not for `check`."""
    cp, names = imported("fix", "--help")
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert "rootless_doctor.cli_fix" in names and "privileged-ports" in cp.stdout
    # still no writer, planner or host module: those load when a fix command runs
    assert unwanted(names, ("rootless_doctor.apply", "rootless_doctor.fixes")) == []


def test_the_live_side_loads_its_libraries_when_used() -> None:
    """Importing the live check's modules (gather and every reader it calls) loads no compose-env
    reader (only for a compose file), thread pool with its logging (only when queries run in
    parallel), YAML, psutil, netlink library or hashlib (a named Docker context): those load
    where they are used."""
    code = (
        "import sys\n"
        "import rootless_doctor.host.gathering, rootless_doctor.checks, rootless_doctor.render\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                        cwd=REPO, timeout=60, check=False)  # fmt: skip
    assert cp.returncode == 0, cp.stderr[-2000:]
    names = set(cp.stdout.split())
    assert {"rootless_doctor.host.system", "rootless_doctor.host.podman"} <= names
    banned = ("rootless_doctor.envfile", "concurrent", "logging", "ruamel", "psutil", "pyroute2",
              "hashlib")  # fmt: skip
    assert unwanted(names, banned) == []
