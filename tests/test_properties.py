"""Property-based suite (issue 11): hostile variants of real files through the real command line.

- ``check --from``: every capture in tests/data (every recogniser), mutated (deep nesting, runs
  of blanks and tree art, YAML anchors/aliases/merge keys, repeated lines, cut, NUL and BOM
  bytes...) → exit 0/1/2, no traceback, bounded memory (wait4 peak RSS under an AS cap), no hang;
  exit 0/1 prints the documented JSON.
- every fix writer (compose, Quadlet, containers.conf, the docker drop-in, daemon.json, the
  sysctl.d file) on real upstream files, edited as people edit them (comments, blank lines,
  CRLF, no final newline, trailing blanks) and sometimes broken → the same bounds; a refused
  file is untouched; a written file keeps every line the fix does not own byte for byte; a
  second run changes nothing; ``fix --undo`` gives the original back byte for byte.

Examples: the ``ci`` profile (used when CI=true, or HYPOTHESIS_PROFILE=ci) runs a fixed,
derandomized number of examples per test, stated in ``CI_EXAMPLES``; ``deep`` runs many more
(`HYPOTHESIS_PROFILE=deep`). Each example is whole processes of the tool, so the count is small.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import hostile
import pytest
import stack
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CI_EXAMPLES = {"from": 60, "combined": 20, "writer": 5, "sysctl": 3}
_COMMON = {
    "deadline": None,  # whole processes on a shared machine; hangs are caught by hostile.run
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "report_multiple_bugs": False,
}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.register_profile("deep", **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI") == "true" else "dev"
)
settings.load_profile(PROFILE)
_SCALE = {"ci": 1, "dev": 1, "deep": 25}[PROFILE]


def examples(kind: str) -> int:
    return CI_EXAMPLES[kind] * _SCALE


# --------------------------------------------------------------------------- inputs

CAPTURES = sorted(
    p for p in DATA.rglob("*") if p.is_file() and p.name != "SOURCES.md" and p.stat().st_size
)

# Pieces people paste by accident and pieces an attacker picks: structure openers and closers,
# YAML anchors/aliases/merge keys, systemd/ps tree art, long blank runs, NUL, BOM, CR, bad UTF-8.
NASTY = [
    "[", "{", "]", "}", "[" * 300, "{" * 300, "&a ", "*a", "<<: *a\n", "- &a [*a, *a]\n",
    "? ", "- ", ": ", "\t", " " * 5000, "│ " * 1000, "├─", "└─ 1234 /usr/bin/rootlesskit\n",
    "\\_ ", "  PID COMMAND\n", "\x00", "\ufeff", "\r", "\r\n", "\n" * 50, "#", "=", "'", '"',
    "[Service]\n", "services:\n", "host:\n", "version:\n", "- Port Driver: builtin\n",
    "Environment=", "Server: Docker Engine\n API version: 1.41\n", "é", "9" * 40, "\u2028",
]  # fmt: skip
NASTY_BYTES = [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80"]
MAX_SIZE = 2_000_000


class Case(tuple[Path, bytes]):
    """(source capture, bytes) that prints short: the source, the size and a hash; the bytes of
    a failing case are kept in $TMPDIR/rd-h11-case-<hash> to reproduce it by hand."""

    def __repr__(self) -> str:
        src, data = self
        digest = hashlib.sha256(data).hexdigest()[:12]
        keep = Path(tempfile.gettempdir(), f"rd-h11-case-{digest}")
        if not keep.exists():
            keep.write_bytes(data)
        return f"Case({src.name}, {len(data)} bytes, head={data[:120]!r}, saved={keep})"


@st.composite
def mutated(draw: st.DrawFn) -> Case:
    src = draw(st.sampled_from(CAPTURES))
    data = bytearray(src.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "dup", "repeat", "nest", "cut", "bytes"]))
        i = draw(st.integers(0, len(data)))
        if op == "insert":
            piece = draw(st.sampled_from(NASTY) | st.text(max_size=40))
            data[i:i] = piece.encode("utf-8", "surrogatepass")
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 200))]
        elif op == "dup":
            j = draw(st.integers(i, min(len(data), i + 400)))
            data[i:i] = data[i:j] * draw(st.integers(1, 200))
        elif op == "repeat":  # one line many times: long journals, ps listings
            lines = bytes(data).splitlines(keepends=True) or [b"\n"]
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k] = [lines[k]] * draw(st.integers(100, 5000))
            data = bytearray(b"".join(lines))
        elif op == "nest":
            n = draw(st.integers(50, 3000))
            opener, closer = draw(st.sampled_from([(b"[", b"]"), (b"{", b"}"), (b"- ", b"")]))
            data[i:i] = opener * n + closer * draw(st.integers(0, n))
        elif op == "cut":
            del data[i:]
        else:
            data[i:i] = draw(st.sampled_from(NASTY_BYTES))
        del data[MAX_SIZE:]
    return Case((src, bytes(data)))


SCHEMA_KEYS = {"schema_version", "engines", "checks", "notes"}


@settings(max_examples=examples("from"))
@given(case=mutated())
def test_check_from_any_mutation_is_bounded(case: tuple[Path, bytes], tmp_path: Path) -> None:
    src, data = case
    f = tmp_path / f"paste-{os.getpid()}.txt"
    f.write_bytes(data)
    o = hostile.run(["check", "--json", "--from", str(f)], hang_s=30)
    hostile.assert_bounded(o)
    if o.code == 2:
        hostile.one_line_error(o, str(f))
    else:
        report = json.loads(o.stdout)
        assert set(report) >= SCHEMA_KEYS, (src.name, sorted(report))


@settings(max_examples=examples("combined"))
@given(cases=st.lists(mutated(), min_size=2, max_size=3), stdin=st.booleans())
def test_check_from_several_mutated_files_combine_within_bounds(
    cases: list[Case], stdin: bool, tmp_path: Path
) -> None:
    """Several pastes combine into one picture (offline merge): hostile ones too; the first may
    come on standard input (`--from -`)."""
    args = ["check", "--json"]
    names = []
    for i, (_, data) in enumerate(cases):
        f = tmp_path / f"paste-{i}.txt"
        f.write_bytes(data)
        names.append(str(f))
        args += ["--from", "-" if stdin and i == 0 else str(f)]
    o = hostile.run(args, hang_s=30, stdin=cases[0][1] if stdin else None)
    hostile.assert_bounded(o)
    if o.code == 2:
        line = hostile.one_line_error(o)
        assert any(n in line for n in names[stdin:]) or "stdin" in line or "-:" in line, line
    else:
        assert set(json.loads(o.stdout)) >= SCHEMA_KEYS


# --------------------------------------------------------------------------- writers


@st.composite
def edited(draw: st.DrawFn, sources: list[Path], comments: bool = True) -> Case:
    """A real file as people leave it: comments (where the format has them) and blank lines
    added, CRLF, no final newline, trailing blanks; one time in eight a hostile piece too."""
    src = draw(st.sampled_from(sources))
    lines = src.read_bytes().splitlines(keepends=True)
    extra = [b"# added by hand\n", b"#\n"] if comments else []
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, len(lines)))
        lines.insert(k, draw(st.sampled_from([*extra, b"\n", b"   \n"])))
    if lines and draw(st.booleans()):
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = lines[k].rstrip(b"\r\n") + b"  " + lines[k][len(lines[k].rstrip(b"\r\n")) :]
    data = b"".join(lines)
    if draw(st.integers(0, 3)) == 0:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        data = data.rstrip(b"\r\n")
    if draw(st.integers(0, 7)) == 0:
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.sampled_from(NASTY)).encode() + data[i:]
    return Case((src, data))


def _touched(before: bytes, after: bytes) -> list[bytes]:
    """Lines of ``before`` that ``after`` does not keep byte for byte (with their endings)."""
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    out: list[bytes] = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            out.extend(a[i1:i2])
    return out


def _terminated_for_append(line: bytes, before: bytes, after: bytes | None) -> bool:
    """The last line of ``before`` had no line end and the fix appended after it: it gets one
    (the line itself is kept; a newline added with nothing after it is not allowed)."""
    if after is None or before.endswith((b"\n", b"\r")) or not before.endswith(line):
        return False
    return any(line + eol in after and not after.endswith(line + eol) for eol in (b"\r\n", b"\n"))


def _manifest_files(sb: hostile.Sandbox) -> dict[str, object]:
    for m in (sb.state / "manifest.json", *sb.base.glob("**/rootless-doctor/manifest.json")):
        if m.is_file():
            files: dict[str, object] = json.loads(m.read_text())["files"]
            return files
    return {}


def writer_properties(
    sb: hostile.Sandbox, target: Path, before: bytes, owned: str, run: Callable[[], hostile.Outcome]
) -> None:
    """The writer contract on one file: ``owned`` matches every line the fix may change."""
    mode = target.stat().st_mode if target.exists() else None
    o = run()
    hostile.assert_bounded(o, codes=(0, 2))
    now = target.read_bytes() if target.exists() else None
    if o.code == 2:
        hostile.one_line_error(o)
        assert now == before, "a refused fix changed the file"
        assert not _manifest_files(sb), "a refused fix left a manifest entry"
        return
    if now == before or "wrote" not in o.stdout:
        assert now == before, "said nothing was written, but the file changed"
    else:
        stray = [
            ln
            for ln in _touched(before, now or b"")
            if not re.search(owned, ln.decode()) and not _terminated_for_append(ln, before, now)
        ]
        assert not stray, f"lines the fix does not own were changed: {stray[:5]}"
        if mode is not None:
            assert target.stat().st_mode == mode
    again = run()
    hostile.assert_bounded(again, codes=(0,))
    assert (target.read_bytes() if target.exists() else None) == now, "a second run changed it"
    assert "wrote" not in again.stdout, again.stdout
    undone = sb.fix("--undo")
    hostile.assert_bounded(undone, codes=(0,))
    assert (target.read_bytes() if target.exists() else b"") == before, "undo is not byte-exact"
    if mode is not None:
        assert target.stat().st_mode == mode
    assert not _manifest_files(sb)


def _user() -> stack.User:
    stack.require()
    return stack.user()


COMPOSE_FILES = sorted((DATA / "compose").glob("*.yaml"))
QUADLETS = sorted((DATA / "systemd").glob("*.container"))
CONFS = sorted((DATA / "containers-conf").glob("*.conf"))
DROPINS = sorted(p for p in (DATA / "systemd").glob("*.conf"))
DAEMON_JSONS = sorted((DATA / "daemon-json").glob("*.json"))
SYSCTLS = sorted((DATA / "sysctl").glob("*.conf"))
UNITS = DATA / "systemd"
UNIT_V20 = UNITS / "docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"
UNIT_V29 = UNITS / "docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service"


@pytest.mark.realstack
@settings(max_examples=examples("writer"))
@given(case=edited(COMPOSE_FILES))
def test_fix_compose_writer(case: tuple[Path, bytes]) -> None:
    u = _user()
    _, before = case
    with hostile.sandbox(u) as sb:
        f = sb.put("work/compose.yaml", before)
        writer_properties(
            sb, f, before, r"network_mode|NETWORK_INTERFACE|environment",
            lambda: sb.fix("compose", str(f), "--engine", "podman"),
        )  # fmt: skip


@pytest.mark.realstack
@settings(max_examples=examples("writer"))
@given(case=edited(QUADLETS))
def test_fix_quadlet_writer(case: tuple[Path, bytes]) -> None:
    u = _user()
    _, before = case
    with hostile.sandbox(u) as sb:
        f = sb.put("work/app.container", before)
        writer_properties(
            sb, f, before, r"Network|NETWORK_INTERFACE", lambda: sb.fix("quadlet", str(f))
        )


@pytest.mark.realstack
@settings(max_examples=examples("writer"))
@given(case=edited(CONFS))
def test_fix_podman_writer(case: tuple[Path, bytes]) -> None:
    u = _user()
    _, before = case
    with hostile.sandbox(u) as sb:
        f = sb.put("cfg/containers/containers.conf", before)
        owned = r"default_rootless_network_cmd|network_cmd_options|rootless_port_forwarder"
        writer_properties(sb, f, before, owned, lambda: sb.fix("podman"))


@pytest.mark.realstack
@settings(max_examples=examples("writer"))
@given(case=edited(DROPINS), builtin=st.booleans())
def test_fix_docker_dropin_writer(case: tuple[Path, bytes], builtin: bool) -> None:
    u = _user()
    _, before = case
    if builtin:  # something to do: the drop-in selects the port driver that loses source IPs
        before = before.replace(b"=slirp4netns", b"=builtin")
    with hostile.sandbox(u) as sb:
        sb.put("cfg/systemd/user/docker.service", UNIT_V20.read_bytes())
        f = sb.put("cfg/systemd/user/docker.service.d/override.conf", before)
        writer_properties(
            sb, f, before, r"DOCKERD_ROOTLESS_ROOTLESSKIT_(NET|PORT_DRIVER)|\[Service\]",
            lambda: sb.fix("docker", "--driver", "slirp4netns"),
        )  # fmt: skip


@pytest.mark.realstack
@settings(max_examples=examples("writer"))
@given(case=edited(DAEMON_JSONS, comments=False), value=st.sampled_from([b"true", b"null", None]))
def test_fix_docker_daemon_json_writer(case: tuple[Path, bytes], value: bytes | None) -> None:
    """RootlessKit 3 (not packaged here: a `rootlesskit` first on PATH answers `--version` as
    v3.0.1 does): `fix docker --driver builtin-transparent` writes daemon.json."""
    u = _user()
    _, before = case
    if value is None:
        before = re.sub(rb'\s*"userland-proxy"\s*:\s*false\s*,?', b"", before)
    else:
        before = before.replace(b'"userland-proxy": false', b'"userland-proxy": ' + value)
    with hostile.sandbox(u) as sb:
        sb.put("bin/rootlesskit", "#!/bin/sh\necho 'rootlesskit version 3.0.1'\n", mode=0o755)
        sb.put("cfg/systemd/user/docker.service", UNIT_V29.read_bytes())
        f = sb.put("cfg/docker/daemon.json", before)
        writer_properties(
            sb, f, before, r"userland-proxy|^\s*\{",
            lambda: sb.fix("docker", "--driver", "builtin-transparent"),
        )  # fmt: skip


SYSCTL_TARGET = "/etc/sysctl.d/99-rootless-doctor-unprivileged-ports.conf"
# Root only: a private mount namespace whose /etc/sysctl.d and root's state dir are tmpfs; the
# fix, its second run and the undo run in it; each result is copied out. The machine's sysctl.d
# is never written.
_SYSCTL_SCRIPT = """
mount -t tmpfs -o size=1m rd-h11 /etc/sysctl.d || exit 99
mkdir -p /root/.local/state && mount -t tmpfs -o size=4m,mode=0700 rd-h11 /root/.local/state \\
  || exit 98
