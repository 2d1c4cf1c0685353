"""`rootless-doctor check --json --from FILE...` as a subprocess: the exit code and the parsed
report (the documented schema checked), for the whole-file tests of pasted inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli import assert_schema, rd


def check(*files: Path) -> tuple[int, dict[str, Any]]:
    args: list[str] = []
    for f in files:
        args += ["--from", str(f)]
    cp = rd("check", "--json", *args)
    assert cp.returncode in (0, 1), cp.stderr
    assert "Traceback" not in cp.stderr
    data: dict[str, Any] = json.loads(cp.stdout)
    assert_schema(data)
    return cp.returncode, data


def engine(data: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in data["engines"] if e["engine"] == name]
    assert len(found) == 1, data["engines"]
    return found[0]
