"""envfile.py: Compose's interpolation, env_file forms, precedence and the one-line value edit."""

from __future__ import annotations

import pytest
from conftest import DATA

from rootless_doctor import envfile
from rootless_doctor.envfile import EnvFileText, InterpolationError, interpolate
from rootless_doctor.model import EnvFileRef

VARS = {"A": "1", "E": ""}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$A x", "1 x"),
        ("${A}", "1"),
        ("${B}", ""),
        ("${B:-d}", "d"),
        ("${E:-d}", "d"),  # ":-" also replaces an empty value
        ("${E-d}", ""),  # "-" only an unset one
        ("${B:-${A}}", "1"),
        ("${A:+r}", "r"),
        ("${B+r}", ""),
        ("$$A", "$A"),
        ("a$", "a$"),
        ("25:25", "25:25"),
    ],
)
def test_interpolation_forms(text: str, want: str) -> None:
    assert interpolate(text, VARS) == want


@pytest.mark.parametrize("text", ["${E:?say}", "${B?}", "${", "${A:x}", "${-}"])
def test_interpolation_errors(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, VARS)


def test_interpolation_nesting_is_bounded() -> None:
    deep = "${X:-" * 200 + "v" + "}" * 200
    with pytest.raises(InterpolationError):
        interpolate(deep, {})


def test_env_file_forms_resolve_against_the_compose_dir() -> None:
    refs = envfile.env_file_refs(
        ["a.env", {"path": "./b.env", "required": False}, "/etc/c.env", {"required": True}], "/p"
    )
    assert refs == (
        EnvFileRef(written="a.env", path="/p/a.env"),
        EnvFileRef(written="./b.env", path="/p/b.env", required=False),
        EnvFileRef(written="/etc/c.env", path="/etc/c.env"),
    )
    assert envfile.env_file_refs("mailserver.env", ".")[0].path == "mailserver.env"


def test_precedence_and_origin() -> None:
    refs = envfile.env_file_refs(["one.env", "two.env", "gone.env"], "/p")
    files = {
        "/p/one.env": EnvFileText(text="X=1\nY=1\n"),
        "/p/two.env": EnvFileText(text="Y=2\nZ\n"),
        "/p/gone.env": EnvFileText(text=None, error="not found"),
    }
    got = envfile.service_env({"X": "env", "W": None}, refs, files)
    assert got.values == {"X": "env", "Y": "2"}
    assert got.origin["X"] == "environment" and got.origin["Y"] == "two.env"
    assert got.origin["W"].startswith("the shell")
    assert got.missing == ("gone.env: not found",)


def test_dms_env_file_as_shipped() -> None:
    text = (DATA / "compose/dms-upstream-c9b015d/mailserver.env").read_text()
    values = envfile.parse_env_text(text)
    assert values["PERMIT_DOCKER"] == "none" and values["NETWORK_INTERFACE"] == ""
    assert values["POSTGREY_TEXT"] == "Delayed by Postgrey"
    assert envfile.defines(text, "NETWORK_INTERFACE")
    assert not envfile.defines("#NETWORK_INTERFACE=x\nNETWORK_INTERFACE\n", "NETWORK_INTERFACE")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("A=1\nB=2\n", "A=1\nB=x\n"),
        ("B=2", "B=x"),  # no final newline: still none
        ("export B='2' # c\n", "export B='x' # c\n"),
        ("B=1 # old\n", "B=x # old\n"),
        ('B="1"\nB=2\r\n', 'B="1"\nB=x\r\n'),  # the last one wins, so it is the one set
        ("A=1", "A=1\nB=x\n"),  # absent: appended after a newline
        ("", "B=x\n"),
    ],
)
def test_set_value_keeps_the_rest(text: str, want: str) -> None:
    assert envfile.set_value(text, "B", "x") == want
