"""throughput.py: the measured table shipped in the package (bench/dataplane.py's output)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rootless_doctor import throughput as tp
from rootless_doctor.model import PodmanFacts, RootlessKitFacts, Tool

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    tp.table.cache_clear()
    yield
    tp.table.cache_clear()


def test_the_shipped_table_is_a_bench_result_with_where_and_when() -> None:
    t = tp.table()
    assert t is not None
    raw = json.loads(tp.DATA.read_text())
    assert raw["command"].startswith("python3 bench/dataplane.py")
    assert t.date == raw["date"] and t.machine == raw["host"]
    assert set(t.versions) == {"bookworm", "trixie", "sid"}
    for stack in t.versions.values():
        assert stack["docker"] and stack["rootlesskit"] and stack["podman"]
    measured = [r for r in raw["rows"] if "gbit_s" in r.get("bound", {})]
    assert len(t.rows) == len(measured) > 10


def test_what_each_docker_option_keeps_is_what_the_server_saw() -> None:
    """The IP-keeping options kept the client's address on every stack; builtin never did."""
    for key in ("docker:pasta+implicit", "docker:slirp4netns+slirp4netns"):
        for tuned in (False, True):
            net, driver = key.removeprefix("docker:").split("+")
            rows = tp.rows(tp.docker_key(net, driver, tuned=tuned))
            assert rows, key
            assert all(r.kept is True for r in rows), rows
    builtin = tp.rows(tp.docker_key("slirp4netns", "builtin"))
    assert builtin and all(r.kept is False for r in builtin)


def test_quote_gives_the_measured_span_and_where() -> None:
    t = tp.table()
    assert t is not None
    plain = [r.gbit_s for r in tp.rows("docker:pasta+implicit")]
    tuned = [r.gbit_s for r in tp.rows(tp.docker_key("pasta", "implicit", tuned=True))]
    quote = tp.quote_docker("pasta", "implicit")
    assert quote is not None
    assert f"measured {min(plain):.1f}" in quote and f"{max(plain):.1f} Gbit/s" in quote
    assert f"{min(tuned):.1f}" in quote and f"{max(tuned):.1f} with MTU 65520" in quote
    assert t.date.split()[0] in quote
    assert "trixie" in quote and "sid" in quote and "bookworm" not in quote  # no pasta there
    assert tp.quote_docker("pasta", "pesto") is None  # never measured: nothing quoted


def test_a_broken_or_missing_file_quotes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for text in (None, "{", json.dumps({"rows": "x"})):
        f = tmp_path / "dataplane.json"
        if text is None:
            f.unlink(missing_ok=True)
        else:
            f.write_text(text)
        monkeypatch.setattr(tp, "DATA", f)
        tp.table.cache_clear()
        assert tp.table() is None
        assert tp.quote_docker("pasta", "implicit") is None


def test_the_shipped_file_is_a_bench_result_unedited() -> None:
    """dataplane.json is a copy of one bench/results file (measured, not edited by hand)."""
    shipped = tp.DATA.read_text()
    assert any(shipped == f.read_text() for f in (REPO / "bench/results").glob("*.json"))


# --------------------------------------------------------------------------------------------
# probe --throughput: the paths a host offers, matching the shipped rows, the decision


SLIRP = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")}
PASTA = {"pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2025_05_03.587980c")}


def _keys(specs: list[tp.PathSpec]) -> dict[str, str]:
    return {s.key: s.unavailable for s in specs}


def test_podman_4_3_paths_default_rootlessport_and_no_pasta() -> None:
    specs = tp.podman_paths(PodmanFacts(version="4.3.1", rootless=True), SLIRP)
    assert _keys(specs) == {
        "podman:slirp4netns+rootlessport": "",
        "podman:slirp4netns+slirp4netns": "",
        "podman:pasta": "Podman 4.3.1 has no pasta network (from 4.4.0)",
        "podman:bridge+rootlessport": "",
    }
    assert [s.default for s in specs] == [True, False, False, False]
    assert specs[0].network is None  # the default: no --network, containers.conf decides
    assert specs[1].network == "slirp4netns:port_handler=slirp4netns"
    assert specs[3].network == tp.BRIDGE_NETWORK


def test_podman_4_with_port_handler_in_conf_default_is_the_slirp4netns_path_once() -> None:
    p = PodmanFacts(
        version="4.9.3",
        rootless=True,
        conf={"engine.network_cmd_options": ["port_handler=slirp4netns"]},
    )
    specs = tp.podman_paths(p, {**SLIRP, **PASTA})
    assert _keys(specs) == {
        "podman:slirp4netns+slirp4netns": "",
        "podman:pasta": "",
        "podman:bridge+rootlessport": "",
    }
    assert (
        specs[0].default
        and specs[0].label == "podman default (slirp4netns, port_handler=slirp4netns)"
    )


