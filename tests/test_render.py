"""render.py, the human report: problems first, one "Do next" list of exact commands,
deduplicated, and commands that never break across lines (reports built in code)."""

from __future__ import annotations

import io
import re

import pytest

from rootless_doctor import render
from rootless_doctor.model import CheckResult, ContainerReport, EngineReport, Report

RESTART = "systemctl --user daemon-reload && systemctl --user restart docker"
FIX_DOCKER = f"`rootless-doctor fix docker`, then `{RESTART}`"
LONG_DETAIL = (
    "RootlessKit 1.1.0 builtin port driver: connections arrive from 172.17.0.1 (source IP lost) "
    f"(configured in the drop-in, but the daemon was not restarted: run `{RESTART}` to apply)"
)


def _docker(preserved: bool | None = False) -> EngineReport:
    return EngineReport(
        engine="docker",
        rootless=True,
        version="20.10.24",
        rootlesskit_version="1.1.0",
        network_driver="slirp4netns",
        port_driver="builtin",
        source_ip_preserved=preserved,
        reason="builtin port driver",
        containers=(
            ContainerReport(
                name="web",
                network_mode="bridge",
                port_handler="builtin",
                source_ip_preserved=preserved,
                reason="daemon's port driver",
            ),
            ContainerReport(
                name="fine",
                network_mode="host",
                port_handler=None,
                source_ip_preserved=True,
                reason="host network",
            ),
        ),
    )


def _c(cid: str, status: str, detail: str = "", remedy: str = "", **kw: str) -> CheckResult:
    return CheckResult(
        id=cid, title=f"title of {cid}", status=status, detail=detail, remedy=remedy, **kw
    )  # type: ignore[arg-type]


def _report() -> Report:
    return Report(
        engines=(_docker(),),
        checks=(
            _c("DOCKER-SOURCE-IP", "fail", LONG_DETAIL, FIX_DOCKER, engine="docker"),
            _c("DOCKER-DRIVER-DRIFT", "warn", "drop-in differs", f"`{RESTART}`", engine="docker"),
            _c("CONTAINER-SOURCE-IP", "fail", "web: lost", FIX_DOCKER, engine="docker"),
            _c("SUBUID", "ok", "65536 ids"),
            _c(
                "PRIVILEGED-PORTS", "fail", "port 25", "`sudo rootless-doctor fix privileged-ports`"
            ),
            _c(
                "COMPOSE-PRIVILEGED-PORTS",
                "fail",
                "25",
                "`sudo rootless-doctor fix privileged-ports`",
            ),
            _c("LINGER", "skip", "no user manager"),
        ),
    )


def test_next_steps_list_each_command_once_under_every_check_that_asks() -> None:
    steps = render.next_steps(_report())
    assert steps == [
        (
            ("DOCKER-SOURCE-IP", "CONTAINER-SOURCE-IP", "DOCKER-DRIVER-DRIFT"),
            ("rootless-doctor fix docker", RESTART),
        ),
        (
            ("PRIVILEGED-PORTS", "COMPOSE-PRIVILEGED-PORTS"),
            ("sudo rootless-doctor fix privileged-ports",),
        ),
    ]


@pytest.mark.parametrize("width", [60, 80, 100])
def test_commands_never_break_and_prose_fits(width: int) -> None:
    lines = [text for _, text in render.report_lines(_report(), width=width)]
    commands = [text for style, text in render.report_lines(_report(), width=width)
                if style == render.COMMAND]  # fmt: skip
    assert [c.strip() for c in commands] == [
        "rootless-doctor fix docker",
        RESTART,
        "sudo rootless-doctor fix privileged-ports",
    ]
    # Inside prose, a backticked command is never split either.
    assert any(f"`{RESTART}`" in line for line in lines)
    for line in lines:
        if line in commands:
            continue
        # Prose fits, unless one backticked span alone is wider than the line.
        spans = re.findall(r"`[^`]+`", line)
        assert len(line) <= width or any(len(s) > width - 10 for s in spans), line


def test_problems_first_and_quiet_about_what_is_fine() -> None:
    lines = [text for _, text in render.report_lines(_report())]
    text = "\n".join(lines)
    assert lines[0] == "FAIL  Docker 20.10.24 (rootless): client IPs LOST"
    assert lines[1] == "      RootlessKit 1.1.0, slirp4netns, port driver builtin"
    assert lines[2] == "FAIL      container web: client IPs LOST (bridge, builtin)"
    assert "fine" not in text  # only containers that are not ok
    assert text.index("Problems") < text.index("Do next")
    assert "SUBUID" not in text.split("Problems")[1]  # ok checks: no details
    verbose = "\n".join(t for _, t in render.report_lines(_report(), verbose=True))
    assert "fine" in verbose and "SUBUID: title of SUBUID" in verbose


