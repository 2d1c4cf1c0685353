#!/usr/bin/env bash
# The dependency floors (called by .ci/run after the main venv): a second venv with every runtime
# dependency at pyproject's lower bound (.ci/lower-bounds.txt, which tests/test_deps.py holds to
# pyproject), the CLI's help and an offline `check --from`, then the offline tests that reach
# Typer/click, Rich, tomlkit, ruamel.yaml, python-dotenv, filelock and psutil. No real-stack test
# runs here (the main run has them), nor tests/test_startup.py: which modules a run imports
# differs at the floors (pyproject says where). Any failure fails CI. RD_LOWER_VENV: where (default below).
set -euo pipefail
cd "$(dirname "$0")/.."
LV=${RD_LOWER_VENV:-/opt/rootless-doctor-ci-lower}
t0=$SECONDS
rm -rf "$LV"
/usr/bin/python3 -m venv "$LV"
"$LV/bin/pip" install -q --disable-pip-version-check -c .ci/lower-bounds.txt . pytest
"$LV/bin/pip" check --disable-pip-version-check
chmod -R a+rX "$LV"
"$LV/bin/pip" list --disable-pip-version-check 2>/dev/null \
  | grep -iE '^(typer|click|rich|psutil|tomlkit|ruamel\.yaml|python-dotenv|filelock|tomli) ' \
  | tr -s ' ' | paste -sd ';'
T="$LV/bin/rootless-doctor"
"$T" --help >/dev/null
"$T" fix docker --help >/dev/null
rc=0
"$T" check --from tests/data/podman-info/podman-4.3.1-rootless-debian12.json \
  --from tests/data/compose/docker-mailserver-compose.yaml >/dev/null || rc=$?
if [ "$rc" -gt 1 ]; then  # 0 nothing failed, 1 a check failed; 2 usage, 3 internal error
  echo "lower bounds: check --from exited $rc" >&2
  exit 1
fi
RD_TOOL="$T" "$LV/bin/python" -m pytest -q -p no:cacheprovider -m "not realstack" \
  tests/test_deps.py tests/test_cli.py tests/test_render.py tests/test_parse.py \
  tests/test_envfile.py tests/test_fix_compose_envfile.py tests/test_fixes.py \
  tests/test_redact.py tests/test_offline.py
echo "lower bounds: $((SECONDS - t0)) s"
