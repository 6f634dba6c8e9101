"""The suite-level leak check (conftest.pytest_sessionfinish) catches what a run leaves on the host.

A pytest run of its own, in a subprocess, with one test that plants a leak where
no per-test check looks: a process of minidocker's (by its MINIDOCKER_ROOT) and a
cgroup under minidocker's default parent.  The run must fail, name both, and
clean them up.
"""

import glob
import os
import shutil
import subprocess
import sys

PLANT = '''
import os, subprocess
def test_plants_a_leak(tmp_path):
    subprocess.Popen(["sleep", "300"], env={**os.environ, "MINIDOCKER_ROOT": str(tmp_path / "elsewhere")},
                     start_new_session=True)
    for hierarchy in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        if os.path.exists(hierarchy + "/cgroup.procs"):
            os.makedirs(hierarchy + "/minidocker/planted-leak", exist_ok=True)
            break
'''

CLEAN = '''
def test_leaves_nothing(tmp_path):
    assert tmp_path.exists()
'''


def run_suite(tmp_path, body: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), suite / "conftest.py")
    (suite / "test_inner.py").write_text(body)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                           str(tmp_path / "basetemp"), str(suite)], capture_output=True, text=True, timeout=120)


def test_the_suite_level_check_fails_a_run_that_leaks(tmp_path):
    result = run_suite(tmp_path, PLANT)
    assert result.returncode != 0, result.stdout
    assert "1 passed" in result.stdout  # the test itself passed: only the session-level check saw it
    report = next(line for line in result.stdout.splitlines() if "minidocker leaked on the host" in line)
    assert "processes:" in report and "planted-leak" in report
    assert not glob.glob("/sys/fs/cgroup/*/minidocker/planted-leak") + glob.glob("/sys/fs/cgroup/minidocker/planted-leak")
    survivors = subprocess.run(["pgrep", "-f", "^sleep 300$"], capture_output=True, text=True).stdout.split()
    for pid in survivors:  # (only ours: the environ says which)
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert str(tmp_path).encode() not in f.read()


def test_the_suite_level_check_passes_a_clean_run(tmp_path):
    result = run_suite(tmp_path, CLEAN)
    assert result.returncode == 0, result.stdout
    assert "minidocker leaked" not in result.stdout
