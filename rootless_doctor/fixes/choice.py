"""Which RootlessKit driver pair a daemon fix writes (`fix docker`, `fix containerd`).

The options and their order (fastest first) are the decision table's
(``knowledge.docker_fix_options`` / ``containerd_fix_options``); this picks one of them for the
command line's ``--driver`` or, without it, the fastest one usable here, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..knowledge import FixOption
from ..model import DoctorError


@dataclass(frozen=True, kw_only=True)
class FixChoice:
    option: FixOption
    options: tuple[FixOption, ...]
    why: str  # why this option (first line), then the faster ones not usable here


def pick(options: Sequence[FixOption], driver: str | None, aliases: Mapping[str, str]) -> FixChoice:
    """``driver`` (an option key or one of ``aliases``) when given: it must be known and usable
    here; else the fastest usable option. None usable: a DoctorError naming what each needs."""
    opts = tuple(options)
    if driver:
        key = aliases.get(driver, driver)
        found = [o for o in opts if o.key == key]
        if not found:
            names = ", ".join(o.key for o in opts)
            raise DoctorError(f"--driver {driver}: unknown; choose one of {names}")
        if not found[0].available:
            raise DoctorError(f"--driver {driver}: not usable here: {found[0].missing}")
        return FixChoice(option=found[0], options=opts, why=f"chosen with --driver {driver}")
    avail = [o for o in opts if o.available]
    if not avail:
        why = "; ".join(f"{o.key}: {o.missing}" for o in opts)
        raise DoctorError(f"no driver that keeps source IPs is usable here ({why})")
    opt = avail[0]
    why = f"the fastest that keeps client IPs here ({opt.throughput})"
    skipped = opts[: opts.index(opt)]
    if skipped:
        why += "\n  faster, not usable here:" + "".join(
            f"\n    {o.key}: {o.missing}" for o in skipped
        )
    return FixChoice(option=opt, options=opts, why=why)
