"""fixes/choice.py: the one way `fix docker` and `fix containerd` pick a driver pair."""

from __future__ import annotations

import pytest

from rootless_doctor.fixes import choice, containerd, docker
from rootless_doctor.knowledge import FixOption
from rootless_doctor.model import DoctorError


def opt(key: str, available: bool, missing: str = "") -> FixOption:
    net, port = {"pasta-implicit": ("pasta", "implicit"), "slirp4netns": ("slirp4netns",) * 2,
                 "pesto": ("pasta", "pesto")}[key]  # fmt: skip
    return FixOption(
        key=key,  # type: ignore[arg-type]
        network_driver=net, port_driver=port, userland_proxy=None, throughput=f"{key} Gbit/s",
        protocols="tcp+udp", cost="c", privileged_ports="p", available=available, missing=missing,
    )  # fmt: skip


OPTIONS = (
    opt("pesto", False, "passt >= 2026_05_07"),
    opt("pasta-implicit", True),
    opt("slirp4netns", True),
)


def test_fastest_usable_and_why_the_faster_are_not() -> None:
    got = choice.pick(OPTIONS, None, docker.ALIASES)
    assert got.option.key == "pasta-implicit" and got.options == OPTIONS
    assert got.why == (
        "the fastest that keeps client IPs here (pasta-implicit Gbit/s)\n"
        "  faster, not usable here:\n    pesto: passt >= 2026_05_07"
    )
    assert choice.pick(OPTIONS[1:], None, {}).why.count("\n") == 0


@pytest.mark.parametrize("aliases", [docker.ALIASES, containerd.ALIASES])
def test_driver_by_key_or_alias(aliases: dict[str, str]) -> None:
    got = choice.pick(OPTIONS, "implicit", aliases)
    assert got.option.key == "pasta-implicit" and got.why == "chosen with --driver implicit"
    assert choice.pick(OPTIONS, "slirp4netns", aliases).option.key == "slirp4netns"
    with pytest.raises(DoctorError, match="--driver pesto: not usable here: passt >= 2026_05_07"):
        choice.pick(OPTIONS, "pesto", aliases)
    with pytest.raises(DoctorError, match="--driver vpnkit: unknown; choose one of pesto, "):
        choice.pick(OPTIONS, "vpnkit", aliases)


def test_nothing_usable_names_what_each_needs() -> None:
    with pytest.raises(DoctorError) as e:
        choice.pick((OPTIONS[0], opt("slirp4netns", False, "no slirp4netns")), None, {})
    assert str(e.value) == (
        "no driver that keeps source IPs is usable here "
        "(pesto: passt >= 2026_05_07; slirp4netns: no slirp4netns)"
    )