def test_rich_output_does_not_wrap_commands() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("NO_COLOR", raising=False)
        mp.setenv("COLUMNS", "40")
        render.print_lines([(render.COMMAND, "       " + RESTART)], out)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert plain.rstrip("\n") == "       " + RESTART  # one line, although wider than 40


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# Every style the report and the probe use, and texts with what a pasted value may carry.
STYLES = ["", "bold", "dim", "cyan", "green", "yellow", "magenta", "bold red", "bold green"]
TEXTS = ["plain words", "", "   `rootless-doctor fix docker`", "ünïcode ≥ 3 — ok", "x" * 150,
         "bell\x07 bs\x08 vt\x0b ff\x0c cr\r end", "tab\there", "  \tindented"]  # fmt: skip


@pytest.mark.parametrize("color_system", ["standard", "256", "truecolor"])
def test_terminal_colours_are_the_bytes_rich_wrote(
    color_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """render writes its few SGR codes itself (Rich cost ~25 ms to import): the same bytes Rich
    wrote for these styles on any colour terminal; the same text where a tab splits Rich's
    spans (both expand tabs to 8 columns)."""
    from rich.console import Console
    from rich.text import Text

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for style in STYLES:
        for text in TEXTS:
            theirs = io.StringIO()
            console = Console(file=theirs, force_terminal=True, color_system=color_system,
                              highlight=False, soft_wrap=True, width=40)  # fmt: skip
            console.print(Text(text, style=style), soft_wrap=True)
            ours = _Tty()
            render.print_lines([(style, text)], ours)
            if "\t" in text:  # Rich closes and reopens the style around the expanded tab
                sgr = re.compile(r"\x1b\[[0-9;]*m")
                assert sgr.sub("", ours.getvalue()) == sgr.sub("", theirs.getvalue())
                assert set(sgr.findall(ours.getvalue())) == set(sgr.findall(theirs.getvalue()))
            else:
                assert ours.getvalue() == theirs.getvalue(), (style, text)


def test_no_colour_codes_for_a_dumb_terminal_or_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [("bold red", "FAIL  X"), (render.COMMAND, "rootless-doctor fix docker")]
    for env in ({"TERM": "dumb"}, {"TERM": "xterm", "NO_COLOR": "1"}):
        monkeypatch.delenv("NO_COLOR", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        out = _Tty()
        render.print_lines(lines, out)
        assert out.getvalue() == "FAIL  X\nrootless-doctor fix docker\n", env
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "xterm")
    out = _Tty()
    render.print_lines(lines, out)
    assert out.getvalue() == "\x1b[1;31mFAIL  X\x1b[0m\n\x1b[36mrootless-doctor fix docker\x1b[0m\n"


def test_progress_only_on_a_terminal_only_when_slow_and_erased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    err = _Tty()
    monkeypatch.setattr("sys.stderr", err)
    with render.Progress("reading the engines", delay=0.01):
        time.sleep(0.2)
    assert err.getvalue() == "\rreading the engines ...\x1b[K\r\x1b[K"
    fast = _Tty()
    monkeypatch.setattr("sys.stderr", fast)
    with render.Progress("reading the engines", delay=5):
        pass
    assert fast.getvalue() == ""
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with render.Progress("x", delay=0.0):
        time.sleep(0.05)
    assert pipe.getvalue() == ""
    json_run = _Tty()
    monkeypatch.setattr("sys.stderr", json_run)
    with render.Progress("x", delay=0.0, enabled=False):
        time.sleep(0.05)
    assert json_run.getvalue() == ""


def test_escape_sequences_in_a_value_are_shown_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pasted value with an OSC title sequence, a cursor move and a C1 CSI reaches the terminal
    as visible text: no ESC, no C1 byte, the rest of the value kept."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out = _Tty()
    render.print_lines([("dim", "a\x1b]0;owned\x07b\x1b[2Jc\x9b31md\x7fe\x00f")], out)
    text = out.getvalue()
    body = text.removeprefix("\x1b[2m").removesuffix("\x1b[0m\n")
    assert "\x1b" not in body and "\x9b" not in body and "\x00" not in body, repr(text)
    assert body == "a^[]0;ownedb^[[2Jc\\x9b31md^?e^@f", repr(body)
