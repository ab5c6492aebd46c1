#!/usr/bin/env bash
# For CI machines without our interpreters (GitHub runners): build the
# versions in ci/pythons.txt with pyenv, skipping those already present.
set -euo pipefail
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
if [ ! -x "$PYENV_ROOT/bin/pyenv" ]; then
    git clone --depth 1 https://github.com/pyenv/pyenv.git "$PYENV_ROOT"
fi
sudo apt-get update -qq
sudo apt-get install -y -qq build-essential libssl-dev zlib1g-dev libbz2-dev libreadline-dev \
    libsqlite3-dev libffi-dev liblzma-dev pypy3
while read -r version; do
    [ -x "$PYENV_ROOT/versions/$version/bin/python" ] || \
        "$PYENV_ROOT/bin/pyenv" install --skip-existing "$version"
done < "$(dirname "$0")/pythons.txt"
