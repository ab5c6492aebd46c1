#!/usr/bin/env bash
# Benchmarks and the reliability run: `bash ci/bench.sh [numpy|reliability] [args]`
# (both when no name is given).
source "$(dirname "$0")/common.sh"
ensure_numpy
make_venv "$ROOT/.venv-demo" "execnet==1.9.0" "$ROOT"
PY="$ROOT/.venv-demo/bin/python"
case "${1:-all}" in
    numpy) shift; exec "$PY" "$ROOT/benchmarks/numpy_import.py" --python "$(master_python)" "$@" ;;
    reliability) shift; exec "$PY" "$ROOT/benchmarks/reliability.py" "$@" ;;
    all) "$PY" "$ROOT/benchmarks/numpy_import.py" --python "$(master_python)"
         "$PY" "$ROOT/benchmarks/reliability.py" ;;
    *) echo "usage: bash ci/bench.sh [numpy|reliability] [args]" >&2; exit 2 ;;
esac
