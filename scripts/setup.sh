#!/usr/bin/env bash
# Shared by scripts/run and scripts/test (sourced): install what the bot needs on a fresh Debian/Ubuntu machine.
#   - libopus (Debian's libopus0), which discord.py loads to encode and decode voice;
#   - for the tests and benchmarks only: PostgreSQL's server binaries (Debian's postgresql), which the store tests
#     start in a temporary directory (initdb + pg_ctl); the bot itself needs no local server;
#   - a virtualenv in .venv with this project installed (editable) and the extras asked for.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.

have_libopus() {
    ldconfig -p 2>/dev/null | grep -q 'libopus\.so\.0' || [ -e /usr/lib/x86_64-linux-gnu/libopus.so.0 ] \
        || [ -e /usr/lib/aarch64-linux-gnu/libopus.so.0 ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "error: need root to run: $*" >&2; return 1
    fi
}

ensure_libopus() {
    have_libopus && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: libopus is missing; install it with your package manager (e.g. 'libopus0' or 'opus')." >&2
        return 1
    fi
    echo "installing libopus0 (Opus codec for Discord voice)..."
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq libopus0 >/dev/null
}

have_postgresql() {
    { command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; } \
        || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

ensure_postgresql() {
    have_postgresql && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: PostgreSQL is missing; install its server package (initdb, pg_ctl) with your package manager." >&2
        return 1
    fi
    echo "installing postgresql (a real server for the store tests; none is left running)..."
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # Debian's package may start a cluster of its own; the tests start theirs, so stop it.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _; do
            as_root pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
        done
    fi
}

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is required" >&2
    return 1
}

ensure_venv() {  # $1: extras, e.g. "test,dev" or ""
    local extras="$1" python stamp want
    python=$(find_python)
    if [ ! -x .venv/bin/python ]; then
        if ! "$python" -m venv .venv 2>/dev/null; then
            echo "installing python3-venv..."
            as_root apt-get update -qq
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
            rm -rf .venv
            "$python" -m venv .venv
        fi
    fi
    stamp=.venv/.voicebot-installed
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) [$extras]"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "installing Python packages into .venv..."
        .venv/bin/python -m pip install -q --upgrade pip
        if [ -n "$extras" ]; then
            .venv/bin/python -m pip install -q -e ".[$extras]"
        else
            .venv/bin/python -m pip install -q -e .
        fi
        echo "$want" >"$stamp"
    fi
}
