#!/usr/bin/env bash
# Shared by scripts/run, scripts/test and scripts/bench (sourced): install what the bot needs on a fresh
# Debian/Ubuntu machine.
#   - libopus (Debian's libopus0), which discord.py loads to encode and decode voice;
#   - espeak-ng for the tests (the local Realtime server speaks its answers with it);
#   - for the tests and benchmarks only: PostgreSQL's server binaries (Debian's postgresql), which the store tests
#     start in a temporary directory (initdb + pg_ctl); the bot itself needs no local server;
#   - a virtualenv in .venv with this project installed (editable) and the extras asked for.
# Re-running is cheap: nothing is installed while pyproject.toml is unchanged and the extras installed already
# cover the ones asked for (so alternating scripts/run and scripts/test does not reinstall). pip's output, with
# setuptools' editable-install banner, is kept in .venv/install.log and shown only when the install fails.

have_libopus() {
    ldconfig -p 2>/dev/null | grep -q 'libopus\.so\.0' || [ -e /usr/lib/x86_64-linux-gnu/libopus.so.0 ] \
        || [ -e /usr/lib/aarch64-linux-gnu/libopus.so.0 ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "error: need root to run: $*" >&2; return 1
    fi
}

APT_UPDATED=""
apt_install() {  # $@: Debian packages
    if [ -z "$APT_UPDATED" ]; then
        as_root apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_libopus() {
    have_libopus && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: libopus is missing; install it with your package manager (e.g. 'libopus0' or 'opus')." >&2
        return 1
    fi
    echo "installing libopus0 (Opus codec for Discord voice)..."
    apt_install libopus0
}

ensure_espeak() {  # optional: without it the local server answers with a tone, and its speech test skips
    command -v espeak-ng >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "note: espeak-ng is missing; install it to hear the local Realtime server speak." >&2
        return 0
    fi
    echo "installing espeak-ng (the local Realtime server's voice)..."
    apt_install espeak-ng || echo "note: could not install espeak-ng; the local server will answer with a tone." >&2
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
    apt_install --no-install-recommends postgresql
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

# The union of two comma-separated extras lists, sorted: "test,dev" + "" -> "dev,test".
union_extras() {
    printf '%s\n' "$1" "$2" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -
}

ensure_venv() {  # $1: extras, e.g. "test,dev" or ""
    local extras="$1" python stamp hash installed_hash installed_extras all
    python=$(find_python)
    if [ ! -x .venv/bin/python ]; then
        if ! "$python" -m venv .venv 2>/dev/null; then
            echo "installing python3-venv..."
            apt_install python3-venv
            rm -rf .venv
            "$python" -m venv .venv
        fi
    fi
    stamp=.venv/.voicebot-installed
    hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
    installed_hash=""
    installed_extras=""
    if [ -f "$stamp" ]; then
        read -r installed_hash installed_extras <"$stamp" || true
        installed_extras="${installed_extras#[}"
        installed_extras="${installed_extras%]}"
    fi
    if [ "$installed_hash" = "$hash" ]; then
        all=$(union_extras "$installed_extras" "$extras")
        if [ "$all" = "$(union_extras "$installed_extras" "")" ]; then
            return 0  # what is installed covers what is asked for
        fi
        # keep what was installed before, so the next script that needs it does not reinstall
    else
        all=$(union_extras "$extras" "")
    fi
    echo "installing Python packages into .venv${all:+ (with $all)}..."
    if ! { .venv/bin/python -m pip install -q --upgrade pip \
        && .venv/bin/python -m pip install -q -e ".${all:+[$all]}"; } >.venv/install.log 2>&1; then
        cat .venv/install.log >&2
        echo "error: installing the Python packages failed (the log above is in .venv/install.log)" >&2
        return 1
    fi
    echo "$hash [$all]" >"$stamp"
}
