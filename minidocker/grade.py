"""Graded exercises: stubs made from minidocker's own code, and the grader (chapters 1 and 2 onwards).

Each exercise is a folder ``exercises/NN_name/`` (see ``exercises/README.md``):

    README.md       goal, difficulty, time, hints, man pages to read
    exercise.toml   which minidocker function is the answer, and the checks: points + behaviour test
    solution.py     the learner's file: one function to write

The answer key is minidocker itself.  ``solution.py`` starts as a *stub
generated* from the reference function (its imports, signature and docstring,
with the body replaced by ``raise NotImplementedError(hint)``) -- never copied
by hand, so it cannot drift; ``minidocker grade --reset-stub NN`` writes it
again, and the test suite checks the committed stubs are what it writes.

Grading runs the chapter's real behaviour tests (pytest, on the real kernel)
against a minidocker whose reference function is replaced by the learner's
(``python -m minidocker.exercise``, reached through ``$MINIDOCKER_CLI``).
Each check is one test worth some points; a hang is cut off by a timeout and
scores nothing.  The results go out as a table, as JUnit XML, and as a
Gradescope ``results.json``, so a course can collect them.
"""

import ast
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from minidocker.errors import MinidockerError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # a clone: exercises/ and tests/ beside the code
DEFAULT_OUTPUT = "grade-results"
DEFAULT_TIMEOUT = 60  # seconds per check: a container starts in well under one
DETAILS = "\n---- details ----\n"  # what follows it in a check's output is pytest's traceback


@dataclass
class Check:
    name: str  # what the learner reads in the table
    points: int
    test: str  # a pytest node id, relative to the repository: tests/test_x.py::test_y
    look_at: str = ""  # where to look when it fails


@dataclass
class Exercise:
    folder: str  # e.g. /repo/exercises/01_isolation
    title: str
    chapter: int
    difficulty: str
    time: str
    module: str  # the reference: minidocker.rootfs
    function: str  # ... and its function: pivot_into
    hint: str  # what the stub's NotImplementedError says
    checks: list[Check] = field(default_factory=list)

    @property
    def name(self) -> str:
        return os.path.basename(self.folder)

    @property
    def target(self) -> str:
        return f"{self.module}:{self.function}"

    @property
    def solution(self) -> str:
        return os.path.join(self.folder, "solution.py")

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)


def exercises_dir() -> str:
    return os.environ.get("MINIDOCKER_EXERCISES") or os.path.join(REPO, "exercises")


def load(folder: str) -> Exercise:
    """Read one exercise folder's exercise.toml."""
    try:
        with open(os.path.join(folder, "exercise.toml"), "rb") as f:
            data = tomllib.load(f)
        reference = data["reference"]
        checks = [Check(c["name"], int(c["points"]), c["test"], c.get("look_at", "")) for c in data["checks"]]
        return Exercise(folder, data["title"], int(data["chapter"]), data["difficulty"], data["time"],
                        reference["module"], reference["function"], reference["hint"], checks)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as e:
        raise MinidockerError(f"exercise {os.path.basename(folder)}: bad exercise.toml: {type(e).__name__}: {e}") \
            from None


def all_exercises(directory: str | None = None) -> list[Exercise]:
    directory = os.path.abspath(directory or exercises_dir())
    if not os.path.isdir(directory):
        raise MinidockerError(f"no exercises directory at {directory} (set MINIDOCKER_EXERCISES)")
    return [load(os.path.join(directory, name)) for name in sorted(os.listdir(directory))
            if os.path.isfile(os.path.join(directory, name, "exercise.toml"))]


def find(wanted: list[str] | None, directory: str | None = None) -> list[Exercise]:
    """Exercises by folder name or by number ('01', '01_isolation'); all of them when none are named."""
    known = all_exercises(directory)
    if not wanted:
        return known
    chosen = []
    for word in wanted:
        matches = [e for e in known if word in (e.name, e.name.split("_", 1)[0])]
        if len(matches) != 1:
            names = ", ".join(e.name for e in known)
            problem = "ambiguous" if matches else "unknown"
            raise MinidockerError(f"{problem} exercise {word!r}: the exercises are {names}")
        chosen.append(matches[0])
    return chosen


# -- stubs, made from the reference ------------------------------------------------------------