def test_podman_5_default_pasta_once_and_podman_6_without_slirp4netns() -> None:
    p5 = PodmanFacts(version="5.4.2", rootless=True, rootless_network_cmd="pasta")
    assert _keys(tp.podman_paths(p5, {**SLIRP, **PASTA})) == {
        "podman:pasta": "",
        "podman:slirp4netns+slirp4netns": "",
        "podman:bridge+rootlessport": "",
    }
    assert _keys(tp.podman_paths(p5, PASTA))["podman:slirp4netns+slirp4netns"] == (
        "slirp4netns is not installed"
    )
    p6 = PodmanFacts(
        version="6.0.1",
        rootless=True,
        rootless_network_cmd="pasta",
        rootless_port_forwarder="pasta",
    )
    assert _keys(tp.podman_paths(p6, {**SLIRP, **PASTA})) == {
        "podman:pasta": "",
        "podman:slirp4netns+slirp4netns": "Podman 6.0.1 has no slirp4netns",
        "podman:bridge+pasta": "",
    }


def test_podman_default_follows_containers_conf_netns() -> None:
    """[containers] netns picks what `run -p` without --network gets (check says so too): the
    default path is that one, and the path it replaced (pasta here) is measured on its own."""
    conf = "/home/u/.config/containers/containers.conf"
    p5 = PodmanFacts(
        version="5.4.2",
        rootless=True,
        rootless_network_cmd="pasta",
        conf={"containers.netns": "bridge"},
        conf_origin={"containers.netns": conf},
    )
    specs = tp.podman_paths(p5, {**SLIRP, **PASTA})
    assert _keys(specs) == {
        "podman:bridge+rootlessport": "",
        "podman:slirp4netns+slirp4netns": "",
        "podman:pasta": "",
    }
    assert specs[0].default and specs[0].network is None
    assert specs[0].label == 'podman default (the "podman" network, rootlessport)'
    assert specs[0].how == (
        f'podman run -p HOST:CONTAINER (no --network; {conf}: [containers] netns = "bridge")'
    )
    host = replace(p5, conf={"containers.netns": "host"})
    default = tp.podman_paths(host, {**SLIRP, **PASTA})[0]
    assert (default.key, default.default) == ("podman:host", True)
    assert default.unavailable == "a plain podman run -p joins host: no published-port path"


def test_podman_4_port_handler_rootlesskit_spelled_out_is_rootlessport() -> None:
    """port_handler=rootlesskit is slirp4netns's default handler written down (was: a key with no
    label, a KeyError)."""
    p = PodmanFacts(
        version="4.3.1",
        rootless=True,
        conf={"engine.network_cmd_options": ["port_handler=rootlesskit"]},
    )
    specs = tp.podman_paths(p, SLIRP)
    assert specs[0].key == "podman:slirp4netns+rootlessport" and specs[0].default
    assert specs[0].label == "podman default (slirp4netns + rootlessport)"


def test_docker_path_is_the_running_daemons_drivers() -> None:
    spec = tp.docker_path(RootlessKitFacts(network_driver="pasta", port_driver="implicit"))
    assert (spec.key, spec.default, spec.network) == ("docker:pasta+implicit", True, None)
    assert tp.docker_path(None).key == "docker:?+?"


def test_rootlesskit_path_is_the_instance_as_it_runs() -> None:
    kit = RootlessKitFacts(pid=4242, network_driver="slirp4netns", port_driver="builtin")
    spec = tp.rootlesskit_path(kit)
    assert (spec.key, spec.instance, spec.default) == (
        "rootlesskit:slirp4netns+builtin",
        4242,
        True,
    )
    assert spec.label == "rootlesskit pid 4242 (slirp4netns + builtin)"


def _res(key: str, gbit: float | None, kept: bool | None, mtu: int | None = None) -> tp.PathResult:
    engine = key.split(":")[0]
    spec = tp.PathSpec(engine=engine, key=key, label=key, how=f"how {key}")
    if gbit is None:
        return tp.PathResult(spec=spec, outcome="failed", error="refused: x")
    return tp.PathResult(
        spec=spec,
        outcome="measured",
        source="10.200.0.1",
        observed="10.200.0.1" if kept else "10.0.2.100",
        kept=kept,
        received=int(gbit * 1e9 / 8),
        sent=int(gbit * 1e9 / 8),
        seconds=1.0,
        mtu=mtu,
    )


