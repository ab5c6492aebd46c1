#!/usr/bin/env bash
# Benchmarks and the reliability run (README, "Performance" and "Reliability"):
#   bash ci/bench.sh [imports|numpy|metadata|reliability|fleet|master|handshake|memory|xdist|
#                     hops|pool|sessions]
#                    [args]    (all without a name; the scale ones: issue 9)
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
fleet() { "$PY" "$ROOT/benchmarks/fleet.py" --site "$BENCH_SITE" --python "$MASTER" "$@"; }
hops() { "$PY" "$ROOT/benchmarks/hops.py" --site "$BENCH_SITE" --python "$MASTER" "$@"; }
master() { "$PY" "$ROOT/benchmarks/warm_master.py" --site "$BENCH_SITE" --python "$MASTER" "$@"; }
sessions() {  # boto3 too: lazy imports make a session ask more than once
    local boto3_site="$ROOT/.cache/bench-boto3-$LABEL"
    if [ ! -d "$boto3_site/boto3" ]; then
        "$MASTER" -m pip install -q --disable-pip-version-check --target "$boto3_site" boto3
    fi
    "$PY" "$ROOT/benchmarks/sessions.py" --site "$BENCH_SITE" --boto3-site "$boto3_site" \
        --python "$MASTER" "$@"
}
handshake() { "$PY" "$ROOT/benchmarks/handshake.py" --python "$MASTER" "$@"; }
pool() { "$PY" "$ROOT/benchmarks/pool.py" --site "$BENCH_SITE" --python "$MASTER" "$@"; }
memory() { "$PY" "$ROOT/benchmarks/memory.py" --numpy-site "${BRIDGE_TEST_NUMPY#*=}" \
    --python "$MASTER" "$@"; }
xdist() {  # a venv of its own: pytest-xdist brings execnet 2 (fine for 3.x workers)
    make_venv "$ROOT/.venv-bench-xdist" pytest pytest-xdist six "$ROOT"
    "$ROOT/.venv-bench-xdist/bin/python" "$ROOT/benchmarks/xdist_suite.py" \
        --site "$BENCH_SITE" --python "$MASTER" "$@"
}
case "${1:-all}" in
    imports|numpy|metadata|reliability|fleet|master|handshake|memory|xdist|hops|pool|sessions)
        name=$1; shift; "$name" "$@" ;;
    all) imports && numpy && metadata && reliability && fleet && master && handshake \
        && memory && xdist && hops && pool && sessions ;;
    *) echo "usage: bash ci/bench.sh [imports|numpy|metadata|reliability|fleet|master|" \
        "handshake|memory|xdist|hops|pool|sessions] [args]" >&2; exit 2 ;;
esac
