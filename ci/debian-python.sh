#!/usr/bin/env bash
# debian-python.sh X.Y: CPython X.Y from Debian's unstable suite into pyenv's versions folder,
# for machines where pyenv cannot build it (no source downloads). Quick when it is there.
#
# Debian's binary packages and the C library they were built against are unpacked into
# $PYENV_ROOT/versions/<full version> (bin/, lib/, include/ as in a pyenv build), and the
# interpreter is patched to use that C library: nothing is installed system-wide, and the
# unstable suite is read through a private apt list and state folder only.
set -euo pipefail
minor=$1
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
versions="$PYENV_ROOT/versions"
for existing in "$versions/$minor".*/bin/python; do
    if [ -x "$existing" ] && "$existing" -m pip --version >/dev/null 2>&1; then exit 0; fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The machine's own Debian mirror, its unstable suite, its archive keyring.
mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources \
    2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ && $3 !~ /security/ {print $2; exit}' \
    /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "no Debian mirror in the apt configuration" >&2; exit 1; }
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
    > "$work/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
             -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
apt-get "${apt_private[@]}" update
command -v patchelf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf

python_packages="python$minor-minimal libpython$minor-minimal libpython$minor-stdlib python$minor
    libpython$minor libpython$minor-dev python$minor-dev python$minor-venv"
# What the interpreter and its standard library's extensions link against, in sid's versions.
libraries="libc6 libbz2-1.0 libexpat1 libffi8 liblzma5 libncursesw6 libreadline8t64
    libsqlite3-0 libssl3t64 libtinfo6 libuuid1 libzstd1 zlib1g libmpdec4 libgcc-s1 libstdc++6
    libcrypt1 libdb5.3t64"
# shellcheck disable=SC2086
(cd "$work/debs" && apt-get "${apt_private[@]}" download $python_packages $libraries)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done

full=$("$work/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
    --library-path "$work/root/usr/lib/x86_64-linux-gnu" "$work/root/usr/bin/python$minor" \
    -E -S -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
target="$versions/$full"
rm -rf "$target"
mkdir -p "$versions"
mv "$work/root/usr" "$target"
libdir="$target/lib/x86_64-linux-gnu"
patchelf --set-interpreter "$libdir/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$libdir" \
    "$target/bin/python$minor"
# Debian's pyconfig.h includes the multiarch one from the system's include folder: put the
# real one in its place, so extensions build against this interpreter's headers.
cp "$target/include/x86_64-linux-gnu/python$minor/pyconfig.h" \
    "$target/include/python$minor/pyconfig.h"
# A private interpreter, not Debian's: pip may install into it (PEP 668's marker goes).
rm -f "$target/lib/python$minor/EXTERNALLY-MANAGED"
ln -s "python$minor" "$target/bin/python"
ln -s "python$minor" "$target/bin/python3"
# Debian's ensurepip has no wheels: pip, setuptools and wheel from the package index, run
# from pip's own wheel, into the folder Debian's site puts on sys.path.
python3 -m pip download -q --no-deps --disable-pip-version-check -d "$work/pip" pip
"$target/bin/python$minor" "$(ls "$work"/pip/pip-*.whl)/pip" install -q \
    --disable-pip-version-check --root-user-action=ignore --no-cache-dir --target "$target/lib/python3/dist-packages" \
    pip setuptools wheel
"$target/bin/python" -E -S -c 'import ssl, sqlite3, ctypes, venv, sys; print("== Python", sys.version.split()[0], "from Debian unstable in", sys.prefix)'
