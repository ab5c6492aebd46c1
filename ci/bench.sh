#!/usr/bin/env bash
# Benchmarks and the reliability run (README, "Performance" and "Reliability"):
#   bash ci/bench.sh [imports|numpy|metadata|reliability] [args]    (all without a name)
source "$(dirname "$0")/common.sh"
ensure_numpy
make_venv "$ROOT/.venv-demo" "execnet==1.9.0" "mitogen" "$ROOT"
PY="$ROOT/.venv-demo/bin/python"
MASTER=$(master_python)
LABEL=$("$MASTER" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
BENCH_SITE="$ROOT/.cache/bench-$LABEL"
if [ ! -d "$BENCH_SITE/sympy" ]; then  # the packages the import benchmark serves
    "$MASTER" -m pip install -q --disable-pip-version-check --target "$BENCH_SITE" \
        requests jinja2 docutils sympy
fi
imports() { "$PY" "$ROOT/benchmarks/imports.py" --site "$BENCH_SITE" \
    --numpy-site "${BRIDGE_TEST_NUMPY#*=}" --python "$MASTER" "$@"; }
numpy() { "$PY" "$ROOT/benchmarks/numpy_import.py" --python "$MASTER" "$@"; }
metadata() { "$PY" "$ROOT/benchmarks/metadata.py" --python "$MASTER" --site \
    "$("$MASTER" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" "$@"; }
reliability() { "$PY" "$ROOT/benchmarks/reliability.py" "$@"; }
case "${1:-all}" in
    imports|numpy|metadata|reliability) name=$1; shift; "$name" "$@" ;;
    all) imports && numpy && metadata && reliability ;;
    *) echo "usage: bash ci/bench.sh [imports|numpy|metadata|reliability] [args]" >&2; exit 2 ;;
esac
