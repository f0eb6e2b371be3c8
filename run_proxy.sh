#!/usr/bin/env bash
# llm-intercept launcher: sets up its own virtual environment on first use, then runs mitmdump
# (or mitmweb with --web) with the addon. Run ./run_proxy.sh --help for the options.
set -euo pipefail
umask 077  # history, state and saved flows hold prompts: owner-only from creation (mitmproxy opens --save early)
root=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'TXT'
Usage: ./run_proxy.sh [options] [-- mitmproxy options...]
       ./run_proxy.sh replay FILE [--model BACKEND:MODEL] [--session ID] [options]

Starts llm-intercept, an OpenAI-compatible proxy, on 127.0.0.1. With `replay`, re-sends the LLM
requests saved in FILE (see --save) through the proxy, against --model, and prints the original and
the new answer side by side (text, tokens, latency).

  --host HOST                        address to bind (default: $PROXY_HOST or 127.0.0.1)
  --port PORT                        port (default: $PROXY_PORT, else 8000 in reverse mode, 8080 in regular mode)
  --mode reverse|regular             reverse: clients use http://HOST:PORT/v1 as base URL (default)
                                     regular: explicit HTTP(S) proxy; calls to api.openai.com are redirected
  --reverse-target URL               reverse mode: forward paths the proxy does not serve to URL (else 404)
  --default-backend openrouter|gemini
  --command-prefix PREFIX            prefix of in-chat commands (default: !/)
  --interactive-mode                 answer command-only messages with a banner
  --disable-redact-api-keys-in-prompts
  --config FILE                      runtime state file that in-chat commands update
  --settings FILE                    YAML settings file (default: mitm_config.yaml)
  --env-file FILE                    dotenv file with API keys (default: .env next to run_proxy.sh,
                                     never one in the current folder)
  --openrouter-api-base-url URL
  --gemini-api-base-url URL
  --timeout SECONDS                  how long to wait for upstream data
  --save FILE                        write every LLM flow to FILE (mitmproxy format; keys are masked)
  --web                              run mitmweb (flow inspector UI) instead of mitmdump; log in with the
                                     ?token= URL it prints, or set a password: -- --set web_password=...
  --web-port PORT                    mitmweb UI port (default: 8081)
  -h, --help                         this text

API keys come from the environment or .env: OPENROUTER_API_KEY (or OPENROUTER_API_KEY_1.._20),
GEMINI_API_KEY (or GEMINI_API_KEY_1.._20). Anything after -- is passed to mitmproxy unchanged.
TXT
}

die() { echo "run_proxy.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

host=${PROXY_HOST:-127.0.0.1}
port=${PROXY_PORT:-}
mode=reverse
reverse_target=https://api.openai.com
web=0
web_port=8081
sets=()
passthrough=()
replay_file=""
replay_sets=()
if [ "${1:-}" = replay ]; then
  shift
  [ $# -ge 1 ] && [ -f "$1" ] || die "replay needs a saved flow file (see --save)"
  replay_file=$1
  shift
fi

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --host) need "$@"; host=$2; shift 2 ;;
    --port) need "$@"; port=$2; shift 2 ;;
    --mode) need "$@"; mode=$2; shift 2 ;;
    --reverse-target) need "$@"; reverse_target=$2; sets+=(--set "reverse_passthrough=true"); shift 2 ;;
    --default-backend) need "$@"; sets+=(--set "llm_backend=$2"); shift 2 ;;
    --command-prefix) need "$@"; sets+=(--set "command_prefix=$2"); shift 2 ;;
    --interactive-mode) sets+=(--set "interactive_mode=true"); shift ;;
    --disable-redact-api-keys-in-prompts) sets+=(--set "redact_api_keys_in_prompts=false"); shift ;;
    --config) need "$@"; sets+=(--set "llm_state=$2"); shift 2 ;;
    --settings) need "$@"; [ -f "$2" ] || die "settings file $2 does not exist"; sets+=(--set "llm_config=$2"); shift 2 ;;
    --env-file) need "$@"; [ -f "$2" ] || die "env file $2 does not exist"; sets+=(--set "llm_env_file=$2"); env_file=$2; shift 2 ;;
    --openrouter-api-base-url) need "$@"; sets+=(--set "openrouter_api_base_url=$2"); shift 2 ;;
    --gemini-api-base-url) need "$@"; sets+=(--set "gemini_api_base_url=$2"); shift 2 ;;
    --timeout) need "$@"; sets+=(--set "proxy_timeout=$2"); shift 2 ;;
    --save) need "$@"; sets+=(--set "save_stream_file=$2" --set "save_stream_filter=~marked"); shift 2 ;;
    --model) need "$@"; [ -n "$replay_file" ] || die "--model belongs to replay"; replay_sets+=(--set "llm_replay_model=$2"); shift 2 ;;
    --session) need "$@"; [ -n "$replay_file" ] || die "--session belongs to replay"; replay_sets+=(--set "llm_replay_session=$2"); shift 2 ;;
    --web) web=1; shift ;;
    --web-port) need "$@"; web_port=$2; shift 2 ;;
    --) shift; passthrough=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$mode" in
  reverse) port=${port:-8000}; mode_spec="reverse:${reverse_target}@${port}" ;;
  regular) port=${port:-8080}; mode_spec="regular@${port}" ;;
  *) die "--mode must be reverse or regular, not '$mode'" ;;
