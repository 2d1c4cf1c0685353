"""Issue 11: fix writers under hostile files, other users' files, races, signals and full disks.

Every case runs the real tool as a process (tests/hostile.py), as the real stack user, or as root
with ``SUDO_USER`` set to that user where the issue's case is ``sudo rootless-doctor ...``. The
user's files live in a sandbox of its own under /tmp (``HOME``, ``XDG_CONFIG_HOME``); Podman's
own configuration stays the harness's (``CONTAINERS_CONF``) so the real podman 4.3.1 answers.
Tests that need root's view of the user's real home save and restore what they touch there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hostile
import pytest
import stack
from conftest import DATA

pytestmark = pytest.mark.realstack

QUADLET = DATA / "systemd/docker-mailserver-docs-podman-quadlet-dms.container"
COMPOSE = DATA / "compose/docker-mailserver-compose.yaml"
CONTAINERS_CONF = DATA / "containers-conf/user-snippet-devcontainer-network-slirp4netns.conf"
DROPIN = DATA / "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"
UNITS = DATA / "systemd"
UNIT_V20 = UNITS / "docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"
UNIT_V29 = UNITS / "docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service"
STATE = hostile.STATE
Sandbox = hostile.Sandbox


@pytest.fixture(scope="module", autouse=True)
def _podman_pause_ended(u: stack.User) -> Iterator[None]:
    """The fixes ask the real podman, which leaves its pause process: end it afterwards."""
    yield
    stack.podman_reset(u)


@pytest.fixture
def sb(u: stack.User) -> Iterator[Sandbox]:
    with hostile.sandbox(u) as s:
        yield s


@pytest.fixture
def real_home(u: stack.User) -> Iterator[Path]:
    """The user's real home, as ``sudo`` sees it; its rootless-doctor state is removed after."""
    h = Path(u.home)
    state = h / STATE
    assert not state.exists(), f"{state}: left by an interrupted run; remove it"
    try:
        yield h
    finally:
        if state.is_symlink():
            state.unlink()
        shutil.rmtree(state, ignore_errors=True)


def sudo_fix(u: stack.User, *args: str, **kw: object) -> hostile.Outcome:
    """``sudo rootless-doctor fix ARGS`` run by ``u``: root, SUDO_USER, sudo's environment."""
    env = {
        "SUDO_USER": u.name,
        "SUDO_UID": str(u.uid),
        "SUDO_GID": str(u.gid),
        "HOME": "/root",
        "PATH": stack.USER_PATH,
    }
    return hostile.run(["fix", *args], env=env, **kw)  # type: ignore[arg-type]


