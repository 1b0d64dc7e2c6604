"""Tools that read tracemalloc get the engine's answers once it is switched
on (pytest's ResourceWarning report; asyncio debug mode's unclosed-transport
warnings go through the same warnings path, tested in test_install.py)."""

import textwrap

from conftest import needs_pth, run_python

LEAKY_TEST = """\
import gc

def test_leak():
    handle = open(__file__)
    del handle
    gc.collect()
"""


@needs_pth
def test_pytest_reports_allocation_site_under_the_switch(tmp_path):
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(LEAKY_TEST)
    proc = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-W", "always::ResourceWarning", str(test_file),
                      cwd=str(tmp_path), FASTTRACEMALLOC="5")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ResourceWarning" in out and "unclosed file" in out
    assert "Enable tracemalloc" not in out
    assert "Object allocated at" in out
    assert 'File "%s", line 4' % test_file in out, out


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