esac
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -le 65535 ] || die "--port must be a number from 0 to 65535, not '$port'"
[[ "$web_port" =~ ^[0-9]+$ ]] || die "--web-port must be a number, not '$web_port'"

# Shared state for several instances (LLM_REDIS_URL / LLM_DATABASE_URL, in the environment, .env or
# `-- --set redis_url=...`) needs the optional `team` extra: installed only then.
extras=""
if [ -n "${LLM_REDIS_URL:-}${LLM_DATABASE_URL:-}" ] \
  || grep -qsE '^[[:space:]]*(export[[:space:]]+)?LLM_(REDIS|DATABASE)_URL=.+' "${env_file:-$root/.env}" \
  || [[ " ${passthrough[*]:-} " =~ (redis_url|database_url)= ]]; then
  extras="team"
fi
# "auto": the first Python >= 3.12 found (python3, python3.13, python3.12, pyenv, /usr/bin, /usr/local/bin).
"$root/scripts/ensure_venv.sh" auto "$root/.venv" "$extras"

if [ -n "$replay_file" ]; then
  # No listening server: mitmproxy's client replay sends the requests, llm_proxy answers them.
  exec "$root/.venv/bin/mitmdump" -n --set termlog_verbosity=warn --set flow_detail=0 \
    -s "$root/addons/llm_proxy.py" -s "$root/addons/replay.py" \
    --set "llm_replay_file=$replay_file" "${replay_sets[@]}" "${sets[@]}" "${passthrough[@]}"
fi

tool=mitmdump
web_args=()
if [ "$web" = 1 ]; then
  tool=mitmweb
  web_args=(--web-host 127.0.0.1 --web-port "$web_port")
  echo "[llm-intercept] web UI on 127.0.0.1:$web_port needs a login: open the URL that mitmweb prints below" \
    "(\"Web server listening at http://...?token=...\"; the token is new on every start), or choose a" \
    "fixed password with: -- --set web_password=SECRET" >&2
fi

echo "[llm-intercept] $mode mode on $host:$port" >&2
if [ "$mode" = reverse ]; then
  echo "[llm-intercept] point OpenAI clients at: http://$host:$port/v1" >&2
else
  echo "[llm-intercept] set HTTPS_PROXY=http://$host:$port and trust ~/.mitmproxy/mitmproxy-ca-cert.pem" >&2
fi

exec "$root/.venv/bin/$tool" \
  -s "$root/addons/llm_proxy.py" \
  --listen-host "$host" \
  --mode "$mode_spec" \
  --set connection_strategy=lazy \
  "${web_args[@]}" \
  "${sets[@]}" \
  "${passthrough[@]}"
