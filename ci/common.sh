# Shared by ci/demo.sh and ci/test.sh: find the interpreters, make a venv.
# Sourced, not run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYENV_ROOT=${PYENV_ROOT:-$( (pyenv root 2>/dev/null) || echo "$HOME/.pyenv")}
export PYENV_ROOT

ensure_newest_pythons() {
    # CPython 3.14 and 3.15 in pyenv's versions folder: built by pyenv where it can
    # (ci/install-pythons.sh), else unpacked from Debian's unstable suite (ci/debian-python.sh).
    local minor
    for minor in 3.14 3.15; do
        if ! ls "$PYENV_ROOT"/versions/"$minor".[0-9]*/bin/python >/dev/null 2>&1 \
                && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== installing CPython $minor from Debian's unstable suite"
            bash "$ROOT/ci/debian-python.sh" "$minor"
        fi
    done
}
ensure_newest_pythons

# Every pyenv Python first on PATH, so tox finds python2.7 ... python3.13.
for bin in "$PYENV_ROOT"/versions/*/bin; do
    [ -d "$bin" ] && PATH="$bin:$PATH"
done
export PATH

master_python() {
    # The master: the machine's main Python 3.11 when there, else any python3.
    local candidate
    for candidate in "$PYENV_ROOT"/versions/3.11*/bin/python "$(command -v python3 || true)"; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
    echo "no Python 3 found" >&2; exit 1
}

ensure_system_packages() {
    # From Debian: PyPy (a slave of the matrix), its headers (to build the test
    # extension) and the pip it uses; objdump (binutils) reads test binaries;
    # sshd and ssh for the ssh gateway tests.
    if command -v pypy3 >/dev/null && [ -f /usr/include/pypy3.9/Python.h ] \
            && pypy3 -m pip --version >/dev/null 2>&1 && command -v objdump >/dev/null \
            && [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing pypy3, pypy3-dev, python3-pip, binutils, openssh (apt-get)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 pypy3-dev python3-pip \
            binutils openssh-server openssh-client >/dev/null
    else
        echo "== system packages missing and cannot be installed: their tests are skipped"
    fi
}

ensure_numpy() {
    # A real numpy wheel (vendored numpy.libs) for the master Python's version,
    # installed into a folder of its own: the extension tests serve it to a bare slave.
    local python label site
    python=$(master_python)
    label=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    site="$ROOT/.cache/numpy-$label"
    if [ ! -d "$site/numpy" ]; then
        echo "== installing numpy for Python $label into $site"
        "$python" -m pip install -q --disable-pip-version-check --target "$site" numpy
    fi
    export BRIDGE_TEST_NUMPY="$label=$site"
}

make_venv() {
    # make_venv DIR PACKAGE...: a venv of the master Python with PACKAGES installed.
    local venv=$1; shift
    if [ ! -x "$venv/bin/python" ]; then
        "$(master_python)" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
}
