#!/usr/bin/env bash
# The overhead benchmark suite (issues 4 and 12), one command:
#
#   bench/run_overhead.sh [--quick] [--python PY] [--only churn,classic,...]
#                         [--runs N] [--out DIR] [--modes untraced,ftm@25,...]
#                         [--benchmarks chaos,go,...] [--threads 1,2,...]
#
# Compares, on the same machine in the same run, untraced / builtin
# tracemalloc (nframe 1, 25) / fasttracemalloc (nframe 1, 25, through its
# FASTTRACEMALLOC=N start-up switch; sampled at nframe 25 with a 512 KiB
# mean, FASTTRACEMALLOC=25,sample=512k) / memray --trace-python-allocators on
# the suite's own workloads (bench/overhead/wl_*.py), pyperformance's
# benchmarks through pyperf, and two real threaded web servers, and writes
# bench/results/<date>-<host>[-quick].{md,json,png}, printing the tables.
# --quick: small sizes (CI smoke test, < 3 min); default: full run (~40 min,
# an estimate: pyperformance under builtin nframe=25 alone takes ~13).
#
# It installs what it needs: wrk (apt-get, when root and missing), and a venv
# per interpreter under test at bench/.venv-<name>-<hash> (git-ignored) with
# matplotlib, memray, the pinned versions of pyperformance, pyperf, flask and
# waitress below, and fasttracemalloc (`pip install .` from the repo root,
# rebuilt only when its sources changed).  If the package does not build or
# import, its modes are reported "n/a", never measured as something else.
# The interpreter under test defaults to pyenv's python3, else python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
python=""
runner_args=()
orig_args="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python=$2; shift 2 ;;
        --python=*) python=${1#--python=}; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) runner_args+=("$1"); shift ;;
    esac
done

say() { printf '== %s\n' "$*"; }

if [ -z "$python" ]; then
    python=$(pyenv which python3 2>/dev/null || command -v python3)
fi
python=$(command -v "$python" || true)
[ -n "$python" ] && [ -x "$python" ] || { echo "interpreter not found" >&2; exit 2; }
real=$(readlink -f "$python")
tag="$(basename "$real")-$(printf '%s' "$real" | md5sum | cut -c1-8)"
venv="$here/.venv-$tag"
say "interpreter under test: $real ($("$python" -c 'import sys; print(sys.version.split()[0])'))"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else return 1; fi; }

# -- wrk (the server workload's load generator) ------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (apt-get)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; then
        as_root apt-get update -q >/dev/null 2>&1 || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
            || say "WARNING: could not install wrk; the server workload will show errors"
    fi
fi

# -- the venv of the interpreter under test ----------------------------------
if [ ! -x "$venv/bin/python" ]; then
    say "creating venv $venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        say "venv failed; installing python3-venv (apt-get)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1 \
            || { as_root apt-get update -q >/dev/null 2>&1; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1; } \
            || true
        "$python" -m venv "$venv"
    fi
fi
vpy="$venv/bin/python"
pip=("$vpy" -m pip install -q --disable-pip-version-check)
# Import checks run where the workloads run, so no source tree can shadow them.
importable() { (cd "$here/overhead" && "$vpy" -c "import $1") >/dev/null 2>&1; }

if ! importable matplotlib; then
    say "installing matplotlib into the venv"
    "${pip[@]}" matplotlib 2>&1 | grep -v '^WARNING: Location' || true
fi
if ! importable memray; then
    say "installing memray into the venv"
    "${pip[@]}" memray 2>&1 | grep -v '^WARNING: Location' || true
fi

# Pinned: the benchmarks' code and the servers' are part of what is
# measured, so every run measures the same versions.
web_and_pyperf=(pyperformance==1.14.0 pyperf==2.11.0 flask==3.1.3 waitress==3.0.2)
installed_pins() {
    "$vpy" - "${web_and_pyperf[@]}" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
sys.exit(any(m.version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
}
if ! installed_pins; then
    say "installing ${web_and_pyperf[*]} into the venv"
    "${pip[@]}" "${web_and_pyperf[@]}" 2>&1 | grep -v '^WARNING: Location' || true
fi

# -- fasttracemalloc from this checkout ---------------------------------------
marker="$venv/.fasttracemalloc-source"
if [ -f "$root/pyproject.toml" ]; then
    # Hash of the package's sources as they are on disk (uncommitted edits
    # included), so the venv is rebuilt exactly when they change.
    src_hash=$(cd "$root" && git ls-files -co --exclude-standard -- \
                   pyproject.toml CMakeLists.txt python core include 2>/dev/null \
               | sort | xargs -r sha1sum 2>/dev/null | sha1sum | cut -c1-16) || true
    if [ "$(cat "$marker" 2>/dev/null)" != "$src_hash" ] \
        || ! importable fasttracemalloc; then
        say "installing fasttracemalloc into the venv (pip install $root)"
        log="$venv/fasttracemalloc-install.log"
        if "$vpy" -m pip install --disable-pip-version-check "$root" >"$log" 2>&1; then
            echo "$src_hash" >"$marker"
        else
            rm -f "$marker"
            say "WARNING: pip install . failed (log: $log); its modes will show n/a:"
            grep -v '^WARNING: Location' "$log" | tail -n 5 | sed 's/^/   /'
            # Never measure a stale build under the current name.
            "$vpy" -m pip uninstall -y -q fasttracemalloc >/dev/null 2>&1 || true
        fi
    fi
else
    say "no pyproject.toml at $root: fasttracemalloc modes will show n/a"
fi

# -- run ----------------------------------------------------------------------
export FTM_BENCH_COMMAND="bench/run_overhead.sh $orig_args"
exec "$vpy" "$here/overhead/runner.py" --python "$vpy" "${runner_args[@]}"
