"""The graders can be trusted: the answer key passes, the stub fails, wrong answers fail (exercises/).

Each grading here is `minidocker grade` run for real: pytest runs the chapter's
behaviour tests on the real kernel, with a solution file plugged into minidocker.
"""

import ast
import importlib
import inspect
import json
import os
import re
import subprocess
import textwrap
import xml.etree.ElementTree as ET

import pytest

from conftest import REFERENCE_MINIDOCKER
from minidocker import grade

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

EXERCISES = grade.all_exercises()
BY_NAME = {e.name: e for e in EXERCISES}


def run_grade(tmp_path, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    """`minidocker grade -o tmp_path/out ARGS`; returns the process and results.json (checked to be valid)."""
    out = tmp_path / "out"
    result = subprocess.run([REFERENCE_MINIDOCKER, "grade", "-o", str(out), *args], capture_output=True, text=True,
                            timeout=timeout)
    results_path = out / "results.json"
    if not results_path.exists():
        return result, {}
    results = json.loads(results_path.read_text())
    assert set(results) >= {"score", "max_score", "tests"}
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output"}
        assert test["score"] in (0, test["max_score"])
    assert results["score"] == sum(t["score"] for t in results["tests"])
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.tag == "testsuites"
    cases = list(junit.iter("testcase"))
    assert len(cases) == len(results["tests"])
    assert int(junit.get("failures")) == sum(case.find("failure") is not None for case in cases) \
        == sum(t["score"] < t["max_score"] for t in results["tests"])
    return result, results


def solution_file(tmp_path, exercise: grade.Exercise, body: str) -> str:
    """The generated stub with its `raise NotImplementedError` replaced by `body`."""
    stub = grade.stub_source(exercise)
    raise_line = next(line for line in stub.splitlines() if "raise NotImplementedError(" in line)
    indent = raise_line[:len(raise_line) - len(raise_line.lstrip())]
    path = tmp_path / f"{exercise.name}_solution.py"
    path.write_text(stub.replace(raise_line, textwrap.indent(textwrap.dedent(body).strip(), indent)))
    return str(path)


def scores(results: dict) -> dict[str, int]:
    return {t["name"].split(": ", 1)[1]: t["score"] for t in results["tests"]}


# -- the stubs are made from the reference -------------------------------------------------------


def test_there_are_exercises_for_chapters_1_2_3_and_7():
    assert {e.chapter for e in EXERCISES} >= {1, 2, 3, 7}
    for e in EXERCISES:
        assert e.checks and all(c.points > 0 for c in e.checks)
        assert os.path.isfile(os.path.join(e.folder, "README.md"))


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_the_committed_stub_is_the_generated_one(exercise):
    with open(exercise.solution) as f:
        assert f.read() == grade.stub_source(exercise), f"run: minidocker grade --reset-stub {exercise.name}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_the_stub_keeps_the_signature_and_docstring_and_raises_the_hint(exercise, tmp_path):
    from minidocker import exercise as plug

    stub = plug.load_function(exercise.solution, exercise.function)
    reference = getattr(importlib.import_module(exercise.module), exercise.function)
    assert inspect.signature(stub) == inspect.signature(reference)
    assert stub.__doc__ == reference.__doc__
    ast.parse(grade.reference_source(exercise))  # the file --reference grades is valid Python too
    arguments = [None] * len(inspect.signature(stub).parameters)
    with pytest.raises(NotImplementedError, match=re.escape(exercise.hint)):
        stub(*arguments)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_reset_stub_rewrites_the_learners_file(exercise, tmp_path, monkeypatch):
    copy = grade.load(exercise.folder)
    copy.folder = str(tmp_path / exercise.name)
    os.makedirs(copy.folder)
    with open(copy.solution, "w") as f:
        f.write("def broken(:\n")
    grade.reset_stub(copy)
    with open(copy.solution) as f:
        assert f.read() == grade.stub_source(exercise)


# -- grading, on the real kernel -----------------------------------------------------------------


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_the_reference_gets_full_marks(exercise, tmp_path):
    result, results = run_grade(tmp_path, "--reference", exercise.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert results["score"] == results["max_score"] == exercise.max_score
    assert "total" in result.stdout and f"{exercise.max_score}/{exercise.max_score}" in result.stdout


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_the_untouched_stub_fails_every_check_and_says_what_to_look_at(exercise, tmp_path):
    result, results = run_grade(tmp_path, exercise.name)  # the committed solution.py: the stub
    assert result.returncode == 1, result.stdout + result.stderr
    assert results["score"] == 0 and results["max_score"] == exercise.max_score
    for test in results["tests"]:
        assert f"{exercise.function}() still raises NotImplementedError -- {exercise.hint}" in test["output"]
    assert "FAILED" in result.stdout and exercise.hint in result.stdout


# Plausible wrong answers, each with the checks it must lose (the others it may pass).
WRONG = {
    "01_isolation": [
        ("chroot instead of pivot_root", """
            kernel.chdir(root)
            kernel.chroot(root)
            kernel.chdir("/")
        """, ["seen from the host, the container's root is a tree of its own",
              "the chroot breakout (chdir('..') from a nested chroot) cannot reach the host"]),
        ("pivot_root, but the old root stays mounted", """
            kernel.chdir(root)
            kernel.mkdir(f"{root}/.old_root", 0o700)
            kernel.pivot_root(root, f"{root}/.old_root")
            kernel.chdir("/")
        """, ["no host mount and no put_old directory is left in the container"]),
        ("detached, but the put_old directory is left behind", """
            kernel.chdir(root)
            kernel.mkdir(f"{root}/.old_root", 0o700)
            kernel.pivot_root(root, f"{root}/.old_root")
            kernel.chdir("/")
            kernel.umount("/.old_root", MNT_DETACH)
        """, ["no host mount and no put_old directory is left in the container"]),
    ],
    "02_cidfile": [
        ("look first, then create", """
            if path is None:
                return None
            if os.path.exists(path):
                raise Conflict(f"Container ID file found, make sure the other container isn't running or delete {path}")
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        """, ["a dangling symbolic link at the path is refused, not followed",
              "a cidfile that cannot be created: one line on stderr, exit 125"]),
        ("just open it for writing", """
            return None if path is None else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        """, ["the ID is written; a second create with the same file fails and changes nothing",
              "a stale cidfile left by someone else is refused and kept as it was",
              "a dangling symbolic link at the path is refused, not followed",
              "of six creates racing for one cidfile, exactly one wins"]),
    ],
    "02_create_and_run": [
        ("the image's CMD is always appended", """
            chosen_entrypoint = [entrypoint] if entrypoint else list(image_entrypoint or [])
            command = chosen_entrypoint + list(image_cmd or []) + list(args)
            if not command:
                raise MinidockerError("No command specified")
            return command
        """, ["arguments after the image replace its CMD",
              "--entrypoint replaces the ENTRYPOINT and drops the image's CMD"]),
        ("--entrypoint keeps the image's CMD", """
            chosen_entrypoint = [entrypoint] if entrypoint else list(image_entrypoint or [])
            command = chosen_entrypoint + (list(args) if args else list(image_cmd or []))
            if not command:
                raise MinidockerError("No command specified")
            return command
        """, ["--entrypoint replaces the ENTRYPOINT and drops the image's CMD"]),
        ("an empty command is not refused", """
            if entrypoint is not None:
                return ([entrypoint] if entrypoint else []) + list(args)
            return list(image_entrypoint or []) + (list(args) if args else list(image_cmd or []))
        """, ["nothing to run is refused (125, 'No command specified') and nothing is created"]),
    ],
    "03_save_and_load": [
        ("only the top layer (as if the parent layers were found some other way)", """
            return {"Config": image_id.split(":")[1] + ".json", "RepoTags": list(tags),
                    "Layers": [diff_ids[-1].split(":")[1] + "/layer.tar"]}
        """, ["a deleted file stays deleted in podman (every layer of the stack is listed)"]),
        ("no tags recorded", """
            return {"Config": image_id.split(":")[1] + ".json", "RepoTags": [],
                    "Layers": [d.split(":")[1] + "/layer.tar" for d in diff_ids]}
        """, ["podman, another engine, loads the tar and runs it with the same image ID",
              "two tags of one image: one entry listing both tags, its layer stored once",
              "minidocker loads its own archive back, even gzip-compressed"]),
    ],
    "07_union_filesystem": [
        ("the markers are dropped, nothing made", """
            return None
        """, ["a file deleted in a container stays deleted in the committed image",
              "a directory removed and made again hides the image's old one"]),
        ("no opaque directories", """
            if whiteout == OPAQUE_MARKER:
                return
            target = os.path.join(directory, whiteout[len(WHITEOUT_PREFIX):])
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            kernel.mknod(target, "c", 0, 0, mode=0o000, why="whiteout")
        """, ["a directory removed and made again hides the image's old one"]),
        ("os.mknod: the step is not in the trace", """
            if whiteout == OPAQUE_MARKER:
                kernel.setxattr(directory, OPAQUE_XATTR, b"y", why="opaque")
                return
            target = os.path.join(directory, whiteout[len(WHITEOUT_PREFIX):])
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            os.mknod(target, 0o020000, os.makedev(0, 0))
        """, ["the explain trace shows the whiteout being made"]),
    ],
}


@pytest.mark.parametrize("name,label,body,must_fail",
                         [pytest.param(name, label, body, must_fail, id=f"{name}: {label}")
                          for name, cases in WRONG.items() for label, body, must_fail in cases])
def test_a_wrong_solution_loses_the_checks_it_breaks(name, label, body, must_fail, tmp_path):
    exercise = BY_NAME[name]
    result, results = run_grade(tmp_path, name, "--solution", solution_file(tmp_path, exercise, body))
    assert result.returncode == 1, result.stdout + result.stderr
    lost = {check for check, score in scores(results).items() if score == 0}
    assert lost >= set(must_fail), (label, lost, result.stdout)
    assert "NotImplementedError" not in json.dumps(results)


def test_a_hanging_solution_fails_within_the_timeout(tmp_path):
    exercise = EXERCISES[0]
    hang = solution_file(tmp_path, exercise, "import time\nwhile True:\n    time.sleep(1)")
    result, results = run_grade(tmp_path, exercise.name, "--solution", hang, "--timeout", "5",
                                timeout=5 * len(exercise.checks) + 120)
    assert result.returncode == 1
    assert results["score"] == 0
    assert all("timed out after 5 s" in t["output"] for t in results["tests"])


def test_a_crashing_solution_fails_and_the_grader_goes_on(tmp_path):
    exercise = EXERCISES[0]
    crash = solution_file(tmp_path, exercise, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    result, results = run_grade(tmp_path, exercise.name, "--solution", crash)
    assert result.returncode == 1 and results["score"] == 0
    assert len(results["tests"]) == len(exercise.checks)


def test_a_solution_that_does_not_load_says_which_line(tmp_path):
    exercise = EXERCISES[0]
    broken = tmp_path / "broken.py"
    broken.write_text(f"def {exercise.function}(:\n    pass\n")
    result, results = run_grade(tmp_path, exercise.name, "--solution", str(broken))
    assert result.returncode == 1 and results["score"] == 0
    assert all("does not load (line 1): SyntaxError" in t["output"] for t in results["tests"])


@pytest.mark.parametrize("args,message", [
    (["99_nope"], "unknown exercise '99_nope': the exercises are 01_isolation, 02_cidfile, 02_create_and_run"),
    (["01", "--solution", "/nonexistent/solution.py"], "no solution file /nonexistent/solution.py"),
    (["02"], "ambiguous exercise '02': the exercises are 01_isolation, 02_cidfile, 02_create_and_run"),
    (["01", "02_cidfile", "--solution", "x.py"], "--solution needs exactly one exercise named"),
    (["01", "--timeout", "0"], "invalid value 0 for --timeout: seconds, more than 0"),
    (["--reset-stub"], "--reset-stub overwrites your solution.py: name the exercise(s) to reset"),
])
def test_bad_input_is_one_line_and_125(tmp_path, args, message):
    result, results = run_grade(tmp_path, *args)
    assert result.returncode == 125 and results == {}
    assert result.stderr.startswith(f"minidocker: {message}") and result.stderr.count("\n") == 1
