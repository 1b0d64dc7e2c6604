"""CPython's Lib/test/test_tracemalloc.py passes on the engine (see
run_cpython_suite.py for what is run and what is excluded, and why)."""

import os
import re

from conftest import HERE, run_python

import run_cpython_suite


def test_cpython_test_tracemalloc_on_the_engine():
    proc = run_python(os.path.join(HERE, "run_cpython_suite.py"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    ran = re.findall(r"^Ran (\d+) tests?", output, re.M)
    assert ran == [str(run_cpython_suite.expected_test_count())], output
    assert re.search(r"^OK", output, re.M), output
    assert "SUCCESS" in output, output
    assert ("in-process, engine still installed: True, regrtest status 0"
            in output), output
