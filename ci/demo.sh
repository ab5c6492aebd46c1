#!/usr/bin/env bash
# The main job: a heterogeneous fleet. A 3.x master serves real PyPI packages
# (simplejson, with a C speedup and a pure fallback, and six) to bare slaves of
# every local interpreter: 2.7 from a 2.7 environment made here on the master,
# 3.6 ... 3.13 and PyPy from a folder of the master's own version. Everything
# it needs is installed once under .cache/demo; exit status 1 if anything failed.
source "$(dirname "$0")/common.sh"
ensure_system_packages
# virtualenv < 20.22 is the last that makes Python 2.7 environments.
make_venv "$ROOT/.venv-demo" "execnet==1.9.0" "virtualenv<20.22" "$ROOT"
export VIRTUALENV_OVERRIDE_APP_DATA="$ROOT/.cache/virtualenv-app-data"
export VIRTUALENV_NO_PERIODIC_UPDATE=1

PACKAGES=(simplejson==3.20.1 six==1.17.0)
CACHE="$ROOT/.cache/demo"
LABEL=$("$ROOT/.venv-demo/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SITE="$CACHE/site-$LABEL"
ENV27="$CACHE/env-2.7"
quiet_pip() {  # quiet_pip PYTHON [PIP OPTION...]: pip's output only if it fails
    local python=$1 log; shift; log=$(mktemp)
    "$python" -m pip install -q --disable-pip-version-check "$@" "${PACKAGES[@]}" >"$log" 2>&1 \
        || { cat "$log"; rm -f "$log"; exit 1; }
    rm -f "$log"
}
if [ ! -f "$SITE/.complete" ]; then
    echo "== installing ${PACKAGES[*]} for Python $LABEL into $SITE"
    rm -rf "$SITE"
    quiet_pip "$ROOT/.venv-demo/bin/python" --target "$SITE"
    touch "$SITE/.complete"
fi
PY27=$(ls "$PYENV_ROOT"/versions/2.7*/bin/python 2>/dev/null | head -n 1 || true)
if [ -n "$PY27" ] && [ ! -f "$ENV27/.complete" ]; then
    echo "== making a Python 2.7 environment with ${PACKAGES[*]} in $ENV27"
    rm -rf "$ENV27"
    "$ROOT/.venv-demo/bin/python" -m virtualenv -q -p "$PY27" "$ENV27" >/dev/null
    quiet_pip "$ENV27/bin/python"
    touch "$ENV27/.complete"
fi
exec "$ROOT/.venv-demo/bin/python" "$ROOT/ci/demo.py" --site "$SITE" \
    ${PY27:+--env27 "$ENV27/bin/python"} "$@"
