"""Cost of reading YAML input (podman info YAML + a compose file), in fresh processes.

    python3 bench/yaml_reader.py [--runs 21] [TREE ...]

For each source tree (default: this one), N fresh interpreters each import rootless_doctor.parse,
then time ``parse.podman_info`` + ``parse.compose`` on two captured YAML files (the YAML library's
import, which happens lazily on the first YAML input, included). Prints median and min. Give an
older checkout as a second TREE to compare (e.g. a `git worktree add --detach` of a commit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CODE = """
import time
from rootless_doctor import parse
a = open("tests/data/podman-info/podman-4.3.1-rootless-debian12.yaml").read()
b = open("tests/data/compose/docker-mailserver-compose.yaml").read()
t0 = time.perf_counter()
parse.podman_info(a)
parse.compose(b, "compose.yaml")
print((time.perf_counter() - t0) * 1000)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("trees", nargs="*", default=[str(REPO)])
    args = ap.parse_args()
    for tree in args.trees:
        vals = []
        for _ in range(args.runs):
            cp = subprocess.run(
                [sys.executable, "-c", CODE],
                cwd=tree,
                env={"PYTHONPATH": tree},
                capture_output=True,
                text=True,
                check=True,
            )
            vals.append(float(cp.stdout))
        print(f"{tree}: median {statistics.median(vals):6.1f} ms   min {min(vals):6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
