#!/usr/bin/env bash
# For CI machines without our interpreters (GitHub runners): build the
# versions in ci/pythons.txt with pyenv, skipping those already present.
# Where pyenv cannot build 3.14 or 3.15 (no source downloads), they come from Debian's
# unstable suite (ci/debian-python.sh) on a Debian machine. Versions after the "# New"
# line may fail to build: that is reported, and the tests skip them with the reason.
set -euo pipefail
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
if [ ! -x "$PYENV_ROOT/bin/pyenv" ]; then
    git clone --depth 1 https://github.com/pyenv/pyenv.git "$PYENV_ROOT"
fi
sudo apt-get update -qq
sudo apt-get install -y -qq build-essential libssl-dev zlib1g-dev libbz2-dev libreadline-dev \
    libsqlite3-dev libffi-dev liblzma-dev pypy3
optional=0
while read -r version; do
    case "$version" in
        "# New"*) optional=1; continue ;;
        "" | "#"*) continue ;;
    esac
    [ -x "$PYENV_ROOT/versions/$version/bin/python" ] && continue
    minor=${version%.*}
    case "$version" in
        *t) ;;  # a free-threaded build: pyenv's alone
        3.14.* | 3.15.*)
            if ls "$PYENV_ROOT"/versions/"$minor".[0-9]*/bin/python >/dev/null 2>&1; then
                continue  # another release of it (Debian's) is there
            fi ;;
    esac
    if ! "$PYENV_ROOT/bin/pyenv" install --skip-existing "$version"; then
        if [ "$optional" = 0 ] && [ -f /etc/debian_version ]; then
            PYENV_ROOT=$PYENV_ROOT sudo -E bash "$(dirname "$0")/debian-python.sh" "$minor" \
                && continue
        fi
        if [ "$optional" = 0 ]; then exit 1; fi
        echo "== could not build Python $version: its tests are skipped" >&2
    fi
done < "$(dirname "$0")/pythons.txt"
