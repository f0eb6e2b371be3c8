#!/usr/bin/env bash
# Shared by run_proxy.sh and run_tests.sh.
#   ensure_venv.sh --find [3.N]                 print a working Python >= 3.12 (or exactly 3.N); status 1 if none
#   ensure_venv.sh PYTHON VENV_DIR EXTRAS [REQ]  make VENV_DIR with PYTHON ("auto": --find) and install the
#       project with EXTRAS (e.g. "dev") and the extra requirement REQ (e.g. "mitmproxy==12.1.*") in ONE
#       resolver run, so mitmproxy, h2 and httpx are resolved together. A venv made by a Python older than
#       3.12 is recreated; the install is redone only when pyproject.toml, EXTRAS or REQ change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
min_minor=12  # mitmproxy >= 12.1.2 (and its h2 >= 4.3 fix) needs Python 3.12

# Prints PY's "3.N" when it really runs (pyenv shims of inactive versions exist but fail) and is >= 3.12.
usable() {
  "$1" -c "import sys; assert sys.version_info >= (3, $min_minor); print('%d.%d' % sys.version_info[:2])" \
    2>/dev/null
}

find_python() {
  local want=${1:-} pyenv=${PYENV_ROOT:-$HOME/.pyenv} c v
  local candidates=()
  if [ -n "$want" ]; then
    candidates=("python$want" "$pyenv"/versions/"$want"*/bin/"python$want" /usr/bin/"python$want"
      /usr/local/bin/"python$want")
  else
    candidates=(python3 python3.13 python3.12 "$pyenv"/versions/3.1[2-9]*/bin/python3.1[2-9]
      /usr/bin/python3.1[2-9] /usr/local/bin/python3.1[2-9])
  fi
  for c in "${candidates[@]}"; do
    if v=$(usable "$c") && { [ -z "$want" ] || [ "$v" = "$want" ]; }; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if [ "${1:-}" = --find ]; then
  find_python "${2:-}"
  exit
fi

py=$1 venv=$2 extras=${3:-} req=${4:-}
stamp="$venv/.llm-intercept-installed"
project="$(cksum < "$root/pyproject.toml" | cut -d' ' -f1)"
want="$project extras=$extras req=$req"
if have_version=$(usable "$venv/bin/python") && [ -f "$stamp" ]; then
  have=$(cat "$stamp")
  # Up to date, or a dev install serving a plain run (it holds everything a plain run needs).
  if [ "$have" = "$want" ] || { [ -z "$extras$req" ] && [ "${have%% *}" = "$project" ]; }; then
    exit 0
  fi
fi

if [ "$py" = auto ]; then
  py=$(find_python) || {
    echo "llm-intercept needs Python 3.$min_minor or newer (mitmproxy >= 12.1.2 requires it); none found as" \
      "python3, python3.13, python3.12, under ${PYENV_ROOT:-$HOME/.pyenv}/versions, /usr/bin or /usr/local/bin." \
      "Install one (e.g. your package manager's python3.12, or pyenv install 3.12) and run again." >&2
    exit 1
  }
fi
version=$(usable "$py") || { echo "ensure_venv.sh: $py is not a working Python >= 3.$min_minor" >&2; exit 1; }
if [ -z "$have_version" ]; then
  [ -d "$venv" ] && echo "[llm-intercept] $venv was made by a Python older than 3.$min_minor: recreating it" >&2
  echo "[llm-intercept] setting up $venv with Python $version (first run only; takes a minute)..." >&2
  "$py" -m venv --clear "$venv"
else
  echo "[llm-intercept] updating the packages in $venv (Python $have_version)..." >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
spec="$root"
[ -n "$extras" ] && spec="$root[$extras]"
reqs=(-e "$spec")
[ -n "$req" ] && reqs+=("$req")
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
echo "$want" > "$stamp"