def tree(d: Path) -> dict[str, bytes | str]:
    """Every entry under ``d`` with its bytes (files) or kind."""
    out: dict[str, bytes | str] = {}
    for p in sorted(d.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "symlink"
        elif p.is_file():
            out[str(p)] = p.read_bytes()
        else:
            out[str(p)] = "dir"
    return out


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ============================================================================ fix writers


MARK = b"# last line, untouched, no final newline"


def _no_final_newline(src: Path) -> bytes:
    return src.read_bytes().rstrip(b"\n") + b"\n" + MARK


def _assert_last_line_kept(before: bytes, after: bytes) -> None:
    assert after != before, "the fix changed nothing"
    assert not after.endswith(MARK + b"\n"), "a final newline was added to an untouched line"
    assert MARK in after


def test_final_newline_kept_compose(sb: Sandbox) -> None:
    before = _no_final_newline(COMPOSE)
    f = sb.put("work/compose.yaml", before)
    o = sb.fix("compose", str(f), "--engine", "podman")
    hostile.assert_bounded(o, codes=(0,))
    _assert_last_line_kept(before, f.read_bytes())


# `fix quadlet` needs Podman >= 4.4 (Quadlet); the host has 4.3.1. A `podman` first on PATH
# answers `podman info` with a real Podman 5.4.2 capture (tests/data/SOURCES.md): only the
# version gate reads it, the writer under test is ours.
PODMAN_5 = DATA / "podman-info/podman-5.4.2-rootless-fedora42-via-ramalama-info.json"


def _podman_5(sb: Sandbox) -> None:
    sb.put("bin/podman", f'#!/bin/sh\n[ "$1" = info ] && exec cat {PODMAN_5}\nexit 125\n', 0o755)


def test_final_newline_kept_quadlet(sb: Sandbox) -> None:
    _podman_5(sb)
    before = _no_final_newline(QUADLET)
    f = sb.put("work/dms.container", before)
    o = sb.fix("quadlet", str(f))
    hostile.assert_bounded(o, codes=(0,))
    _assert_last_line_kept(before, f.read_bytes())


def test_final_newline_kept_containers_conf(sb: Sandbox) -> None:
    before = _no_final_newline(CONTAINERS_CONF).replace(b"slirp4netns", b"pasta")
    f = sb.put("cfg/containers/containers.conf", before)
    o = sb.fix("podman")
    hostile.assert_bounded(o, codes=(0,))
    _assert_last_line_kept(before, f.read_bytes())


def test_final_newline_kept_docker_dropin(sb: Sandbox) -> None:
    sb.put("cfg/systemd/user/docker.service", UNIT_V20.read_bytes())
    before = _no_final_newline(DROPIN).replace(b"=slirp4netns", b"=builtin")
    f = sb.put("cfg/systemd/user/docker.service.d/override.conf", before)
    o = sb.fix("docker", "--driver", "slirp4netns")
    hostile.assert_bounded(o, codes=(0,))
    _assert_last_line_kept(before, f.read_bytes())


def test_final_newline_kept_sysctl(u: stack.User, real_home: Path, tmp_path: Path) -> None:
    """`sudo fix privileged-ports` in a private mount namespace whose /etc/sysctl.d is a tmpfs
    of this test (the machine's own sysctl.d is never written). The file is root's: its backup
    is in root's state directory, so the undo runs in the same namespace (an entry left there
    would name the machine's own /etc/sysctl.d)."""
    before = b"# set by the admin\nnet.ipv4.ip_unprivileged_port_start = 1024\n" + MARK
    seed = tmp_path / "seed.conf"
    seed.write_bytes(before)
    after = tmp_path / "after.conf"
    target = "/etc/sysctl.d/99-rootless-doctor-unprivileged-ports.conf"
    prefix, extra = hostile.tool()
    script = (
        'mount -t tmpfs -o size=1m rdtest /etc/sysctl.d && cp "$1" "$2" && shift 2 && '
        '"$@"; rc=$?; cp /etc/sysctl.d/99-rootless-doctor-unprivileged-ports.conf "$AFTER"; '
        '"${@:1:$#-3}" --undo >"$AFTER.undo" 2>&1 || exit 9; exit $rc'
    )
    env = dict(hostile.root_env(**extra), SUDO_USER=u.name, AFTER=str(after))
    cp = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script, "sh", str(seed),
         target, *prefix, "fix", "privileged-ports", "--port", "80"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    undo_log = tmp_path / "after.conf.undo"
    assert cp.returncode == 0, cp.stderr + (undo_log.read_text() if undo_log.exists() else "")
    _assert_last_line_kept(before, after.read_bytes())
    assert "\nundo: sudo rootless-doctor fix --undo" in cp.stdout, cp.stdout  # root's state


def test_multi_file_fix_checks_every_target_before_writing(sb: Sandbox) -> None:
    """RootlessKit 3, `fix docker --driver builtin-transparent`: daemon.json and the drop-in.
    The drop-in is a symlink (refused): daemon.json was written anyway, exit 2 without saying.
    RootlessKit 3 is not packaged here: a `rootlesskit` first on PATH answers `--version` as
    3.0.1 does (rootless-containers/rootlesskit v3.0.1, cmd/rootlesskit version output)."""
    sb.put("bin/rootlesskit", "#!/bin/sh\necho 'rootlesskit version 3.0.1'\n", mode=0o755)
    sb.put("cfg/systemd/user/docker.service", UNIT_V29.read_bytes())
    port = "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"
    real = sb.put("work/override.conf", f"[Service]\nEnvironment={port}=slirp4netns\n")
    link = sb.cfg / "systemd/user/docker.service.d/override.conf"
    link.parent.mkdir()
    link.symlink_to(real)
    sb.own()
    o = sb.fix("docker", "--driver", "builtin-transparent")
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(link))
    assert not (sb.cfg / "docker/daemon.json").exists(), "written before the refusal"
    assert (
        not sb.state.exists() or not json.loads((sb.state / "manifest.json").read_text())["files"]
    )


