#!/usr/bin/env bash
# tests/mutation/run.sh -- mutation testing of the engine: applies each fault
# of tests/mutation/faults.txt to a copy of the repository, rebuilds the
# engine's tests in Release and reports whether the suite killed it.  The
# default is the small fixed subset CI runs; --all runs every fault.  See
# mutate.py for the options and faults.txt for the catalogue.
set -euo pipefail
exec python3 "$(dirname "$0")/mutate.py" "$@"
