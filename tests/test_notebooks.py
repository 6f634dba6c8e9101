"""The notebooks run top to bottom on the real kernel, as CI runs them, and leave nothing behind.

Each notebook in notebooks/ is executed cell by cell in a fresh Jupyter kernel
(nbclient), with a per-cell timeout: a cell that hangs fails the test instead
of stalling CI.  The kernel gets this test's state root and cgroup parent
(MINIDOCKER_LAB_ROOT, MINIDOCKER_CGROUP_PARENT), so conftest's leak check
sees every mount, cgroup and process the notebook might leave.  Nothing is
skipped: a notebook that needs something absent fails with the message saying
what.
"""

import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import cgroup_parent_of, let_remapped_root_through

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
CELL_TIMEOUT = 180  # seconds; the slowest cell (the OOM watch) takes a few


def _needed():
    """The notebook tools come with `pip install -e '.[test]'` (scripts/setup): say so if one is missing."""
    try:
        for module in ("ipykernel", "ipywidgets", "matplotlib"):  # what the notebooks' kernel imports
            importlib.import_module(module)
        import nbclient
        import nbformat
    except ImportError as e:
        pytest.fail(f"{e.name} is missing: run scripts/setup (it installs the test extra: pip install -e '.[test]')")
    return nbclient, nbformat


def execute(path_or_notebook, timeout: float = CELL_TIMEOUT):
    nbclient, nbformat = _needed()
    notebook = (nbformat.read(path_or_notebook, as_version=4) if isinstance(path_or_notebook, str)
                else path_or_notebook)
    client = nbclient.NotebookClient(notebook, timeout=timeout, startup_timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()  # raises CellExecutionError (a cell raised) or CellTimeoutError (a cell hung)
    return notebook


def notebook_paths() -> list[str]:
    return sorted(glob.glob(os.path.join(NOTEBOOKS, "[0-9][0-9]_*.ipynb")))


def test_there_are_notebooks_and_each_matches_its_source():
    sys.path.insert(0, NOTEBOOKS)
    try:
        import build
    finally:
        sys.path.remove(NOTEBOOKS)
    names = [os.path.basename(p) for p in notebook_paths()]
    assert {"00_containers_vs_vms.ipynb", "01_isolation.ipynb", "02_create_and_run.ipynb"} <= set(names)
    assert [build.target_of(s) for s in build.sources()] == notebook_paths()
    for source in build.sources():
        with open(build.target_of(source)) as f:
            assert f.read() == build.rendered(source), f"{source} changed: run notebooks/build.py"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", notebook_paths(), ids=os.path.basename)
def test_notebook_runs_top_to_bottom_and_cleans_up(path, tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("the notebooks create real containers: run the tests as root (sudo scripts/test)")
    root = tmp_path / "root"
    root.mkdir()
    let_remapped_root_through(tmp_path)  # --userns remap walks through them
    monkeypatch.setenv("MINIDOCKER_LAB_ROOT", str(root))
    monkeypatch.setenv("MINIDOCKER_CGROUP_PARENT", cgroup_parent_of(tmp_path))
    notebook = execute(path)
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert not root.exists() or not os.listdir(root / "containers"), "the notebook's last cell must clean up"
    shown = "".join(str(o.get("data", {})) + o.get("text", "") for cell in notebook.cells
                    for o in cell.get("outputs", []))
    assert "shell equivalent" in shown or "unshare" in shown, "each notebook shows the explain trace"


def test_a_hanging_cell_fails_within_the_timeout():
    _, nbformat = _needed()
    import nbclient.exceptions

    hang = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(3600)")])
    started = time.monotonic()
    with pytest.raises(nbclient.exceptions.CellTimeoutError):
        execute(hang, timeout=3)
    assert time.monotonic() - started < 60  # the cell was given up on, not waited out


def test_a_raising_cell_fails_the_notebook():
    _, nbformat = _needed()
    import nbclient.exceptions

    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('boom')")])
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="boom"):
        execute(broken)


def test_a_notebook_needing_something_absent_fails_saying_what(tmp_path, monkeypatch):
    _, nbformat = _needed()
    import nbclient.exceptions

    monkeypatch.setenv("MINIDOCKER_LAB_ROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    needy = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from minidocker.notebook import Lab\nlab = Lab()\nlab.require('ip', 'no-such-tool-here')")])
    with pytest.raises(nbclient.exceptions.CellExecutionError,
                       match="this notebook needs no-such-tool-here, which this machine lacks: run scripts/setup"):
        execute(needy)


def test_as_non_root_the_first_cells_say_to_use_sudo():
    """A learner who starts Jupyter without root gets one clear sentence, not a kernel traceback about EPERM."""
    _needed()
    home = tempfile.mkdtemp(prefix="minidocker-nb-nobody-")
    try:
        os.chmod(home, 0o777)
        script = ("import sys; sys.path.insert(0, sys.argv[2]); import test_notebooks as t\n"
                  "import nbclient.exceptions as x\n"
                  "try:\n    t.execute(sys.argv[1])\nexcept x.CellExecutionError as e:\n    print(e)\n")
        env = {"PATH": os.environ["PATH"], "HOME": home, "JUPYTER_RUNTIME_DIR": home,
               "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-c", script, notebook_paths()[0], os.path.dirname(os.path.abspath(__file__))],
                              capture_output=True, text=True, env=env, cwd=home, timeout=120)
        assert "NotRoot" in done.stdout, done.stdout + done.stderr
        assert "needs root: start the lab with `sudo scripts/lab`" in done.stdout
    finally:
        shutil.rmtree(home)
