"""Shared fixtures: a private state root per test, the CLI, and a leak check.

Every test gets its own MINIDOCKER_ROOT (so tests never see each other's
containers), with the busybox image hard-linked in from a template built once
per session.  After each test, every container the test left is removed *with
minidocker itself* (`rm -f`), and then the kernel is checked: a mount, cgroup,
network namespace, link or process that is still there is minidocker's leak,
and fails the test that made it.

Tests may run in parallel (scripts/test runs `pytest -n`, pytest-xdist: a
controller and worker processes).  A test's mounts, cgroups and processes are
found by what is its own (its tmp_path, its cgroup parent, its MINIDOCKER_ROOT),
so they are checked after each test wherever it runs.  The host's network
namespaces and links are one list for everybody: while other tests run beside,
a link that appeared during a test may be another test's, so then they are
checked once, by the controller, when every worker is done -- and a leak found
there names the tests during which it appeared.
"""

import glob
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

VENV_BIN = os.path.dirname(sys.executable)
REFERENCE_MINIDOCKER = os.path.join(VENV_BIN, "minidocker")
# `minidocker grade` points the behaviour tests at minidocker with a learner's function plugged in
MINIDOCKER = os.environ.get("MINIDOCKER_CLI") or REFERENCE_MINIDOCKER