def test_gbit_is_what_arrived_over_the_sinks_time() -> None:
    r = tp.PathResult(
        spec=tp.PathSpec(engine="podman", key="k", label="k", how=""),
        outcome="measured",
        received=250_000_000,
        sent=300_000_000,
        seconds=0.5,
    )
    assert r.gbit_s == pytest.approx(4.0)  # 250 MB in 0.5 s; the 50 MB never counted
    assert _res("podman:pasta", None, None).gbit_s is None


def test_shipped_figures_match_by_meaning() -> None:
    """The bench's ``podman:default`` is rootlessport on bookworm's 4.3.1 and pasta on 5.x."""
    by = {
        k: [(m.stack, m.gbit_s) for m in tp.elsewhere(_res(k, 1.0, True))]
        for k in (
            "podman:slirp4netns+rootlessport",
            "podman:pasta",
            "podman:bridge+rootlessport",
            "podman:slirp4netns+slirp4netns",
        )
    }
    rows = {(r.stack, r.key): r.gbit_s for r in tp.table().rows}  # type: ignore[union-attr]
    assert by["podman:slirp4netns+rootlessport"] == [
        ("bookworm", rows["bookworm", "podman:default"])
    ]
    assert by["podman:pasta"] == [(s, rows[s, "podman:default"]) for s in ("trixie", "sid")]
    assert [s for s, _ in by["podman:bridge+rootlessport"]] == ["trixie", "sid"]
    assert [s for s, _ in by["podman:slirp4netns+slirp4netns"]] == ["bookworm", "trixie", "sid"]
    # Docker: the tuned rows only when the container's bridge MTU is raised
    plain = tp.elsewhere(_res("docker:pasta+implicit", 1.0, True, mtu=1500))
    tuned = tp.elsewhere(_res("docker:pasta+implicit", 1.0, True, mtu=65520))
    assert [m.key for m in plain] == ["docker:pasta+implicit"] * 2
    assert [m.key for m in tuned] == ["docker:pasta+implicit,mtu=65520,bridge=65520"] * 2
    assert tp.elsewhere_text(_res("podman:nothing", 1.0, True)) == ""


def test_decision_is_the_fastest_path_that_keeps_client_ips() -> None:
    results = [
        _res("podman:slirp4netns+rootlessport", 10.0, False),
        _res("podman:slirp4netns+slirp4netns", 4.0, True),
        _res("podman:pasta", 6.0, True),
        _res("podman:bridge+rootlessport", None, None),
    ]
    d = tp.decide(results)
    assert d.best is results[2]
    assert "podman:pasta, 6.0 Gbit/s" in d.text and "(how podman:pasta)" in d.text
    assert "podman:slirp4netns+rootlessport is faster (10.0) but loses client IPs" in d.text
    close = [_res("podman:pasta", 6.0, True), _res("podman:bridge+rootlessport", 8.0, False)]
    assert "faster" not in tp.decide(close).text  # within one run's noise: not worth a word
    assert tp.decide(results[:1]).best is None
    assert "no measured path keeps client IPs" in tp.decide(results[:1]).text
    assert tp.decide(results[3:]).text == "no path could be measured here"
    assert tp.decide([]).best is None


def test_advice_for_docker_keeping_ips_at_mtu_1500_names_fix_mtu() -> None:
    slow = [_res("docker:pasta+implicit", 0.4, True, mtu=1500)]
    (a,) = tp.advice(slow)
    assert "`rootless-doctor fix docker --mtu`" in a and "MTU 1500" in a
    assert tp.quote_docker("pasta", "implicit") in a  # type: ignore[operator]
    assert tp.advice([_res("docker:pasta+implicit", 7.0, True, mtu=65520)]) == []
    (lost,) = tp.advice([_res("docker:slirp4netns+builtin", 6.0, False, mtu=1500)])
    assert "`rootless-doctor fix docker`" in lost
    assert tp.advice([_res("podman:slirp4netns+rootlessport", 6.0, False)]) == []


def test_json_has_the_declared_shape() -> None:
    results = [_res("podman:pasta", 6.0, True, mtu=65520), _res("docker:?+?", None, None)]
    out = tp.to_json(results, 0.5)
    assert set(out) == set(tp.JsonThroughput.__annotations__)
    for p in out["paths"]:
        assert set(p) == set(tp.JsonPath.__annotations__)
    assert out["paths"][0]["gbit_s"] == 6.0 and out["paths"][0]["outcome"] == "measured"
    assert out["paths"][1]["gbit_s"] is None and out["paths"][1]["error"] == "refused: x"
    assert out["best_keeping_client_ip"] == "podman:pasta"
    assert out["paths"][0]["measured_elsewhere"] == [
        {"stack": m.stack, "gbit_s": m.gbit_s} for m in tp.elsewhere(results[0])
    ]
    json.dumps(out)


