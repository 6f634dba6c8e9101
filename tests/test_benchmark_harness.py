"""The benchmark harness itself works: benchmarks/run.py, a tiny P1 against the floor only.

No time is asserted (speed goals are ratios in benchmarks/RESULTS.md, not tests): only that the
harness sets up, measures, writes its report, and takes down everything it made.
"""

import os
import subprocess
import sys

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "run.py")


def test_harness_measures_p1_against_the_floor_and_cleans_up(tmp_path):
    results = tmp_path / "RESULTS.md"
    run = subprocess.run([sys.executable, RUN, "--floor-only", "--runs", "2", "--only", "P1",
                          "--results", str(results), "--tmp", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = results.read_text()
    for row in ("| floor |", "| minidocker |", "| interpreter (python -c pass) |"):
        assert row in report
    assert "kernel: " + os.uname().release in report
    assert "clean: no daemon, mount, cgroup or process of ours is left" in run.stdout
    assert not list(tmp_path.glob("mdbench-*"))  # its temporary directory is gone too
