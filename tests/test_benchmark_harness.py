"""The benchmark harness itself works: benchmarks/run.py, a tiny P1 against the floor only.

No time is asserted (speed goals are ratios in benchmarks/RESULTS.md, not tests): only that the
harness sets up, measures, writes its report, and takes down everything it made.
"""

import os
import subprocess
import sys

from conftest import REFERENCE_MINIDOCKER

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



def test_a_container_run_imports_none_of_the_slow_modules(md):
    """P1's lean import path stays lean.  `run --rm busybox true`, through the minidocker script with
    its own interpreter flags, imports no re, enum, json, contextlib, signal, argparse, typing or
    collections: each would cost every container start milliseconds (jsoncore.py says how many).
    Which modules load is what is asserted, never a time."""
    with open(REFERENCE_MINIDOCKER) as f:
        script = f.read()
    interpreter = script.splitlines()[0].removeprefix("#!").split()
    assert script.endswith("entry_point()\n")  # the script's last line; run main() instead, then report
    program = script.removesuffix("entry_point()\n") + (
        "from minidocker import cli\n"
        "code = cli.main(sys.argv[1:])\n"
        "print(' '.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n")
    run = subprocess.run([*interpreter, "-c", program, "run", "--rm", "--network", "none", "busybox", "true"],
                         env=md.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split())
    assert {"minidocker.launch", "minidocker.jsoncore", "ctypes"} <= loaded  # it really ran a container
    assert not loaded & {"re", "enum", "json", "contextlib", "signal", "argparse", "typing", "functools",
                         "collections", "array"}