def _reference_parts(exercise: Exercise) -> tuple[str, list[str], ast.FunctionDef]:
    """The reference module's source, its import statements and constants, and the reference function's node."""
    spec = importlib.util.find_spec(exercise.module)
    if spec is None or not spec.origin:
        raise MinidockerError(f"exercise {exercise.name}: no module {exercise.module}")
    with open(spec.origin) as f:
        source = f.read()
    tree = ast.parse(source)
    imports = [ast.get_source_segment(source, node) for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_constant(node)]
    function = next((node for node in tree.body
                     if isinstance(node, ast.FunctionDef) and node.name == exercise.function), None)
    if function is None:
        raise MinidockerError(f"exercise {exercise.name}: {exercise.module} has no function {exercise.function}")
    return source, imports, function


def _is_constant(node: ast.stmt) -> bool:
    """A module constant such as ``OPAQUE_MARKER = ".wh..wh..opq"``: the learner gets it with the imports."""
    return (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper() and isinstance(node.value, ast.Constant))


def _header(exercise: Exercise, kind: str) -> str:
    return (f'"""Exercise {exercise.name}: {exercise.title}\n\n'
            f"{kind} from minidocker's own {exercise.module}.{exercise.function}() by\n"
            f"`minidocker grade --reset-stub {exercise.name}`{'' if kind == 'Generated' else ' (with its body)'}.\n"
            f"Write the body of {exercise.function}(), then run `sudo minidocker grade {exercise.name}`.\n"
            f"Read README.md in this folder first.  You may use everything imported below.\n"
            f'"""\n\n')


def stub_source(exercise: Exercise) -> str:
    """The learner's starting file: imports, signature, docstring, and `raise NotImplementedError(hint)`."""
    source, imports, function = _reference_parts(exercise)
    lines = source.splitlines()
    body = function.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)
    first_line = (function.decorator_list[0].lineno if function.decorator_list else function.lineno) - 1
    kept = lines[first_line:body[0].end_lineno if has_docstring else body[0].lineno - 1]
    indent = " " * body[0].col_offset
    raise_line = f"{indent}raise NotImplementedError({exercise.hint!r})"
    return _header(exercise, "Generated") + "\n".join(imports) + "\n\n\n" + "\n".join(kept) + "\n" + raise_line + "\n"


def reference_source(exercise: Exercise) -> str:
    """A solution file holding minidocker's own function: graded like a learner's, it must score full marks."""
    source, imports, function = _reference_parts(exercise)
    return (_header(exercise, "The reference, copied") + "\n".join(imports) + "\n\n\n"
            + ast.get_source_segment(source, function, padded=True) + "\n")


def reset_stub(exercise: Exercise) -> str:
    """(Re)write the exercise's solution.py as the generated stub; return its path."""
    with open(exercise.solution, "w") as f:
        f.write(stub_source(exercise))
    return exercise.solution


# -- grading -------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    exercise: str
    check: Check
    passed: bool
    output: str  # what the learner reads when it failed (empty when it passed)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return self.check.points if self.passed else 0


@dataclass
class Report:
    results: list[CheckResult]
    output_dir: str

    @property
    def score(self) -> int:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> int:
        return sum(r.check.points for r in self.results)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def grade(exercises: list[Exercise], solutions: dict[str, str] | None = None, output_dir: str = DEFAULT_OUTPUT,
          timeout: float = DEFAULT_TIMEOUT, reference: bool = False) -> Report:
    """Grade each exercise's solution (solutions: exercise name -> file; default its solution.py).

    reference=True grades minidocker's own functions instead: the proof that the checks can be passed.
    Writes results.json (Gradescope) and junit.xml into output_dir.
    """
    if os.geteuid() != 0:
        raise MinidockerError("grading runs real containers: run it as root (sudo minidocker grade ...)")
    if not timeout > 0:  # pytest-timeout reads 0 as "no limit": a hanging solution would stall the grader
        raise MinidockerError(f"invalid value {timeout:g} for --timeout: seconds, more than 0")
    os.makedirs(output_dir, exist_ok=True)
    results = []
    for exercise in exercises:
        work = os.path.abspath(os.path.join(output_dir, exercise.name))
        os.makedirs(os.path.join(work, "bin"), exist_ok=True)
        solution = (solutions or {}).get(exercise.name, exercise.solution)
        if reference:
            solution = os.path.join(work, "reference_solution.py")
            with open(solution, "w") as f:
                f.write(reference_source(exercise))
        if not os.path.isfile(solution):
            raise MinidockerError(f"no solution file {solution} for exercise {exercise.name}")
        results += _grade_one(exercise, os.path.abspath(solution), work, timeout)
    report = Report(results, output_dir)
    write_results_json(report, os.path.join(output_dir, "results.json"))
    write_junit(report, os.path.join(output_dir, "junit.xml"))
    return report


