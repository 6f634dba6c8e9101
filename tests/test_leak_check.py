"""The suite-level leak check (conftest.pytest_sessionfinish) catches what a run leaves on the host.

A pytest run of its own, in a subprocess, with one test that plants a leak where
no per-test check looks: a process of minidocker's (by its MINIDOCKER_ROOT) and a
cgroup under minidocker's default parent (MINIDOCKER_CGROUP_PARENT, one of its own here).  The run must fail, name both, and
clean them up.
"""

import glob
import os
import re
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
            os.makedirs(hierarchy + "/" + os.environ["MINIDOCKER_CGROUP_PARENT"] + "/planted-leak", exist_ok=True)
            break
'''

CLEAN = '''
def test_leaves_nothing(tmp_path):
    assert tmp_path.exists()
'''


def default_parent_of(tmp_path) -> str:
    """The inner run's default cgroup parent (MINIDOCKER_CGROUP_PARENT): its own, not the host's
    "minidocker", which other tests running beside it (pytest -n) may be using at that moment."""
    return f"minidocker-leakcheck-{abs(hash(str(tmp_path))):x}"


def run_suite(tmp_path, body: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), suite / "conftest.py")
    (suite / "test_inner.py").write_text(body)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--basetemp", str(tmp_path / "basetemp"), str(suite)], capture_output=True, text=True,
                          env={**os.environ, "MINIDOCKER_CGROUP_PARENT": default_parent_of(tmp_path)}, timeout=120)


def test_the_suite_level_check_fails_a_run_that_leaks(tmp_path):
    result = run_suite(tmp_path, PLANT)
    assert result.returncode != 0, result.stdout
    assert "1 passed" in result.stdout  # the test itself passed: only the session-level check saw it
    report = next(line for line in result.stdout.splitlines() if "minidocker leaked on the host" in line)
    assert "processes:" in report and "planted-leak" in report
    planted = f"{default_parent_of(tmp_path)}/planted-leak"
    assert not glob.glob(f"/sys/fs/cgroup/*/{planted}") + glob.glob(f"/sys/fs/cgroup/{planted}")
    for parent in glob.glob(f"/sys/fs/cgroup/*/{default_parent_of(tmp_path)}"):
        os.rmdir(parent)  # (the inner run made it for the planted cgroup; minidocker's own would stay too)
    survivors = subprocess.run(["pgrep", "-f", "^sleep 300$"], capture_output=True, text=True).stdout.split()
    for pid in survivors:  # (only ours: the environ says which)
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert str(tmp_path).encode() not in f.read()


def test_the_suite_level_check_passes_a_clean_run(tmp_path):
    result = run_suite(tmp_path, CLEAN)
    assert result.returncode == 0, result.stdout
    assert "minidocker leaked" not in result.stdout


PLANT_A_LINK = '''
import subprocess
def test_plants_a_link():
    subprocess.run(["ip", "link", "add", "LINK", "type", "bridge"], check=True)
def test_runs_beside():
    pass
'''


def test_in_a_parallel_run_the_controller_catches_a_host_wide_leak_and_names_the_test(tmp_path):
    """pytest -n: a link is the whole host's, so no worker can blame its test for one (another
    test may have made it); the controller, once all are done, finds it and says during which test
    it appeared."""
    link = f"mdleak{os.getpid() % 100000}"
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), suite / "conftest.py")
    (suite / "test_inner.py").write_text(PLANT_A_LINK.replace("LINK", link))
    env = {name: value for name, value in os.environ.items() if name != "MINIDOCKER_TESTS_PARALLEL_DIR"}
    try:  # (the variable is ours if this run is parallel itself: the inner run is a controller of its own)
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                                 "--basetemp", str(tmp_path / "basetemp"), str(suite)],
                                capture_output=True, text=True, timeout=120,
                                env={**env, "MINIDOCKER_CGROUP_PARENT": default_parent_of(tmp_path)})
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    assert result.returncode != 0, result.stdout
    assert "2 passed" in result.stdout, result.stdout  # no worker blamed a test it cannot tell is the one
    report = next(line for line in result.stdout.splitlines() if "minidocker leaked on the host" in line)
    # (the test beside may be named too: it ran while the link appeared)
    assert re.search(rf"links: {link} \(appeared during [^)]*test_inner.py::test_plants_a_link\b", report), report