def test_text_table_names_each_path_its_figure_and_the_decision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rootless_doctor import cli_probe

    results = [
        _res("podman:slirp4netns+rootlessport", 10.2, False),
        _res("podman:slirp4netns+slirp4netns", 5.2, True),
        tp.PathResult(
            spec=tp.PathSpec(engine="podman", key="podman:pasta", label="podman pasta", how=""),
            outcome="unavailable",
            error="Podman 4.3.1 has no pasta network (from 4.4.0)",
        ),
    ]
    cli_probe._print_throughput(results, 2.0)
    out = capsys.readouterr().out.splitlines()
    assert "2 s per path from 10.200.0.1" in out[1]
    rows = {line.split()[0]: line.split() for line in out if line.startswith("  podman:")}
    assert rows["podman:slirp4netns+rootlessport"][1:4] == ["10.2", "lost", "(10.0.2.100)"]
    assert rows["podman:slirp4netns+rootlessport"][4:] == ["bookworm", "11.1"]
    assert rows["podman:slirp4netns+slirp4netns"][1:3] == ["5.2", "kept"]
    assert out[out.index(next(x for x in out if x.startswith("  podman pasta"))) + 1] == (
        "    Podman 4.3.1 has no pasta network (from 4.4.0)"
    )
    assert any(x.startswith("  * not this host: bench/dataplane.py") for x in out)
    assert out[-1].startswith("fastest path here that keeps client IPs: podman:slirp4netns+slirp")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--seconds", "1"], "applies only with --throughput"),
        (["--throughput", "--seconds", "11"], "0.1<=x<=10.0"),
        (["--throughput", "--seconds", "0"], "0.1<=x<=10.0"),
    ],
)
def test_seconds_is_bounded_and_only_with_throughput(args: list[str], said: str) -> None:
    """Refused before anything starts (no engine is asked, no container made)."""
    import subprocess
    import sys

    cp = subprocess.run(
        [sys.executable, "-m", "rootless_doctor", "probe", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "PATH": "/nonexistent"},
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert said in cp.stderr and "Traceback" not in cp.stderr


def test_the_total_bound_leaves_paths_not_started_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No time left: no path starts (nothing is run), each says why; unavailable stays so."""
    from rootless_doctor import probe, throughput_probe
    from rootless_doctor.model import HostFacts

    monkeypatch.setattr(probe, "source_addresses", lambda source: [("rdv0", "10.200.0.1")])
    facts = HostFacts(podman=PodmanFacts(version="4.3.1", rootless=True), tools=dict(SLIRP))
    out = throughput_probe.run(["podman", "nerdctl"], facts=facts, total=0.0, seconds=0.5)
    assert [(r.spec.key, r.outcome) for r in out] == [
        ("podman:slirp4netns+rootlessport", "not started"),
        ("podman:slirp4netns+slirp4netns", "not started"),
        ("podman:pasta", "unavailable"),
        ("podman:bridge+rootlessport", "not started"),
    ]
    assert out[0].error == "not started: the run's time bound (0 s) was reached"
    assert all(r.source == "10.200.0.1" for r in out if r.outcome == "not started")
    assert throughput_probe.run(["nerdctl"], facts=facts) == []


def test_a_rootlesskit_gone_since_it_was_found_is_not_replaced_by_another() -> None:
    from rootless_doctor import host, probe, throughput_probe

    spec = tp.rootlesskit_path(RootlessKitFacts(pid=4242, network_driver="slirp4netns"))
    other = RootlessKitFacts(pid=4343, network_driver="slirp4netns", state_dir="/nonexistent")
    h = throughput_probe._Host(host.default_paths(), "10.200.0.1", None, [other])
    r = throughput_probe._measure(spec, h, None, 0.1, time.monotonic() + 5, probe.Guard())
    assert (r.outcome, r.error) == (
        "failed",
        "the sink did not start: rootlesskit pid 4242 is not running",
    )


def test_the_sender_falls_back_to_send_when_its_memfd_cannot_be_sized(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A memfd that cannot be sized (a memory limit) is closed and the zeros are sent from a
    buffer: what the peer reads is what the sender counted, and no traceback."""
    import socket
    import threading

    from rootless_doctor import throughput_probe

    closed: list[int] = []
    real_close = os.close

    def no_room(fd: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "ftruncate", no_room)
    monkeypatch.setattr(os, "close", close)
    assert throughput_probe._zeros() is None and len(closed) == 1
    a, b = socket.socketpair()
    got = [0]

    def drain() -> None:
        while chunk := b.recv(1 << 20):
            got[0] += len(chunk)

    t = threading.Thread(target=drain)
    t.start()
    with a, b:
        sent = throughput_probe._send_for(a, 0.2)
        a.shutdown(socket.SHUT_WR)
        t.join(10)
    assert sent > 0 and got[0] == sent
