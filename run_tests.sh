#!/usr/bin/env bash
# Runs the whole test suite on every supported interpreter this machine has:
#   python3 (mitmproxy 11 on 3.11, 12 on 3.12+) and, if present, python3.12 (mitmproxy 12).
# Each gets its own virtual environment, created on first use. Extra arguments go to pytest.
#   ./run_tests.sh                 # everything
#   ./run_tests.sh -k streaming    # a subset
#   LLM_TEST_PYTHONS=python3 ./run_tests.sh   # one interpreter only
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

find_python312() {
  # pyenv installs shims for versions that are not active; only accept one that really runs.
  if python3.12 --version >/dev/null 2>&1; then echo python3.12; return; fi
  for p in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if [ -x "$p" ] && "$p" --version >/dev/null 2>&1; then echo "$p"; return; fi
  done
}

pythons=${LLM_TEST_PYTHONS:-}
if [ -z "$pythons" ]; then
  pythons=python3
  p312=$(find_python312 || true)
  main_minor=$(python3 -c 'import sys; print(sys.version_info[1])')
  if [ -n "$p312" ] && [ "$main_minor" != 12 ]; then pythons="python3 $p312"; fi
fi

status=0
for py in $pythons; do
  minor=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  venv=".venv"
  [ "$py" != python3 ] && venv=".venv-py$minor"
  "$root/scripts/ensure_venv.sh" "$py" "$root/$venv" dev
  mitm=$("$venv/bin/python" -c 'import mitmproxy.version as v; print(v.VERSION)')
  echo "=== Python $minor, mitmproxy $mitm ($venv) ==="
  "$venv/bin/ruff" check --quiet . || status=1
  "$venv/bin/python" -m pytest -q -p no:randomly "$@" || status=1
done
exit $status
