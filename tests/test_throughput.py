"""throughput.py: the measured table shipped in the package (bench/dataplane.py's output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rootless_doctor import throughput as tp

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
