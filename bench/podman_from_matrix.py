"""`check --json --from` over every tests/data combination of podman-info x containers-conf x
podman-inspect (each kind also absent), in one process; writes {combination: output} as JSON.

Used to show that a change in how Podman's effective settings are derived leaves the output
unchanged except where intended (issue #9):

    PYTHONPATH=/path/to/tree-before python3 bench/podman_from_matrix.py before.json
    PYTHONPATH=/path/to/tree-after  python3 bench/podman_from_matrix.py after.json
    python3 bench/podman_from_matrix.py --compare before.json after.json
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
KINDS = ("podman-info", "containers-conf", "podman-inspect")


def _files(kind: str) -> list[Path | None]:
    return [None, *sorted(p for p in (DATA / kind).iterdir() if p.is_file())]


def run(out: Path) -> None:
    from typer.testing import CliRunner

    from rootless_doctor.cli import app

    runner = CliRunner()
    results: dict[str, dict[str, object]] = {}
    for combo in itertools.product(*(_files(k) for k in KINDS)):
        files = [f for f in combo if f is not None]
        if not files:
            continue
        args = ["check", "--json"]
        for f in files:
            args += ["--from", str(f)]
        r = runner.invoke(app, args)
        key = " + ".join(f"{f.parent.name}/{f.name}" for f in files)
        results[key] = {"exit": r.exit_code, "output": r.output}
    out.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"{len(results)} combinations written to {out}")


def compare(before: Path, after: Path) -> int:
    a = json.loads(before.read_text())
    b = json.loads(after.read_text())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print(f"{len(a)} combinations before, {len(b)} after, {len(differ)} differ")
    for k in differ:
        print("  " + k)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    run(Path(sys.argv[1]))
