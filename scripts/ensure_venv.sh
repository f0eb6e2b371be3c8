#!/usr/bin/env bash
# ensure_venv.sh PYTHON VENV_DIR EXTRAS
# Creates VENV_DIR with PYTHON and installs the project (with EXTRAS, e.g. "dev") in ONE resolver run,
# so mitmproxy and httpx are resolved together. Re-installs only when pyproject.toml or EXTRAS change.
set -euo pipefail
py=$1 venv=$2 extras=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
stamp="$venv/.llm-intercept-installed"
project="$(cksum < "$root/pyproject.toml" | cut -d' ' -f1)"
want="$project extras=$extras"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ]; then
  have=$(cat "$stamp")
  # Up to date, or a dev install serving a plain run (it holds everything a plain run needs).
  if [ "$have" = "$want" ] || { [ -z "$extras" ] && [ "${have%% *}" = "$project" ]; }; then
    exit 0
  fi
fi
echo "[llm-intercept] setting up $venv with $("$py" --version 2>&1) (first run only; takes a minute)..." >&2
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
spec="$root"
[ -n "$extras" ] && spec="$root[$extras]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
echo "$want" > "$stamp"