class Minidocker:
    """Runs the real CLI against one test's private state root."""

    def __init__(self, root: str, cgroup_parent: str):
        self.root = root
        self.cgroup_parent = cgroup_parent
        self.env = {**os.environ, "MINIDOCKER_ROOT": root, "MINIDOCKER_CGROUP_PARENT": cgroup_parent}

    def __call__(self, *args: str, input: bytes | str | None = None, timeout: float = 60,
                 check: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run([MINIDOCKER, *args], env=self.env, input=input, capture_output=True,
                                text=not isinstance(input, bytes), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"minidocker {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def out(self, *args: str, **kwargs) -> str:
        """stdout of a command that must succeed."""
        return self(*args, check=True, **kwargs).stdout.strip()

    def inspect(self, ref: str, template: str) -> str:
        return self.out("inspect", "-f", template, ref)

    def pid(self, ref: str) -> int:
        return int(self.inspect(ref, "{{.State.Pid}}"))

    def cgroup(self, ref: str):
        from minidocker import cgroups

        return cgroups.find(self.inspect(ref, "{{.Id}}"), parent=self.cgroup_parent)

    def wait_for(self, predicate, timeout: float = 10, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


def demo_program(tmp_path_factory, build) -> bytes:
    """A program of minidocker/demos (`build`: e.g. demos.probe_binary), compiled into a cache of this
    session's, as bytes to pipe into a container.  A missing compiler fails the test: scripts/setup
    installs gcc, so it is never a reason to skip."""
    from minidocker.errors import MinidockerError

    try:
        path = build(str(tmp_path_factory.mktemp("cache")))
    except MinidockerError as e:
        pytest.fail(str(e))
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def image_template(tmp_path_factory) -> str:
    """A state root holding only the busybox image, built once for the session."""
    root = str(tmp_path_factory.mktemp("template"))
    subprocess.run([REFERENCE_MINIDOCKER, "create", "busybox", "true"], env={**os.environ, "MINIDOCKER_ROOT": root},
                   check=True, capture_output=True)
    shutil.rmtree(os.path.join(root, "containers"))
    os.makedirs(os.path.join(root, "containers"))
    return root


def let_remapped_root_through(path) -> None:
    """pytest makes its directories 0700 (one level more under xdist: popen-gwN); --userns remap's root,
    host uid 100000, must be able to walk through every one of them down to its state root."""
    import pathlib
    import tempfile

    top = pathlib.Path(tempfile.gettempdir())
    for directory in [pathlib.Path(path), *pathlib.Path(path).parents]:
        if directory == top or top not in directory.parents:
            break
        directory.chmod(directory.stat().st_mode | 0o011)


@pytest.fixture(scope="session", autouse=True)
def remapped_root_may_walk_through_the_base_temp(tmp_path_factory):
    """Also for tests that make their state root without `md` (the notebooks' Lab, under TMPDIR)."""
    let_remapped_root_through(tmp_path_factory.getbasetemp())


@pytest.fixture
def md(tmp_path, image_template) -> Minidocker:
    root = str(tmp_path / "root")
    subprocess.run(["cp", "-al", image_template, root], check=True)
    let_remapped_root_through(tmp_path)
    cli = Minidocker(root, cgroup_parent=cgroup_parent_of(tmp_path))
    yield cli
    leftovers = cli("ps", "-aq", "--no-trunc").stdout.split()
    if leftovers:
        cli("rm", "-f", *leftovers, timeout=60)


@pytest.fixture
def empty_md(tmp_path):
    """A second minidocker with an empty store: what a load or pull must fill by itself."""
    root = tmp_path / "empty"
    root.mkdir()
    return Minidocker(str(root), cgroup_parent=cgroup_parent_of(tmp_path))


def store_snapshot(root: str) -> dict:
    """Every path under `root` with its type, mode, size and content hash: to prove nothing changed."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            state[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_rdev, digest)
    return state


# -- leak check -----------------------------------------------------------------------


# Set by the controller of a parallel run, for its workers and every pytest they start: the
# directory where they leave what the controller's check at the end needs (the cgroup parents
# they used, what appeared on the host during which test).  Set means: other tests run beside.
PARALLEL_RUN_DIR = "MINIDOCKER_TESTS_PARALLEL_DIR"
HOST_WIDE_KINDS = ("network namespaces", "links")  # not attributable to one test while others run


def _report_to_the_controller(line: str) -> None:
    """One line for the controller of a parallel run (a file per process: no interleaved writes)."""
    directory = os.environ.get(PARALLEL_RUN_DIR)
    if directory:
        with open(os.path.join(directory, f"worker-{os.getpid()}.log"), "a") as f:
            f.write(line + "\n")


def cgroup_parent_of(tmp_path) -> str:
    """Each test's containers get cgroups under a parent of its own, so leaks are attributable."""
    name = f"minidocker-test-{abs(hash(str(tmp_path))):x}"
    if name not in _CGROUP_PARENTS_USED:
        _CGROUP_PARENTS_USED.add(name)
        _report_to_the_controller(f"cgroup-parent\t{name}")
    return name


_CGROUP_PARENTS_USED: set[str] = set()  # for the suite-level check at the end


def _kernel_objects(root: str | None = None, cgroup_parent: str = "minidocker",
                    mount_prefix: str = "/") -> dict[str, set]:
    with open("/proc/self/mountinfo") as f:  # (a test's own mounts: those under its tmp_path)
        mounts = {" ".join(line.split()[3:5]) for line in f if line.split()[4].startswith(mount_prefix)}
    cgroups = set(glob.glob(f"/sys/fs/cgroup/*/{cgroup_parent}")) | set(glob.glob(f"/sys/fs/cgroup/{cgroup_parent}"))
    netns = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")) - {""}
    links = {ln.split(":")[1].strip() for ln in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                                                  text=True).stdout.splitlines()}
    processes = set()
    if root:
        marker = f"MINIDOCKER_ROOT={root}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0") and int(pid) != os.getpid():
                        processes.add(int(pid))
            except OSError:
                pass
    return {"mounts": mounts, "cgroups": cgroups, "network namespaces": netns, "links": links,
            "processes": processes}


@pytest.fixture(autouse=True)
def no_leaks(tmp_path, request):
    """Fail the test that leaves a kernel object behind (checked after `md`'s own clean-up)."""
    parent = cgroup_parent_of(tmp_path)
    before = _kernel_objects(cgroup_parent=parent, mount_prefix=str(tmp_path))
    yield
    root = str(tmp_path / "root")  # where `md` keeps this test's state
    others_run_beside = bool(os.environ.get(PARALLEL_RUN_DIR))
    leaked, appeared = {}, {}
    for attempt in range(40):  # the kernel frees a dying container's cgroups a moment after it exits
        after = _kernel_objects(root, parent, mount_prefix=str(tmp_path))
        leaked = {kind: after[kind] - before.get(kind, set()) for kind in after}
        leaked = {kind: items for kind, items in leaked.items() if items}
        if others_run_beside:  # the controller checks these at the end; it is told what appeared when
            appeared = {kind: leaked.pop(kind) for kind in HOST_WIDE_KINDS if kind in leaked}
        if not leaked:
            break
        time.sleep(0.05)
    for kind, items in appeared.items():
        for item in items:
            _report_to_the_controller(f"appeared\t{kind}\t{item}\t{request.node.nodeid}")
    if not leaked:
        return
    for pid in leaked.get("processes", ()):  # clean up so later tests start from a clean machine
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for parent_dir in leaked.get("cgroups", ()):
        for path in sorted(glob.glob(f"{parent_dir}/*/"), reverse=True) + [parent_dir]:
            for proc in open(f"{path}/cgroup.procs").read().split():
                try:
                    os.kill(int(proc), 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
            try:
                os.rmdir(path)
            except OSError:
                pass
    pytest.fail(f"leaked: {leaked}")


# -- order ------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """The VM tier first: in a parallel run its worker boots QEMU at once, the others take the rest.

    (xdist hands out the tests in this order; the VM test is the longest, so started last it would
    be the run's tail.  The sort is stable: everything else keeps its order.)
    """
    items.sort(key=lambda item: item.get_closest_marker("cgroup2_vm") is None)


# -- lines shown at the end ------------------------------------------------------------------
#
# A test's own prints are lost when it passes on an xdist worker; a test that has a line for the
# log even then (the VM tier: its guest's summary) records it as the property "shown_at_the_end".

_SHOWN_AT_THE_END: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":  # (in a parallel run, the controller sees the workers' reports here)
        _SHOWN_AT_THE_END.extend(value for name, value in report.user_properties if name == "shown_at_the_end")


def pytest_terminal_summary(terminalreporter):
    for line in _SHOWN_AT_THE_END:
        terminalreporter.write_line(line)


# -- suite-level leak check ----------------------------------------------------------------
#
# The per-test check above looks where each test's own objects live.  This one looks at the
# whole host once the session is over: a mount, cgroup, network namespace, link or process
# that minidocker made during the run and that is still there fails the run, whichever test
# (or fixture, or crash) left it.  In a parallel run it is the controller's, after every
# worker is done: the workers' temporary directories lie inside the controller's, and the
# workers have told it their cgroup parents (PARALLEL_RUN_DIR).


def _reports_of_the_workers(config) -> list[list[str]]:
    """The lines the workers of this parallel run left for the controller, split at tabs."""
    directory = getattr(config, "_minidocker_parallel_dir", None)
    lines = []
    for path in glob.glob(os.path.join(directory, "worker-*.log")) if directory else ():
        with open(path) as f:
            lines += [line.rstrip("\n").split("\t") for line in f]
    return lines


def _session_objects(config) -> dict[str, set]:
    """What minidocker made for this session: found by this session's temporary directory."""
    basetemp = config._minidocker_basetemp
    with open("/proc/self/mountinfo") as f:
        mounts = {line.split()[4] for line in f if basetemp in line}
    cgroups = set()  # (other sessions on the machine have parents of their own: not looked at)
    workers_parents = {fields[1] for fields in _reports_of_the_workers(config) if fields[0] == "cgroup-parent"}
    default_parent = os.environ.get("MINIDOCKER_CGROUP_PARENT", "minidocker")  # what the CLI uses unless told
    for name in {default_parent} | _CGROUP_PARENTS_USED | workers_parents:
        for parent in glob.glob(f"/sys/fs/cgroup/*/{name}") + glob.glob(f"/sys/fs/cgroup/{name}"):
            cgroups |= {parent} | {d.rstrip("/") for d in glob.glob(f"{parent}/*/")}
    processes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"MINIDOCKER_ROOT=" + basetemp.encode()) for v in environ) and int(pid) != os.getpid():
            processes.add(int(pid))
    found = {"mounts": mounts, "cgroups": cgroups, "processes": processes}
    if not config._minidocker_shares_the_host:  # else the controller of the run we are part of looks
        everything = _kernel_objects()
        found |= {kind: everything[kind] for kind in HOST_WIDE_KINDS}
    return found


def pytest_configure(config):
    # A pytest started by a test of a parallel run (tests/test_leak_check.py starts some) shares the
    # host with that run's other tests: the host-wide lists are not its own to check.
    config._minidocker_shares_the_host = bool(os.environ.get(PARALLEL_RUN_DIR))
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # The controller of a parallel run: its workers (started after this) inherit the variable.
        config._minidocker_parallel_dir = tempfile.mkdtemp(prefix="minidocker-parallel-")
        os.environ[PARALLEL_RUN_DIR] = config._minidocker_parallel_dir


def pytest_sessionstart(session):
    session.config._minidocker_basetemp = str(session.config._tmp_path_factory.getbasetemp())
    session.config._minidocker_before = _session_objects(session.config)


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_minidocker_before", None)
    if before is None or hasattr(session.config, "workerinput"):
        return
    try:
        leaked = _leaks_of_the_session(session.config, before)
    finally:
        if getattr(session.config, "_minidocker_parallel_dir", None):
            shutil.rmtree(session.config._minidocker_parallel_dir, ignore_errors=True)
    if leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _leaks_of_the_session(config, before: dict[str, set]) -> dict[str, list]:
    """Report and clean up what the session left on the host (nothing: {})."""
    leaked = {}
    for attempt in range(40):  # a container killed by the last test's clean-up may take a moment to go
        after = _session_objects(config)
        leaked = {kind: sorted(after[kind] - before[kind]) for kind in after}
        leaked = {kind: items for kind, items in leaked.items() if items}
        if not leaked:
            return {}
        time.sleep(0.05)
    during = {}  # (kind, item) -> the tests during which a worker saw it appear
    for fields in _reports_of_the_workers(config):
        if fields[0] == "appeared":
            during.setdefault((fields[1], fields[2]), []).append(fields[3])

    def described(kind: str, item) -> str:
        tests = during.get((kind, str(item)))
        return f"{item} (appeared during {', '.join(tests)})" if tests else str(item)

    report = "; ".join(f"{kind}: {', '.join(described(kind, item) for item in items)}"
                       for kind, items in leaked.items())
    config.get_terminal_writer().line(f"\nminidocker leaked on the host after the run: {report}", red=True)
    for pid in leaked.get("processes", ()):  # then clean up, so the machine is usable again
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for path in sorted(leaked.get("cgroups", ()), key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
    return leaked
