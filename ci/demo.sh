#!/usr/bin/env bash
# The main job: a 3.11 master serves a package it alone has to bare slaves of
# every local interpreter (2.7, 3.6 ... 3.13, PyPy).
source "$(dirname "$0")/common.sh"
ensure_system_packages
make_venv "$ROOT/.venv-demo" "execnet==1.9.0" "$ROOT"
exec "$ROOT/.venv-demo/bin/python" "$ROOT/ci/demo.py" "$@"