cp "$SEED" "$TARGET"
for step in 1 2 3; do
  if [ $step = 3 ]; then "$@" --undo >"$OUT/$step.out" 2>"$OUT/$step.err"
  else "$@" privileged-ports --port "$PORT" >"$OUT/$step.out" 2>"$OUT/$step.err"; fi
  echo $? >"$OUT/$step.code"
  cp "$TARGET" "$OUT/$step.file" 2>/dev/null
done
"""


@pytest.mark.realstack
@settings(max_examples=examples("sysctl"))
@given(case=edited(SYSCTLS), port=st.sampled_from([25, 80, 143, 443, 587, 993]))
def test_fix_sysctl_writer(case: tuple[Path, bytes], port: int) -> None:
    u = _user()
    _, src = case
    before = src + (b"\n" if src and not src.endswith(b"\n") else b"")
    before += b"net.ipv4.ip_unprivileged_port_start = 1024\n# kept last" if port % 2 else b""
    with hostile.sandbox(u) as sb:
        seed, out = sb.base / "seed", sb.base / "out"
        seed.write_bytes(before)
        out.mkdir()
        prefix, extra = hostile.tool()
        env = dict(hostile.root_env(**extra), SEED=str(seed), TARGET=SYSCTL_TARGET, OUT=str(out),
                   PORT=str(port))  # fmt: skip
        cp = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", _SYSCTL_SCRIPT, "sh",
             *prefix, "fix"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr

        def res(step: int) -> tuple[int, str, str, bytes]:
            code = int((out / f"{step}.code").read_text())
            f = out / f"{step}.file"
            return (
                code,
                (out / f"{step}.out").read_text(),
                (out / f"{step}.err").read_text(),
                f.read_bytes() if f.exists() else b"",
            )

        (c1, _, e1, f1), (c2, o2, e2, f2), (c3, _, e3, f3) = res(1), res(2), res(3)
        for code, err in ((c1, e1), (c2, e2), (c3, e3)):
            assert code in (0, 2) and "Traceback" not in err, err
        if c1 == 2:
            assert f1 == before and len(e1.strip().splitlines()) == 1, e1
            return
        stray = [
            ln
            for ln in _touched(before, f1)
            if b"ip_unprivileged_port_start" not in ln
            and not _terminated_for_append(ln, before, f1)
        ]
        assert not stray, f"lines the fix does not own were changed: {stray[:5]}"
        assert c2 == 0 and f2 == f1 and "wrote" not in o2, (o2, e2)
        assert c3 == 0 and f3 == before, f"undo is not byte-exact: {e3}"
