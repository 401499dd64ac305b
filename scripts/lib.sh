# Shared by scripts/test, scripts/start and scripts/bench: create or reuse the virtual
# environments, reinstalling only when what they are built from has changed.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DEV_VENV="$ROOT/.venv"
LITELLM_VENV="$ROOT/.venv-litellm"

say() { printf '==> %s\n' "$*" >&2; }

# venv_is_current VENV STAMP_SOURCE...: true when VENV was built from these exact files.
venv_is_current() {
    local venv="$1"; shift
    [ -x "$venv/bin/python" ] && [ -f "$venv/.built-from" ] &&
        [ "$(cat "$@" | sha256sum)" = "$(cat "$venv/.built-from")" ]
}

mark_built() {
    local venv="$1"; shift
    cat "$@" | sha256sum > "$venv/.built-from"
}

ensure_dev_venv() {
    if venv_is_current "$DEV_VENV" "$ROOT/pyproject.toml"; then return; fi
    say "Installing the memory proxy and its test tools into .venv"
    "$PYTHON" -m venv "$DEV_VENV"
    "$DEV_VENV/bin/pip" install --quiet --upgrade pip
    "$DEV_VENV/bin/pip" install --progress-bar on -e "$ROOT[dev]"
    mark_built "$DEV_VENV" "$ROOT/pyproject.toml"
}

ensure_runtime_venv() {
    if [ -x "$DEV_VENV/bin/start-proxies" ]; then return; fi
    say "Installing the memory proxy into .venv"
    "$PYTHON" -m venv "$DEV_VENV"
    "$DEV_VENV/bin/pip" install --quiet --upgrade pip
    "$DEV_VENV/bin/pip" install --progress-bar on -e "$ROOT"
}

ensure_litellm_venv() {
    local lock="$ROOT/scripts/litellm-requirements.txt"
    if venv_is_current "$LITELLM_VENV" "$lock"; then return; fi
    say "Installing the pinned LiteLLM into .venv-litellm (about 1 minute, 740 MB)"
    "$PYTHON" -m venv "$LITELLM_VENV"
    "$LITELLM_VENV/bin/pip" install --quiet --upgrade pip
    "$LITELLM_VENV/bin/pip" install --progress-bar on -r "$lock"
    mark_built "$LITELLM_VENV" "$lock"
}

ensure_redis_server() {
    if command -v redis-server >/dev/null 2>&1; then return; fi
    say "Installing redis-server from Debian's packages"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    # The package starts a system-wide server; the tests start their own on free ports.
    $sudo service redis-server stop >/dev/null 2>&1 || true
}
