# Shared by scripts/test, scripts/start and scripts/bench: create or reuse the virtual
# environments, reinstalling only when what they are built from has changed.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DEV_VENV="$ROOT/.venv"
LITELLM_VENV="$ROOT/.venv-litellm"

say() { printf '==> %s\n' "$*" >&2; }

# install_once VENV STAMP "SOURCES" PIP_ARGS...: (re)build VENV with `pip install PIP_ARGS`
# unless it was built, under the name STAMP, from these exact SOURCES (files, space-separated).
install_once() {
    local venv="$1" stamp="$1/.built-$2" sources="$3"; shift 3
    local digest
    # shellcheck disable=SC2086  # SOURCES is a list of paths without spaces
    digest="$(cat $sources | sha256sum)"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
        return
    fi
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --progress-bar on "$@"
    echo "$digest" > "$stamp"
}

ensure_dev_venv() {
    say "Checking .venv (the memory proxy and its test tools)"
    local lock="$ROOT/scripts/requirements-dev.txt"
    install_once "$DEV_VENV" dev "$ROOT/pyproject.toml $lock $ROOT/scripts/requirements.txt" \
        -r "$lock" -e "$ROOT[dev]"
}

ensure_runtime_venv() {
    say "Checking .venv (the memory proxy)"
    local lock="$ROOT/scripts/requirements.txt"
    install_once "$DEV_VENV" runtime "$ROOT/pyproject.toml $lock" -r "$lock" -e "$ROOT"
}

ensure_litellm_venv() {
    say "Checking .venv-litellm (the pinned LiteLLM; first install about 1 minute, 740 MB)"
    install_once "$LITELLM_VENV" litellm "$ROOT/scripts/litellm-requirements.txt" \
        -r "$ROOT/scripts/litellm-requirements.txt"
}

# apt_install COMMAND PACKAGE: install PACKAGE from Debian's packages unless COMMAND exists.
apt_install() {
    if command -v "$1" >/dev/null 2>&1; then return 1; fi
    say "Installing $2 from Debian's packages"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

# stop_service NAME: stop the system-wide server a package has just started.
stop_service() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo service "$1" stop >/dev/null 2>&1 || true
}

ensure_redis_server() {
    # The package starts a system-wide server; the tests start their own on free ports.
    apt_install redis-server redis-server && stop_service redis-server
    return 0
}

ensure_nginx() {
    # The bench's upstream. The package starts a system-wide server (port 80); the bench
    # starts its own on a free port. (/usr/sbin is not on every user's PATH.)
    PATH="$PATH:/usr/sbin" apt_install nginx nginx-light && stop_service nginx
    return 0
}

ensure_wrk() {
    apt_install wrk wrk || true
}
