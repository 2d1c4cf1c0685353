"""Issue 11: `fix compose` on compose files whose services are scalars or lists (an
AttributeError, exit 3, before), as the real stack user, through the command line."""

from __future__ import annotations

from collections.abc import Iterator

import hostile
import pytest
import stack

pytestmark = pytest.mark.realstack
Sandbox = hostile.Sandbox


@pytest.fixture
def sb(u: stack.User) -> Iterator[Sandbox]:
    with hostile.sandbox(u) as s:
        yield s


@pytest.mark.parametrize(
    ("text", "service"),
    [
        ("services:\n  web:\n    image: a\n  db: foo\n", None),
        ("services:\n  web:\n    image: a\n  db: [a, b]\n", None),
        ("services:\n  web:\n    image: a\n  db:\n    - a\n", "db"),
        ("services:\n  web: nginx\n", "web"),
        ("services:\n  web:\n    image: a\n    environment: FOO\n  db: 3\n", "web"),
    ],
)
def test_compose_services_that_are_scalars_or_lists(
    sb: Sandbox, text: str, service: str | None
) -> None:
    """`fix compose`: AttributeError, exit 3 before."""
    f = sb.put("work/compose.yaml", text)
    args = ["compose", str(f), "--engine", "podman"] + (["--service", service] if service else [])
    o = sb.fix(*args)
    hostile.assert_bounded(o)
    if o.code == 2:
        hostile.one_line_error(o, str(f))
        assert f.read_text() == text
    else:  # a well-formed service next to a broken one may be fixed; the broken one untouched
        assert o.code == 0, o.describe()
        assert "db:" in f.read_text() or service == "web"


def test_compose_networks_scalar_is_named_as_written(sb: Sandbox) -> None:
    """`networks: foo` was spelled "joins networks f, o, o"."""
    f = sb.put("work/compose.yaml", "services:\n  web:\n    image: a\n    networks: front\n")
    o = sb.fix("compose", str(f), "--engine", "podman")
    hostile.assert_bounded(o)
    assert "f, r, o" not in o.stderr + o.stdout, o.describe()


YAML_CASES = [n for n in hostile.PASTES if "YAML" in n]


@pytest.mark.parametrize("name", YAML_CASES)
def test_fix_compose_on_hostile_yaml_is_bounded(sb: Sandbox, name: str) -> None:
    """The --from YAML cases through the writer's round-trip reader: 2,000 nested `[` took 34 s
    and ended in a RecursionError (exit 3) there."""
    build, _ = hostile.PASTES[name]
    f = build(sb.work)
    sb.own()
    before = f.read_bytes()
    o = sb.fix("compose", str(f), "--engine", "podman")
    hostile.assert_bounded(o)
    if o.code == 2:
        hostile.one_line_error(o, str(f))
    assert f.read_bytes() == before or o.code == 0


def test_fix_compose_on_a_huge_file_is_refused(sb: Sandbox) -> None:
    f = sb.put("work/compose.yaml", b"services:\n  s:\n    image: a\n" + b"# pad\n" * 400_000)
    o = sb.fix("compose", str(f), "--engine", "podman")
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(f))