# ============================================================================ other users' files


def _victims(tmp_path: Path) -> tuple[Path, Path]:
    d = tmp_path / "root-owned"
    d.mkdir()
    a, b = d / "a.conf", d / "b.conf"
    a.write_text("root's file a\n")
    b.write_text("root's file b\n")
    for p in (d, a, b):
        os.chown(p, 0, 0)
    return a, b


def _forge(u: stack.User, home: Path, entries: dict[str, dict[str, object]]) -> None:
    """The user writes a manifest of their choosing (their own state dir)."""
    body = json.dumps({"version": 1, "files": entries})
    cp = stack.run_as(
        u,
        ["sh", "-c", 'mkdir -p "$1/backups" && cat > "$1/manifest.json"', "sh", str(home / STATE)],
        input=body,
    )
    assert cp.returncode == 0, cp.stderr


def test_forged_manifest_under_sudo_undo_touches_no_root_file(
    u: stack.User, real_home: Path, tmp_path: Path
) -> None:
    """A user-writable manifest told root to put the user's bytes into a root file (chowned to
    the user) and to delete another root file."""
    a, b = _victims(tmp_path)
    evil = stack._user_tmpdir(u, "rd-h11-evil-") / "evil"
    evil.write_text("the user's bytes\n")
    os.chown(evil, u.uid, u.gid)
    a_stat = a.stat()
    _forge(
        u,
        real_home,
        {
            str(a): {"existed": True, "backup": str(evil), "mode": 0o644, "uid": u.uid,
                     "gid": u.gid, "sha_written": sha(a.read_bytes())},
            str(b): {"existed": False, "sha_written": sha(b.read_bytes())},
        },
    )  # fmt: skip
    try:
        o = sudo_fix(u, "--undo")
        hostile.assert_bounded(o)
        assert a.read_text() == "root's file a\n", o.describe()
        assert (a.stat().st_uid, a.stat().st_mode) == (a_stat.st_uid, a_stat.st_mode)
        assert b.exists() and b.read_text() == "root's file b\n", o.describe()
        assert o.code != 0, "a refused manifest entry must not look like success"
        hostile.one_line_error(o, str(a), "manifest.json", "nothing was undone")
    finally:
        shutil.rmtree(evil.parent, ignore_errors=True)


def test_forged_backup_path_does_not_leak_a_root_file(
    u: stack.User, real_home: Path, tmp_path: Path, sb: Sandbox
) -> None:
    """The backup named in the manifest is root's 0600 file: root copied it into the user's
    file (and then deleted it)."""
    secret = tmp_path / "secret"
    secret.write_text("root-only secret\n")
    secret.chmod(0o600)
    mine = sb.put("work/mine.conf", "the user's own file\n")
    _forge(
        u,
        real_home,
        {str(mine): {"existed": True, "backup": str(secret), "mode": 0o644, "uid": u.uid,
                     "gid": u.gid, "sha_written": sha(mine.read_bytes())}},
    )  # fmt: skip
    o = sudo_fix(u, "--undo")
    hostile.assert_bounded(o)
    assert b"secret" not in mine.read_bytes(), o.describe()
    assert secret.exists(), "root's file was deleted as a 'used backup'"


