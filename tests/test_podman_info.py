"""host/podman_info.py: the fields check reads of ``podman info``, from their sources.

Offline, on fake hosts rebuilt from what was captured together on each real stack (bookworm
Podman 4.3.1, trixie 5.4.2, sid 5.8.6; tests/data/podman-sources, SOURCES.md): the derived fields
must equal ``parse.podman_info`` of that stack's own ``podman info``; and every input the
derivation cannot vouch for must make ``gather`` run ``podman info`` and say why. The same
comparison on the live stacks is in tests/test_podman_info_realstack.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA
from test_host import FakeHost, Served

from rootless_doctor import host, parse
from rootless_doctor.host import podman_info as pi
from rootless_doctor.model import CmdOutput, HostFacts, PodmanFacts

SOURCES = DATA / "podman-sources"
STACKS = ("bookworm", "trixie", "sid")
FIELDS = (
    "version",
    "rootless",
    "network_backend",
    "rootless_network_cmd",
    "rootless_port_forwarder",
    "pasta_version",
    "slirp4netns_version",
)
INFO = ("podman", "info", "--format", "json")


def fields(p: PodmanFacts | None) -> dict[str, object]:
    assert p is not None
    return {f: getattr(p, f) for f in FIELDS}


def stack_host(tmp_path: Path, stack: str, **env: str) -> tuple[FakeHost, Served]:
    """The fake host of ``stack``: its executables, conf files, store file; its commands served."""
    src = SOURCES / stack
    fake = FakeHost(tmp_path, **env)
    for rel in (src / "executables.txt").read_text().split():
        fake.file(f"/{rel}", "\x7fELF (a stand-in: Served answers its commands)\n", 0o755)
    for part, base in (("root", fake.root), ("home", fake.home)):
        for f in (src / part).rglob("*"):
            if f.is_file():
                dest = base / f.relative_to(src / part)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(f.read_text())
    answers: dict[tuple[str, ...], CmdOutput | str] = {
        INFO: (src / "podman-info.json").read_text(),
        ("podman", "--version"): (src / "commands/podman--version.txt").read_text(),
    }
    for tool in ("slirp4netns", "pasta"):
        out = src / f"commands/{tool}--version.txt"
        if out.exists():
            code = int((src / f"commands/{tool}--version.code").read_text())
            answers[(tool, "--version")] = CmdOutput(
                argv=(tool, "--version"), code=code, stdout=out.read_text()
            )
    return fake, Served(answers)


def gather(fake: FakeHost, runner: Served, **kw: bool) -> HostFacts:
    return host.gather(fake.paths, runner=runner, cwd=fake.home, engines=("podman",), **kw)


def source_note(facts: HostFacts) -> str:
    notes = [n for n in facts.notes if n.startswith("podman:")]
    assert len(notes) == 1, facts.notes
    return notes[0]


@pytest.mark.parametrize("stack", STACKS)
def test_derived_fields_equal_podman_info(tmp_path: Path, stack: str) -> None:
    fake, runner = stack_host(tmp_path, stack)
    facts = gather(fake, runner)
    assert not runner.ran(*INFO), source_note(facts)
    assert source_note(facts).startswith(pi.DERIVED)
    want = parse.podman_info((SOURCES / stack / "podman-info.json").read_text())
    assert fields(facts.podman) == fields(want)
    # and the info route gives the same facts, so check's verdicts cannot differ
    fake2, runner2 = stack_host(tmp_path / "again", stack)
    slow = gather(fake2, runner2, podman_info=True)
    assert runner2.ran(*INFO) and source_note(slow).startswith(pi.RAN)
    assert fields(slow.podman) == fields(facts.podman)


def test_conf_changes_the_network_cmd_and_backend(tmp_path: Path) -> None:
    """A user drop-in choosing slirp4netns and netavark explicitly: the derivation follows it
    (Podman 5.1+ reports containers.conf's value as rootlessNetworkCmd)."""
    fake, runner = stack_host(tmp_path, "sid")
    fake.file(
        "~/.config/containers/containers.conf.d/50-net.conf",
        '[network]\ndefault_rootless_network_cmd = "slirp4netns"\nnetwork_backend = "netavark"\n',
    )
    facts = gather(fake, runner)
    p = fields(facts.podman)
    assert p["rootless_network_cmd"] == "slirp4netns" and p["network_backend"] == "netavark"
    assert "network backend from containers.conf" in source_note(facts)


def test_helper_dir_binary_is_the_one_podman_reports(tmp_path: Path) -> None:
    """A pasta in a helper binary dir comes before PATH's (FindHelperBinary): its --version."""
    fake, runner = stack_host(tmp_path, "sid")
    fake.file("/usr/local/libexec/podman/pasta", "#!/bin/sh\n", 0o755)
    ran: list[str] = []

    def answer(argv: object, **kw: object) -> CmdOutput:
        args = tuple(str(a) for a in argv)  # type: ignore[attr-defined]
        ran.append(args[0])
        if args[0].endswith("/usr/local/libexec/podman/pasta"):
            return CmdOutput(argv=args, code=0, stdout="pasta 2024_05_23.765eb0b\n")
        return runner(args, **kw)  # type: ignore[arg-type]

    facts = host.gather(fake.paths, runner=answer, cwd=fake.home, engines=("podman",))
    assert facts.podman is not None and facts.podman.pasta_version == "2024_05_23.765eb0b"
    assert any(r.endswith("/usr/local/libexec/podman/pasta") for r in ran)


REFUSALS = [
    ("CONTAINER_HOST set", {"CONTAINER_HOST": "unix:///run/podman.sock"}, None, "CONTAINER_HOST"),
    ("connection", {"CONTAINER_CONNECTION": "machine"}, None, "remote Podman"),
    ("relative PATH", {"PATH": "/usr/bin:bin"}, None, "relative"),
    ("missing CONTAINERS_CONF", {"CONTAINERS_CONF": "/etc/nope.conf"}, None, "does not exist"),
    ("podman is a script", {}, ("/usr/bin/podman", "#!/bin/sh\nexec flatpak-spawn\n"), "script"),
    (
        "remote conf",
        {},
        ("~/.config/containers/containers.conf", "[engine]\nremote = true\n"),
        "remote",
    ),
    ("broken conf", {}, ("~/.config/containers/containers.conf", "[engine\n"), "not TOML"),
    ("storage.conf", {}, ("~/.config/containers/storage.conf", "[storage]\n"), "storage.conf"),
    (
        "rootless storage path",
        {},
        ("/etc/containers/storage.conf", '[storage]\nrootless_storage_path = "/srv/$USER"\n'),
        "rootless_storage_path",
    ),
    ("cni on 5", {}, ("~/.local/share/containers/storage/defaultNetworkBackend", "cni"), "cni"),
    (
        "store file odd",
        {},
        ("~/.local/share/containers/storage/defaultNetworkBackend", "x"),
        "says",
    ),
    (
        "unknown network cmd",
        {},
        ("~/.config/containers/containers.conf", '[network]\ndefault_rootless_network_cmd = "x"\n'),
        "default_rootless_network_cmd",
    ),
    (
        "BINDIR helper dir",
        {},
        ("~/.config/containers/containers.conf", '[engine]\nhelper_binaries_dir = ["$BINDIR"]\n'),
        "helper_binaries_dir",
    ),
    (
        "rootless conf",
        {},
        ("/etc/containers/containers.rootless.conf", "[network]\n"),
        "containers.rootless.conf",
    ),
]


@pytest.mark.parametrize(("case", "env", "file", "said"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_untrusted_input_runs_podman_info(
    tmp_path: Path, case: str, env: dict[str, str], file: tuple[str, str] | None, said: str
) -> None:
    fake, runner = stack_host(tmp_path, "sid", **env)
    if file is not None:
        fake.file(*file)
    facts = gather(fake, runner)
    note = source_note(facts)
    assert runner.ran(*INFO) and note.startswith(pi.RAN), note
    assert said in note
    if case not in ("broken conf", "relative PATH", "missing CONTAINERS_CONF"):
        # podman info's answer is used as before
        assert facts.podman is not None and facts.podman.version == "5.8.6"


def test_missing_store_file_runs_podman_info(tmp_path: Path) -> None:
    """Before Podman's first use the backend is not chosen yet: podman info chooses it."""
    fake, runner = stack_host(tmp_path, "bookworm")
    (fake.home / ".local/share/containers/storage/defaultNetworkBackend").unlink()
    facts = gather(fake, runner)
    assert runner.ran(*INFO) and "Podman writes it on first use" in source_note(facts)
    assert fields(facts.podman)["network_backend"] == "netavark"  # from podman info


@pytest.mark.parametrize(
    "version", ["4.9.3", "4.4.0", "5.0.2", "5.9.0", "6.0.0", "4.3.1-dev2", "5.8.6-rc1"]
)
def test_versions_outside_the_proven_lines_run_podman_info(tmp_path: Path, version: str) -> None:
    fake, runner = stack_host(tmp_path, "sid")
    runner.answers[("podman", "--version")] = f"podman version {version}\n"
    facts = gather(fake, runner)
    proven = version.startswith(("4.3.", "5.0.", "5.8."))
    assert runner.ran(*INFO) is not proven, source_note(facts)
    if not proven:
        assert f"Podman {version}" in source_note(facts)
    elif version.startswith("5.0."):  # 5.0's info has no rootlessNetworkCmd yet
        assert facts.podman is not None and facts.podman.rootless_network_cmd is None


def test_root_and_failed_version_run_podman_info(tmp_path: Path) -> None:
    fake, runner = stack_host(tmp_path, "trixie")
    runner.answers[("podman", "--version")] = CmdOutput(argv=("podman",), code=125, stderr="boom")
    facts = gather(fake, runner)
    assert runner.ran(*INFO) and "boom" in source_note(facts)
    assert pi.refusal(Path("/usr/bin/podman"), {"PATH": "/usr/bin"}, euid=0) is not None
    assert pi.shape_of("5.8.6") is not None and pi.shape_of("5.8") is None


def test_prefetched_commands_are_all_taken_over(tmp_path: Path) -> None:
    """prefetch() starts the first Podman query and the tools' --version as real processes;
    gather() takes every one of them over (same argv and environment), none is left to end.
    (The derived route with real processes: tests/test_podman_info_realstack.py.)"""
    src = SOURCES / "sid"
    fake, _ = stack_host(tmp_path, "sid")
    fake.binary(
        "podman",
        f'#!/bin/sh\ncase "$1" in --version) cat {src}/commands/podman--version.txt;;\n'
        f"info) cat {src}/podman-info.json;; *) exit 125;; esac\n",
    )
    for tool in ("slirp4netns", "pasta"):
        fake.binary(tool, f"#!/bin/sh\ncat {src}/commands/{tool}--version.txt\n")
    from rootless_doctor.host.runner import PREFETCHED

    host.prefetch(fake.paths)
    try:
        assert PREFETCHED
        facts = host.gather(fake.paths, cwd=fake.home)
        assert not PREFETCHED, "a prefetched command was not taken over"
    finally:
        PREFETCHED.end()
    # a script podman (as a toolbox wrapper is) gets podman info: asked early, taken over too
    assert source_note(facts) == f"{pi.RAN}: {fake.root}/usr/bin/podman is a script"
    want = parse.podman_info((src / "podman-info.json").read_text())
    assert fields(facts.podman) == fields(want)
