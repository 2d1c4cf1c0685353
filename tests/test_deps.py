"""The dependency floors CI installs (.ci/lower-bounds.txt) are pyproject's lower bounds, and the
one psutil call runs (no offline test reaches psutil otherwise)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / ".ci" / "lower-bounds.txt"
# Pinned in the constraints although not in pyproject: typer < 0.26 needs it from outside.
INDIRECT = {"click"}
# Pinned above pyproject's floor: older releases have no wheel for the CI's Python (a build needs a
# compiler and the Python headers). pyproject's floor for psutil was checked by hand.
ABOVE_FLOOR = {"psutil": Version("5.9.4")}


def _name(s: str) -> str:
    return re.sub(r"[-_.]+", "-", s).lower()


def _floors() -> dict[str, tuple[Version, str]]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out: dict[str, tuple[Version, str]] = {}
    for dep in deps:
        req = Requirement(dep)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
        assert len(lows) == 1, f"pyproject: {dep!r} has no single lower bound"
        out[_name(req.name)] = (lows[0], str(req.marker or ""))
    return out


def _pins() -> dict[str, tuple[Version, str]]:
    out: dict[str, tuple[Version, str]] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{CONSTRAINTS.name}: {line!r} is not an exact pin"
        out[_name(req.name)] = (Version(spec.version), str(req.marker or ""))
    return out


def test_constraints_pin_every_dependency_at_pyprojects_lower_bound() -> None:
    floors, pins = _floors(), _pins()
    assert set(pins) - set(floors) == INDIRECT
    for name, (floor, marker) in floors.items():
        assert name in pins, f"{CONSTRAINTS.name} lacks {name} (pyproject: >={floor})"
        pin, pin_marker = pins[name]
        assert pin_marker == marker, name
        assert pin == ABOVE_FLOOR.get(name, floor), f"{name}: pinned {pin}, pyproject >={floor}"
        assert floor <= pin


def test_local_addresses_name_loopback() -> None:
    """host.local_addresses (psutil.net_if_addrs) on this host: loopback is there, under lo."""
    from rootless_doctor import host

    addrs = host.local_addresses()
    assert ("lo", "127.0.0.1") in addrs
    v4 = [a for _, a in addrs if ":" not in a]
    assert v4 and all(host.is_local_address(a) for a in v4)  # each one a socket binds to
