#!/usr/bin/env bash
# Shared by scripts/run and scripts/test (sourced): install what the bot needs on a fresh Debian/Ubuntu machine.
#   - libopus (Debian's libopus0), which discord.py loads to encode and decode voice;
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
