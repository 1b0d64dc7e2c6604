#!/usr/bin/env bash
# tests/interpreters/setup.sh -- provision every CPython the project supports,
# reusing whatever is already there.  Prints nothing but progress; the paths
# of the interpreters are printed by `list.sh`.
#
#   setup.sh [all|py313t|forky]...      (default: all)
#
# Where each interpreter comes from (see README "Interpreters"):
#   3.11, 3.12, 3.13   pyenv (3.11.7, 3.12.1, 3.13.0) and Debian's /usr/bin/python3
#                      (3.11.2): present on the reference machine, never built here.
#   3.13t              CPython's release tarball, taken from Debian's source
#                      package python3.13 (the .orig.tar.xz is the release
#                      tarball), built with ./configure --disable-gil into
#                      $FTM_INTERP_ROOT/cpython-3.13t.  Debian's sources are
#                      fetched through a sources list of our own: the
#                      machine's apt configuration is never touched.
#   3.14, 3.15         Debian forky's binary packages (python3.X-dev and
#                      libpython3.X-testsuite), which need forky's libc: they
#                      live in a minbase forky chroot at $FTM_INTERP_ROOT/forky
#                      made by debootstrap (bookworm's debootstrap has no
#                      forky script; sid's works for forky).
#
# FTM_INTERP_ROOT defaults to /var/cache/fasttracemalloc (outside the
# repository so a fresh clone reuses the builds).  Every step is skipped
# when its result is already there; a half-made result is redone (each step
# writes a stamp file last).
set -euo pipefail
ROOT=${FTM_INTERP_ROOT:-/var/cache/fasttracemalloc}
MIRROR=${FTM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY313_VERSION=${FTM_PY313T_VERSION:-}   # empty: the newest python3.13 in forky's sources
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$ROOT"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf '[interpreters] %s\n' "$*"; }

need_host_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        # wait for another apt run (e.g. a parallel setup step) instead of failing
        $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# --- 3.13t from Debian's python3.13 source package -------------------------
# The mirror may serve a frozen snapshot whose Release files are past their
# Valid-Until date; the packages are still signed, so only the date check is
# relaxed.
APT_NOEXPIRE="-o Acquire::Check-Valid-Until=false"

apt_src() {
    # apt-get/apt-cache ($1) with a sources list of our own (deb-src for
    # trixie and forky) and private state directories
    local tool=$1
    shift
    local d="$ROOT/apt"
    mkdir -p "$d/lists/partial" "$d/archives/partial"
    cat >"$d/sources.list" <<SRC
deb-src $MIRROR forky main
deb-src $MIRROR trixie main
SRC
    "$tool" -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache::archives="$d/archives" \
        -o APT::Get::List-Cleanup=0 $APT_NOEXPIRE "$@"
}

setup_py313t() {
    local prefix="$ROOT/cpython-3.13t"
    if [ -f "$prefix/.ftm-stamp" ] && "$prefix/bin/python3.13t" -c 'import sys; assert not sys._is_gil_enabled()' 2>/dev/null; then
        log "3.13t: reusing $prefix ($("$prefix/bin/python3.13t" -V))"
        return
    fi
    need_host_packages dpkg-dev xz-utils build-essential pkg-config libssl-dev zlib1g-dev \
        libffi-dev libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev libgdbm-dev \
        uuid-dev libncurses-dev libexpat1-dev
    local src="$ROOT/src"
    mkdir -p "$src"
    local tarball
    tarball=$(ls "$src"/python3.13_3.13.*.orig.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
    if [ -z "$tarball" ]; then
        log "3.13t: fetching Debian's python3.13 source package index"
        apt_src apt-get update >/dev/null
        local ver=$PY313_VERSION
        [ -n "$ver" ] || ver=$(apt_src apt-cache showsrc python3.13 | awk '/^Version:/ {print $2}' | sort -V | tail -n1)
        [ -n "$ver" ] || { echo "no python3.13 source package found in forky/trixie" >&2; exit 1; }
        log "3.13t: apt-get source --download-only python3.13=$ver"
        (cd "$src" && apt_src apt-get source --download-only "python3.13=$ver" >/dev/null)
        tarball=$(ls "$src"/python3.13_3.13.*.orig.tar.xz | sort -V | tail -n1)
    fi
    log "3.13t: building $(basename "$tarball") with --disable-gil (a few minutes)"
    local bdir="$ROOT/build-3.13t"
    rm -rf "$bdir" "$prefix"
    mkdir -p "$bdir"
    tar -xJf "$tarball" -C "$bdir" --strip-components=1
    (cd "$bdir" && ./configure --disable-gil --prefix="$prefix" --with-ensurepip=install >configure.log 2>&1 \
        && make -j"$jobs" >make.log 2>&1 && make install >install.log 2>&1) \
        || { echo "3.13t build failed; see $bdir/*.log" >&2; tail -n 30 "$bdir"/*.log >&2; exit 1; }
    "$prefix/bin/python3.13t" -c 'import sys; assert not sys._is_gil_enabled(); print(sys.version)'
    touch "$prefix/.ftm-stamp"
    rm -rf "$bdir"
}

# --- 3.14 / 3.15 in a forky chroot -----------------------------------------
FORKY_PACKAGES="python3.14 python3.14-dev python3.14-venv libpython3.14-testsuite
python3.15 python3.15-dev python3.15-venv libpython3.15-testsuite
gcc g++ make cmake ninja-build pkg-config libck-dev libjemalloc2 ca-certificates"

setup_forky() {
    local ch="$ROOT/forky"
    if [ -f "$ch/.ftm-stamp" ] && [ "$(cat "$ch/.ftm-stamp")" = "$FORKY_PACKAGES" ]; then
        log "forky chroot: reusing $ch"
        return
    fi
    if [ ! -x "$ch/usr/bin/apt-get" ] || [ ! -f "$ch/.ftm-debootstrap" ]; then
        need_host_packages debootstrap
        log "forky chroot: debootstrap --variant=minbase forky (a few minutes)"
        $SUDO rm -rf "$ch"
        $SUDO debootstrap --variant=minbase forky "$ch" "$MIRROR" /usr/share/debootstrap/scripts/sid >"$ROOT/debootstrap.log" 2>&1 \
            || { tail -n 30 "$ROOT/debootstrap.log" >&2; exit 1; }
        touch "$ch/.ftm-debootstrap"
    fi
    $SUDO cp /etc/resolv.conf "$ch/etc/resolv.conf" 2>/dev/null || true
    log "forky chroot: apt-get install python3.14/3.15 (-dev, -venv, testsuite) and the build tools"
    $SUDO chroot "$ch" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get $APT_NOEXPIRE update >/dev/null && apt-get $APT_NOEXPIRE install -y --no-install-recommends $(echo $FORKY_PACKAGES) >/dev/null"
    echo "$FORKY_PACKAGES" | $SUDO tee "$ch/.ftm-stamp" >/dev/null
}

targets=${*:-all}
for t in $targets; do
    case $t in
        all) setup_py313t; setup_forky ;;
        py313t) setup_py313t ;;
        forky) setup_forky ;;
        *) echo "unknown target: $t (all|py313t|forky)" >&2; exit 2 ;;
    esac
done
