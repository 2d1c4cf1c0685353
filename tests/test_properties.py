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

import hashlib
import json
import os
import tempfile
from pathlib import Path

import hostile
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CI_EXAMPLES = {"from": 60, "writer": 8, "sysctl": 4}
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