def _write_cli_wrapper(exercise: Exercise, solution: str, work: str) -> str:
    """bin/minidocker: minidocker with the learner's function in -- the checks call this, and so can you."""
    path = os.path.join(work, "bin", "minidocker")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# minidocker with your function plugged in (written by `minidocker grade`)\n"
                f"exec {shlex.quote(sys.executable)} -m minidocker.exercise --solution {shlex.quote(solution)} "
                f"--replace {exercise.target} -- \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def _grade_one(exercise: Exercise, solution: str, work: str, timeout: float) -> list[CheckResult]:
    """Run the exercise's checks (pytest) with the learner's function plugged in; one result per check."""
    repo = os.path.dirname(os.path.dirname(exercise.folder))  # the checks' test node ids are relative to it
    cli = _write_cli_wrapper(exercise, solution, work)
    problem = _load_problem(cli, timeout)
    if problem:  # no check can pass: say why once, in every check, without running them
        return [CheckResult(exercise.name, check, False, f"{problem}\nthe check: {check.test}")
                for check in exercise.checks]
    pytest_junit = os.path.join(work, "pytest-junit.xml")
    if os.path.exists(pytest_junit):
        os.unlink(pytest_junit)
    basetemp = tempfile.mkdtemp(prefix=f"minidocker-grade-{exercise.name}-")  # not the caller's pytest's
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short", f"--basetemp={basetemp}",
               f"--timeout={timeout:g}", f"--junitxml={pytest_junit}", "--rootdir", repo,
               *[c.test for c in exercise.checks]]
    env = {**os.environ, "MINIDOCKER_CLI": cli}
    # Its own session, so that whatever it leaves hanging can be killed as a group.
    process = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    overall = timeout * len(exercise.checks) + 60  # every check timing out, plus pytest's own start
    try:
        log, _ = process.communicate(timeout=overall)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        log += f"\n[grader] pytest did not finish in {overall:g} s and was killed\n".encode()
    shutil.rmtree(basetemp, ignore_errors=True)
    with open(os.path.join(work, "pytest.log"), "wb") as f:
        f.write(log)
    outcomes = _read_pytest_junit(pytest_junit)
    results = []
    for check in exercise.checks:
        passed, text, seconds = _outcome(outcomes, check.test) or (
            False, "this check did not run; pytest said:\n" + log.decode(errors="replace")[-2000:], 0.0)
        output = "" if passed else _advice(exercise, check, text, timeout, cli)
        results.append(CheckResult(exercise.name, check, passed, output, seconds))
    return results


def _load_problem(cli: str, timeout: float) -> str:
    """Why the solution file cannot even be plugged in (a syntax error, a missing function), or ''."""
    try:
        loaded = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"loading your solution file took more than {timeout:g} s: does it run a loop when imported?"
    return "" if loaded.returncode == 0 else loaded.stderr.strip()


def _junit_key(node_id: str) -> tuple[str, str]:
    """tests/test_x.py::test_y[a] -> ('tests.test_x', 'test_y[a]'), as pytest's JUnit XML names it."""
    path, _, name = node_id.partition("::")
    return path.removesuffix(".py").replace("/", "."), name.replace("::", ".")


def _outcome(outcomes: dict, node_id: str) -> tuple[bool, str, float] | None:
    """The outcome of one test; a parametrized test named without its [case] passes when every case does."""
    classname, name = _junit_key(node_id)
    cases = [outcome for (c, n), outcome in outcomes.items()
             if c == classname and (n == name or ("[" not in name and n.startswith(name + "[")))]
    if not cases:
        return None
    return (all(passed for passed, _, _ in cases), "\n".join(text for passed, text, _ in cases if not passed),
            sum(seconds for _, _, seconds in cases))


