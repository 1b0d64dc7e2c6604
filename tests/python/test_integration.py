"""Tools that read tracemalloc get the engine's answers once it is switched
on (pytest's ResourceWarning report; asyncio debug mode's unclosed-transport
warnings go through the same warnings path, tested in test_install.py)."""

import re
import sys
import textwrap

from conftest import free_list_restamped, needs_pth, run_python

LEAKY_TEST = """\
import gc

def test_leak():
    handle = open(__file__)
    del handle
    gc.collect()
"""


def allocation_site(out, test_file):
    """The innermost frame in test_file of the 'Object allocated at' report
    (its line number as a string), or None."""
    report = out.split("Object allocated at", 1)
    if len(report) < 2:
        return None
    lines = re.findall(r'File "%s", line (\d+)' % re.escape(str(test_file)),
                      report[1])
    return lines[-1] if lines else None


@needs_pth
def test_pytest_reports_allocation_site_under_the_switch(tmp_path):
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(LEAKY_TEST)
    args = ("-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-W", "always::ResourceWarning", str(test_file))
    proc = run_python(*args, cwd=str(tmp_path), FASTTRACEMALLOC="5")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ResourceWarning" in out and "unclosed file" in out
    assert "Enable tracemalloc" not in out
    assert "Object allocated at" in out
    # The builtin re-stamps the file object when its finalizer resurrects
    # it (_Py_NewReference), so it may report line 5 (the del) rather than
    # line 4 (the open()).  Where the engine re-stamps too (3.13+ through
    # PyRefTracer, 3.11/3.12 with a shared libpython through its
    # _Py_NewReference wrapper) it must report the builtin's line; where it
    # cannot (a static 3.11/3.12 executable: README, "Differences") it
    # reports the block's allocation.
    builtin = run_python("-X", "tracemalloc=5", *args, cwd=str(tmp_path))
    builtin_out = builtin.stdout + builtin.stderr
    expected = allocation_site(builtin_out, test_file)
    assert expected in ("4", "5"), builtin_out
    if not free_list_restamped():
        expected = "4"
    assert allocation_site(out, test_file) == expected, (out, builtin_out)


def test_pytest_without_switch_asks_for_tracemalloc(tmp_path):
    """The same run without the switch: the report asks for tracemalloc
    (so the check above is not vacuous)."""
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(textwrap.dedent(LEAKY_TEST))
    proc = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-W", "always::ResourceWarning", str(test_file),
                      cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Enable tracemalloc" in out, out
