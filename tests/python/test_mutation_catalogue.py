"""The mutation catalogue (tests/mutation/faults.txt) still matches the code.

Each fault is a search text that must occur exactly once in its file; a
refactor that changes one of those lines makes the fault test nothing, and
the CI mutation stage refuses to run.  This check runs with the suite so a
stale fault is caught at the change that made it stale, not in CI.
"""

import os
import subprocess
import sys

from conftest import ROOT


def test_every_fault_still_matches_the_code_exactly_once():
    mutate = os.path.join(ROOT, "tests", "mutation", "mutate.py")
    r = subprocess.run([sys.executable, mutate, "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "faults match" in r.stdout
