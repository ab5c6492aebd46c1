#!/usr/bin/env bash
# The tests: the tox master matrix (py27 ... py313, pypy3, and a current
# execnet), each master against every slave interpreter. Arguments go to tox,
# e.g. `bash ci/test.sh -e py27,py313`.
source "$(dirname "$0")/common.sh"
ensure_system_packages
ensure_numpy
# tox 4 cannot make Python 2.7 envs: tox 3 with virtualenv < 20.22 can.
make_venv "$ROOT/.venv-ci" "tox<4" "virtualenv<20.22"
# Seed every env with the pip/setuptools/wheel virtualenv ships for its Python. Its
# periodic update records newer wheels in the user's app-data (pip 26 for 3.6 was seen
# here), so it gets an app-data folder of its own, never updated.
export VIRTUALENV_OVERRIDE_APP_DATA="$ROOT/.cache/virtualenv-app-data"
export VIRTUALENV_NO_PERIODIC_UPDATE=1
cd "$ROOT"
exec "$ROOT/.venv-ci/bin/tox" "$@"
