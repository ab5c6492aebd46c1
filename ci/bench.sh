#!/usr/bin/env bash
# Benchmarks: numpy over the bridge vs installed locally (same interpreter).
source "$(dirname "$0")/common.sh"
ensure_numpy
make_venv "$ROOT/.venv-demo" "execnet==1.9.0" "$ROOT"
exec "$ROOT/.venv-demo/bin/python" "$ROOT/benchmarks/numpy_import.py" \
    --python "$(master_python)" "$@"
