# Shared by scripts/test, scripts/start and scripts/bench: create or reuse the virtual
# environments, reinstalling only when what they are built from has changed.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DEV_VENV="$ROOT/.venv"
LITELLM_VENV="$ROOT/.venv-litellm"
NPM_CLIENTS="$ROOT/.npm-clients"

say() { printf '==> %s\n' "$*" >&2; }

# digest_of "SOURCES": one digest of these files (space-separated paths without spaces).
digest_of() {
    # shellcheck disable=SC2086
    cat $1 | sha256sum
}

# built_from STAMP "SOURCES": whether STAMP records a build from these exact SOURCES.
built_from() {
    [ "$(cat "$1" 2>/dev/null)" = "$(digest_of "$2")" ]
}

# install_once VENV STAMP "SOURCES" "WHAT" PIP_ARGS...: (re)build VENV, which holds WHAT, with
# `pip install PIP_ARGS` unless it was built, under the name STAMP, from these exact SOURCES;
# silent when it was. pip's output goes to VENV/install.log, not the console (a machine's pip
# configuration alone can warn hundreds of times): one line says what was installed or, on
# failure, names the log and shows how it ends.
install_once() {
    local venv="$1" stamp="$1/.built-$2" sources="$3" what="$4" name log started
    shift 4
    if [ -x "$venv/bin/python" ] && built_from "$stamp" "$sources"; then
        return
    fi
    name="$(basename "$venv")"
    log="$venv/install.log"
    started=$SECONDS
    printf '==> Installing %s (%s)... ' "$name" "$what" >&2
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    if ! { "$venv/bin/pip" install --quiet --upgrade pip &&
           "$venv/bin/pip" install --progress-bar off "$@"; } >"$log" 2>&1; then
        printf 'failed. The end of its log, %s:\n' "$log" >&2
        tail -n 15 "$log" >&2
        return 1
    fi
    printf 'done: %s in %d s (log: %s)\n' "$(installed_count "$log")" \
        $((SECONDS - started)) "$log" >&2
    digest_of "$sources" > "$stamp"
}

# installed_count LOG: "42 packages", from pip's "Successfully installed" line in LOG.
installed_count() {
    local words
    words="$({ grep '^Successfully installed ' "$1" || true; } | tail -n 1 | wc -w)"
    case "$words" in
        0) echo "nothing new" ;;
        3) echo "1 package" ;;
        *) echo "$((words - 2)) packages" ;;
    esac
}

DEV_SOURCES="$ROOT/pyproject.toml $ROOT/scripts/requirements-dev.txt $ROOT/scripts/requirements.txt"

ensure_dev_venv() {
    install_once "$DEV_VENV" dev "$DEV_SOURCES" "the memory proxy and its test tools" \
        -r "$ROOT/scripts/requirements-dev.txt" -e "$ROOT[dev]"
}

ensure_runtime_venv() {
    local lock="$ROOT/scripts/requirements.txt"
    # A .venv built for the tests (scripts/test) holds everything the runtime needs.
    built_from "$DEV_VENV/.built-dev" "$DEV_SOURCES" && return
    install_once "$DEV_VENV" runtime "$ROOT/pyproject.toml $lock" "the memory proxy" \
        -r "$lock" -e "$ROOT"
}

ensure_litellm_venv() {
    install_once "$LITELLM_VENV" litellm "$ROOT/scripts/litellm-requirements.txt" \
        "the pinned LiteLLM; about 1 minute, 740 MB" \
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

ensure_postgres() {
    # The PostgreSQL store's tests start Debian's postgresql-15 themselves
    # (tests/postgres_support.py: a temporary data directory, a free loopback port, as the
    # package's unprivileged `postgres` user when run as root). The package starts a cluster.
    PATH="$PATH:/usr/lib/postgresql/15/bin" apt_install pg_ctl postgresql-15 &&
        stop_service postgresql
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

# The dashboard's browser tests drive Debian's chromium through chromedriver (selenium).
ensure_browser() {
    apt_install chromium chromium || true
    apt_install chromedriver chromium-driver || true
}

# The real Claude Code and Codex CLIs that tests/clients drives, at the versions pinned in
# scripts/clients-package.json, in .npm-clients/ (reinstalled only when the pins change).
# Without npm or the registry the tests that need them are skipped, saying why.
ensure_npm_clients() {
    say "Checking .npm-clients (Claude Code and Codex CLIs; first install about 15 s, 800 MB)"
    local pins="$ROOT/scripts/clients-package.json" stamp="$NPM_CLIENTS/.built-clients"
    if built_from "$stamp" "$pins"; then
        return
    fi
    apt_install npm npm || true
    if ! command -v npm >/dev/null 2>&1; then
        say "warning: npm is missing: the real-client tests will be skipped"
        return
    fi
    rm -rf "$NPM_CLIENTS"
    mkdir -p "$NPM_CLIENTS"
    cp "$pins" "$NPM_CLIENTS/package.json"
    if ! (cd "$NPM_CLIENTS" && npm install --no-audit --no-fund --loglevel=error); then
        say "warning: npm install failed: the real-client tests will be skipped"
        return
    fi
    local cli home version
    home="$(mktemp -d)"  # the CLIs write into their home directories, even for --version
    for cli in claude codex; do
        if version="$(HOME="$home" CODEX_HOME="$home" CLAUDE_CONFIG_DIR="$home" \
            "$NPM_CLIENTS/node_modules/.bin/$cli" --version 2>/dev/null)"; then
            say "$cli runs: $version"
        else
            say "warning: $cli does not run here: its tests will be skipped"
        fi
    done
    rm -rf "$home"
    digest_of "$pins" > "$stamp"
}