def test_sudo_fix_of_a_foreign_0600_file_leaks_nothing_to_sudo_user(
    u: stack.User, real_home: Path, tmp_path: Path
) -> None:
    """Root fixes a root-owned 0600 file outside any home for SUDO_USER: its bytes went into
    SUDO_USER's backups, readable by SUDO_USER. Now its backup is root's, 0600 in root's own
    state directory, and `sudo fix --undo` restores it."""
    d = tmp_path / "srv-mail"
    d.mkdir()
    f = d / "compose.yaml"
    secret = b"# root-only: PASSWORD=hunter2\n"
    original = COMPOSE.read_bytes() + secret
    f.write_bytes(original)
    f.chmod(0o600)
    o = sudo_fix(u, "compose", str(f), "--engine", "podman")
    try:
        hostile.assert_bounded(o, codes=(0,))
        assert f.read_bytes() != original, "the fix changed nothing"
        if (real_home / STATE).exists():
            cp = stack.run_as(u, ["grep", "-rl", "hunter2", str(real_home / STATE)])
            assert cp.stdout == "", f"SUDO_USER can read root's bytes in {cp.stdout}"
        kept = [ln for ln in o.stdout.splitlines() if "original kept in" in ln]
        assert kept, o.stdout
        # root's state keeps the backup: the user's own `fix --undo` cannot restore it
        assert "\nundo: sudo rootless-doctor fix --undo" in o.stdout, o.stdout
        backup = Path(kept[0].split("original kept in ")[1].split(")")[0])
        assert backup.read_bytes() == original
        st = backup.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600), backup
        assert stack.run_as(u, ["cat", str(backup)]).returncode != 0
    finally:
        undone = sudo_fix(u, "--undo")
    hostile.assert_bounded(undone, codes=(0,))
    assert f.read_bytes() == original, undone.describe()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_symlinked_state_dir_is_not_followed_as_root(
    u: stack.User, real_home: Path, tmp_path: Path, sb: Sandbox
) -> None:
    rootdir = tmp_path / "root-owned-state"
    rootdir.mkdir()
    before = tree(rootdir)
    state = real_home / STATE
    cp = stack.run_as(u, ["sh", "-c", f'mkdir -p "$(dirname {state})" && ln -s {rootdir} {state}'])
    assert cp.returncode == 0, cp.stderr
    f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
    o = sudo_fix(u, "compose", str(f), "--engine", "podman")
    hostile.assert_bounded(o)
    assert tree(rootdir) == before, f"root wrote into {rootdir} through {state}"
    hostile.one_line_error(o, str(state))
    assert f.read_bytes() == COMPOSE.read_bytes()


def test_symlinked_config_dir_is_not_followed_as_root(
    u: stack.User, real_home: Path, tmp_path: Path
) -> None:
    """~/.config → a root-owned directory: `sudo fix docker` created the drop-in there, owned by
    SUDO_USER."""
    rootcfg = tmp_path / "root-owned-config"
    (rootcfg / "systemd/user").mkdir(parents=True)
    shutil.copy(UNIT_V20, rootcfg / "systemd/user/docker.service")
    before = tree(rootcfg)
    cfg = real_home / ".config"
    saved = real_home / ".config.rd-h11-saved"
    assert not saved.exists()
    cfg.rename(saved)
    try:
        cfg.symlink_to(rootcfg)
        o = sudo_fix(u, "docker", "--driver", "slirp4netns")
        hostile.assert_bounded(o)
        assert tree(rootcfg) == before, f"root wrote into {rootcfg} through {cfg}"
        hostile.one_line_error(o, str(cfg))
    finally:
        if cfg.is_symlink():
            cfg.unlink()
        saved.rename(cfg)


def test_xdg_state_home_is_honoured(sb: Sandbox) -> None:
    f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
    state_home = sb.base / "state"
    o = sb.fix("compose", str(f), "--engine", "podman", env={"XDG_STATE_HOME": str(state_home)})
    hostile.assert_bounded(o, codes=(0,))
    assert (state_home / "rootless-doctor/manifest.json").is_file()
    assert not sb.state.exists()
    o = sb.fix("--undo", env={"XDG_STATE_HOME": str(state_home)})
    hostile.assert_bounded(o, codes=(0,))
    assert f.read_bytes() == COMPOSE.read_bytes()


# ============================================================================ races, signals, disks


