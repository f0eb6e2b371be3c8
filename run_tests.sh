#!/usr/bin/env bash
# Runs the whole test suite on every supported Python/mitmproxy pair this machine has:
#   Python 3.12 with the oldest supported mitmproxy line (12.1.x, its newest patch) and
#   Python 3.13 with the newest mitmproxy. Each pair gets its own virtual environment, made on first use
#   (.venv-py3.12-mitm12.1, .venv-py3.13); a pair whose Python is missing is skipped with a note.
# Extra arguments go to pytest.
#   ./run_tests.sh                                  # everything
#   ./run_tests.sh -k streaming                     # a subset
#   LLM_TEST_PYTHONS=3.13 ./run_tests.sh            # one pair: a version, a command or a path...
#   LLM_TEST_PYTHONS="python3.12:mitmproxy==12.2.*" ./run_tests.sh   # ...optionally :REQUIREMENT
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

pairs=${LLM_TEST_PYTHONS:-"3.12:mitmproxy==12.1.* 3.13"}
read -ra pair_list <<< "$pairs"  # not `for pair in $pairs`: that would glob the `*`
status=0
ran=0
checked=0
for pair in "${pair_list[@]}"; do
  want=${pair%%:*}
  req=""
  [ "$pair" != "$want" ] && req=${pair#*:}
  if [[ "$want" =~ ^3\.[0-9]+$ ]]; then
    py=$(scripts/ensure_venv.sh --find "$want") || { echo "=== Python $want not found: skipped ===" >&2; continue; }
  else
    py=$want
  fi
  minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  # "mitmproxy==12.1.*" -> "-mitm12.1": one venv per pair.
  tag=$(printf %s "$req" | sed 's/mitmproxy/mitm/; s/[^A-Za-z0-9.]//g; s/\.$//')
  venv=".venv-py$minor${tag:+-$tag}"
  scripts/ensure_venv.sh "$py" "$root/$venv" dev "$req"
  mitm=$("$venv/bin/python" -c 'import mitmproxy.version as v; print(v.VERSION)')
  echo "=== Python $minor, mitmproxy $mitm ($venv) ==="
  if [ "$checked" = 0 ]; then
    "$venv/bin/ruff" check --quiet . || status=1
    checked=1
  fi
  "$venv/bin/python" -m pytest -q -p no:randomly "$@" || status=1
  ran=$((ran + 1))
done
if [ "$ran" = 0 ]; then
  echo "run_tests.sh: none of the supported Pythons ($pairs) was found; llm-intercept needs Python >= 3.12" >&2
  exit 1
fi
exit $status