def _read_pytest_junit(path: str) -> dict[tuple[str, str], tuple[bool, str, float]]:
    """{(classname, name): (passed, failure text, seconds)} from pytest's --junitxml."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return {}
    outcomes = {}
    for case in tree.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        text = "\n".join(f"{p.tag}: {p.get('message', '')}" for p in problems)
        details = "\n".join(p.text or "" for p in problems).strip()
        if details:
            text += DETAILS + details
        passed, seconds = not problems, float(case.get("time", 0))
        if key in outcomes:  # a setup error and a teardown error are two entries: any problem fails it
            old_passed, old_text, old_seconds = outcomes[key]
            passed, text, seconds = old_passed and passed, (old_text + "\n" + text).strip(), old_seconds + seconds
        outcomes[key] = (passed, text, seconds)
    return outcomes


def _advice(exercise: Exercise, check: Check, text: str, timeout: float, cli: str) -> str:
    """The failure, led by what the learner should look at."""
    lines = []
    if "NotImplementedError" in text:
        lines.append(f"{exercise.function}() still raises NotImplementedError -- {exercise.hint}")
    if "Timeout" in text or "did not finish" in text:
        lines.append(f"timed out after {timeout:g} s: does your {exercise.function}() return? "
                     "(an endless loop, or waiting for something that never comes)")
    if text.startswith("skipped"):
        lines.append("this check could not run on this machine (see below)")
    if check.look_at:
        lines.append(f"look at: {check.look_at}")
    lines.append(f"the check: {check.test}")
    lines.append(f"try it by hand: sudo {cli} run --rm busybox ...")
    return "\n".join(lines) + "\n" + _shorten(text)


def _shorten(text: str, limit: int = 3000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


# -- reports -------------------------------------------------------------------------------------


def table(report: Report) -> str:
    """The score table a learner reads in the terminal."""
    rows = [("EXERCISE", "CHECK", "POINTS", "")]
    for r in report.results:
        rows.append((r.exercise, r.check.name, f"{r.score}/{r.check.points}", "ok" if r.passed else "FAILED"))
    rows.append(("", "total", f"{report.score}/{report.max_score}", ""))
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(3)]
    lines = ["".join(cell.ljust(width) for cell, width in zip(row, widths)) + row[3] for row in rows]
    for r in report.results:
        if not r.passed:  # the advice and the failure's one-line message; the traceback is in results.json
            lines.append(f"\n--- {r.exercise}: {r.check.name} ---\n{r.output.split(DETAILS)[0].rstrip()}")
    lines.append(f"\nresults: {os.path.join(report.output_dir, 'results.json')}, "
                 f"{os.path.join(report.output_dir, 'junit.xml')}")
    return "\n".join(lines)


def write_results_json(report: Report, path: str) -> None:
    """Gradescope's autograder format: score, max_score, and one entry per test."""
    results = {
        "score": report.score,
        "max_score": report.max_score,
        "output": f"{report.score}/{report.max_score} points",
        "tests": [{"name": f"{r.exercise}: {r.check.name}", "score": r.score, "max_score": r.check.points,
                   "status": "passed" if r.passed else "failed", "output": r.output} for r in report.results],
    }
    with open(path, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_junit(report: Report, path: str) -> None:
    """JUnit XML: one <testsuite> per exercise, one <testcase> per check, for CI dashboards."""
    suites = ET.Element("testsuites", tests=str(len(report.results)),
                        failures=str(sum(not r.passed for r in report.results)))
    by_exercise: dict[str, list[CheckResult]] = {}
    for r in report.results:
        by_exercise.setdefault(r.exercise, []).append(r)
    for name, results in by_exercise.items():
        suite = ET.SubElement(suites, "testsuite", name=name, tests=str(len(results)),
                              failures=str(sum(not r.passed for r in results)),
                              time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"exercises.{name}", name=r.check.name,
                                 time=f"{r.seconds:.3f}")
            ET.SubElement(case, "system-out").text = f"{r.score}/{r.check.points} points ({r.check.test})"
            if not r.passed:
                failure = ET.SubElement(case, "failure", message=r.output.splitlines()[0] if r.output else "failed")
                failure.text = r.output
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