def _start_fix(sb: Sandbox, *args: str, wrap: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    prefix, extra = hostile.tool(sb.u)
    env = stack.user_env(sb.u)
    env.update(extra)
    env.update(sb.env())
    return subprocess.Popen(
        [*wrap, *stack._as_user_argv(sb.u, [*prefix, "fix", *args], env)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sb.base,
    )  # fmt: skip


# The first fix stops 2.5 s after each rename it makes (strace fault injection); the second
# starts once the first has made one (it is then inside its write) and runs in that pause.
RENAMES = "rename,renameat,renameat2"
SLOW = ("strace", "-qq", "-o", "/dev/null", "-e", f"trace={RENAMES}",
        "-e", f"inject={RENAMES}:delay_exit=2500000")  # fmt: skip


def _race(sb: Sandbox, first: list[str], second: list[str]) -> dict[str, tuple[str, str, int]]:
    """Run ``fix FIRST`` slowed down and ``fix SECOND`` inside its write; (out, err, code)."""
    before = {p: p.stat().st_mtime_ns for p in sb.work.iterdir()}
    slow = _start_fix(sb, *first, wrap=SLOW)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and slow.poll() is None:
        moved = any(p.stat().st_mtime_ns != before.get(p) for p in sb.work.iterdir())
        if moved or any(sb.state.rglob("*")) or any(sb.base.glob("state/**/*")):
            break
        time.sleep(0.01)
    fast = _start_fix(sb, *second)
    out = {}
    for name, p in (("first", slow), ("second", fast)):
        o, e = p.communicate(timeout=120)
        out[name] = (o, e, p.returncode)
    return out


TWO_SERVICES = (
    "services:\n"
    "  a:\n    image: docker.io/library/busybox\n    ports:\n      - '8081:80'\n"
    "  b:\n    image: docker.io/library/busybox\n    ports:\n      - '8082:80'\n"
)


def test_two_fixes_of_one_file_at_once_lose_no_change(sb: Sandbox) -> None:
    """Both said "wrote", one change was lost (2 of 30 pairs)."""
    f = sb.put("work/compose.yaml", TWO_SERVICES)
    fix = ["compose", str(f), "--engine", "podman", "--service"]
    outs = _race(sb, [*fix, "a"], [*fix, "b"])
    text = f.read_text()
    blocks = {"a": text.split("  b:\n")[0], "b": text.split("  b:\n")[1]}
    said = {"first": "a", "second": "b"}
    for name, (out, err, code) in outs.items():
        assert code in (0, 2), err
        if "wrote" in out:
            s = said[name]
            assert "network_mode" in blocks[s], f"{s}: said wrote, change lost:\n{text}"
    o = sb.fix("--undo")
    hostile.assert_bounded(o, codes=(0,))
    assert f.read_text() == TWO_SERVICES, "undo did not restore the original"


def test_two_fixes_of_two_files_at_once_keep_both_manifest_entries(sb: Sandbox) -> None:
    """A manifest entry was lost (4 of 30 pairs): undo left a file modified."""
    f1 = sb.put("work/one.yaml", COMPOSE.read_bytes())
    f2 = sb.put("work/two.yaml", COMPOSE.read_bytes())
    pod = ("--engine", "podman")
    outs = _race(sb, ["compose", str(f1), *pod], ["compose", str(f2), *pod])
    for out, err, code in outs.values():
        assert code == 0, err
        assert "wrote" in out
    o = sb.fix("--undo")
    hostile.assert_bounded(o, codes=(0,))
    assert f1.read_bytes() == COMPOSE.read_bytes(), "one.yaml left modified"
    assert f2.read_bytes() == COMPOSE.read_bytes(), "two.yaml left modified"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_at_any_rename_leaves_an_undoable_state(sb: Sandbox, signum: int) -> None:
    """SIGINT/SIGTERM between the replace and the manifest save: the file was new and undo said
    "nothing to undo" (38 of 245); SIGTERM left temp files (58 of 245).

    strace delivers the signal exactly when the tool enters its N-th rename (every atomic write
    ends in one: backup, target, manifest), for each N until a run finishes unsignalled."""
    name = signal.Signals(signum).name[3:]
    for n in range(1, 8):
        f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
        inject = f"rename,renameat,renameat2:signal={name}:when={n}"
        o = hostile.run(
            ["fix", "compose", str(f), "--engine", "podman"],
            u=sb.u,
            env=sb.env(),
            wrap=["strace", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2",
                    "-e", f"inject={inject}"],
        )  # fmt: skip
        assert not o.hung, o.describe()
        assert "Traceback" not in o.stderr, o.describe()
        leftovers = [p for p in (*sb.work.iterdir(), *sb.state.rglob("*")) if "rdtmp" in p.name]
        assert not leftovers, f"signal at rename {n}: temp files left: {leftovers}"
        undone = sb.fix("--undo")
        hostile.assert_bounded(undone, codes=(0,))
        assert f.read_bytes() == COMPOSE.read_bytes(), (
            f"signal at rename {n}: not restored ({undone.stdout.strip()})"
        )
        if o.code == 0:
            break  # the signal came after the last rename: every window was covered
    else:
        pytest.fail("the fix never finished: more renames than expected?")


def test_ctrl_c_while_the_modules_load_is_one_line(sb: Sandbox) -> None:
    """Ctrl-C in the first second (the modules still loading; bench/fix_faults.py found 4 of 60
    random signals there) printed Python's traceback. strace sends SIGINT when the tool first
    touches rootless_doctor/cli.py, i.e. while it is being imported."""
    where = str(hostile.REPO / "rootless_doctor")  # the checkout, unless RD_TOOL is installed
    script = Path(hostile.tool(sb.u)[0][0])
    head = script.read_bytes()[:200] if script.is_file() else b""
    if head.startswith(b"#!/"):  # a console script: ask its interpreter where the package is
        code = "import rootless_doctor, os; print(os.path.dirname(rootless_doctor.__file__))"
        interp = head[2:].split(b"\n")[0].split()[0].decode()
        # -I: not the checkout in the current directory (CI runs from a clone of it), the
        # installed package the tool really imports.
        cp = subprocess.run([interp, "-I", "-c", code], capture_output=True, text=True, check=True)
        where = cp.stdout.strip()
    f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
    o = hostile.run(
        ["fix", "compose", str(f), "--engine", "podman"],
        u=sb.u,
        env=sb.env(),
        wrap=["strace", "-qq", "-f", "-o", "/dev/null", "-P", f"{where}/cli.py",
              "-e", "trace=%file", "-e", "inject=%file:signal=INT:when=1"],
    )  # fmt: skip
    assert o.code == 130, o.describe()
    lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
    assert lines == ["rootless-doctor: interrupted"], o.describe()
    assert f.read_bytes() == COMPOSE.read_bytes()


def test_full_state_dir_writes_nothing_and_undo_works(sb: Sandbox) -> None:
    """State dir full: the target was created, then the manifest could not be written → exit 2
    "cannot write" though the file changed, and `fix --undo` crashed (exit 3). A tmpfs of this
    test's own, unmounted afterwards."""
    sb.put("cfg/systemd/user/docker.service", UNIT_V20.read_bytes())
    sb.state.parent.mkdir(parents=True)
    sb.own()
    target = sb.cfg / "systemd/user/docker.service.d/override.conf"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=64k,mode=0700,uid={sb.u.uid},gid={sb.u.gid}",
         "rd-h11-full", str(sb.state.parent)],
        check=True,
    )  # fmt: skip
    try:
        (sb.state).mkdir(mode=0o700)
        os.chown(sb.state, sb.u.uid, sb.u.gid)
        hostile.fill(sb.state)
        o = sb.fix("docker", "--driver", "slirp4netns")
        hostile.assert_bounded(o)
        assert o.code == 2, o.describe()
        assert not target.exists(), f"{target} written though undo could not be recorded"
        undone = sb.fix("--undo")
        hostile.assert_bounded(undone, codes=(0,))
    finally:
        subprocess.run(["umount", str(sb.state.parent)], check=True)
