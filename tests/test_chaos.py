"""Crash safety: minidocker SIGKILLed at random (and at the known dangerous points) leaves nothing behind.

SIGKILL cannot be caught: whatever minidocker was doing stops mid-step.  After
that the *next* command must cope -- every container listed can be inspected
and removed, and `minidocker system prune` leaves no mount, cgroup, process,
held lock or half-deleted directory.  The random test is seeded
(MINIDOCKER_CHAOS_SEED=N to replay a run; the seed is in the failure message);
the deterministic ones stop minidocker at one exact system call with strace's
fault injection (``-e inject=SYSCALL:signal=KILL:when=N``), on the real kernel.
"""

import fcntl
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import MINIDOCKER
from minidocker import supervisor

ROUNDS = 40
SEED = int(os.environ.get("MINIDOCKER_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
NAMES = ["c0", "c1", "c2"]


def minidocker_processes(root: str) -> list[int]:
    """Every process of minidocker's for this root: CLIs, supervisors, containers not yet exec'd."""
    marker = f"MINIDOCKER_ROOT={root}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def assert_store_consistent(md, context: str) -> list[str]:
    """Every container `ps -a` lists can be inspected; returns their IDs."""
    listed = md("ps", "-aq", "--no-trunc")
    assert listed.returncode == 0, f"{context}: ps -a failed: {listed.stderr}"
    ids = listed.stdout.split()
    for cid in ids:
        inspected = md("inspect", cid)
        assert inspected.returncode == 0 or "No such container" in inspected.stderr, \
            f"{context}: cannot inspect {cid}: {inspected.stderr}"
        if inspected.returncode == 0:
            json.loads(inspected.stdout)
    return ids


def assert_nothing_left(md, context: str) -> None:
    """After rm/prune: no container, directory, process, cgroup, mount or held lock of this root."""
    containers = os.path.join(md.root, "containers")
    assert os.listdir(containers) == [], f"{context}: left in the store: {os.listdir(containers)}"
    deadline = time.monotonic() + 5
    while minidocker_processes(md.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert minidocker_processes(md.root) == [], f"{context}: processes left"
    cgroups = [d for d in glob.glob(f"/sys/fs/cgroup/*/{md.cgroup_parent}/*") + glob.glob(
        f"/sys/fs/cgroup/{md.cgroup_parent}/*") if os.path.isdir(d)]
    assert cgroups == [], f"{context}: cgroups left: {cgroups}"
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if md.root in line.split()[4]]
    assert mounts == [], f"{context}: mounts left: {mounts}"
    fd = os.open(os.path.join(md.root, "lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a (dead?) holder still has it
    except BlockingIOError:
        pytest.fail(f"{context}: the store's lock is still held")
    finally:
        os.close(fd)


def chaos_command(rng: random.Random) -> list[str]:
    name = rng.choice(NAMES)
    return rng.choice([
        ["run", "-d", "--name", name, "busybox", "sleep", "60"],
        ["run", "--name", name, "busybox", "sleep", "0.3"],
        ["run", "--rm", "busybox", "true"],
        ["create", "--name", name, "busybox", "sleep", "60"],
        ["start", name],
        ["stop", "-t", "1", name],
        ["kill", name],
        ["rm", name],
        ["rm", "-f", name],
    ])


def test_chaos_random_sigkills_leave_a_consistent_store_and_no_leaks(md):
    rng = random.Random(SEED)
    context = f"MINIDOCKER_CHAOS_SEED={SEED}"
    for round_number in range(ROUNDS):
        argv = chaos_command(rng)
        victim = rng.choice(["cli", "cli", "everything", "nothing"])  # everything: supervisors too
        delay = rng.uniform(0, 0.25)
        where = f"{context}, round {round_number}: minidocker {' '.join(argv)}, killing {victim} after {delay:.3f}s"
        process = subprocess.Popen([MINIDOCKER, *argv], env=md.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        if victim == "cli":
            kill_all([process.pid])
        elif victim == "everything":
            kill_all([process.pid] + minidocker_processes(md.root))
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{where}: the command hung")
        assert "Traceback" not in stderr, f"{where}: {stderr}"
        assert_store_consistent(md, where)
    ids = assert_store_consistent(md, f"{context}, at the end")
    if ids:
        removed = md("rm", "-f", *ids)
        assert removed.returncode == 0, f"{context}: rm -f failed: {removed.stderr}"
    pruned = md("system", "prune", "-f")
    assert pruned.returncode == 0, f"{context}: prune failed: {pruned.stderr}"
    assert_nothing_left(md, context)


# -- the known dangerous points, one system call each ----------------------------------------


def killed_at(md, syscalls: str, when: int, *argv: str, follow_forks: bool = False) -> subprocess.Popen:
    """Run minidocker under strace, SIGKILLed on entering its `when`-th call of `syscalls`."""
    strace = ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscalls}",
              "-e", f"inject={syscalls}:signal=KILL:when={when}"] + (["-f"] if follow_forks else [])
    env = {**md.env, "PYTHONDONTWRITEBYTECODE": "1"}  # no .pyc written (by rename) to shift the count
    return subprocess.Popen(strace + [MINIDOCKER, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_create_killed_before_its_record_exists(md):
    """Killed at the rename(2) that commits config.json: a directory without a record."""
    crashed = killed_at(md, "rename,renameat,renameat2", 1, "create", "--name", "half", "busybox", "true")
    crashed.communicate(timeout=60)
    debris = os.listdir(os.path.join(md.root, "containers"))
    assert len(debris) == 1 and not os.path.exists(os.path.join(md.root, "containers", debris[0], "config.json"))
    assert md.out("ps", "-aq") == ""  # not a container: nobody lists it ...
    md.out("create", "--name", "half", "busybox", "true")  # ... and its name was never taken
    assert debris[0] in md.out("system", "prune")
    assert_nothing_left(md, "after prune")


def test_rm_killed_halfway_through_deleting(md):
    """Killed at its first unlink(2): the directory was already renamed out of sight; prune finishes it."""
    cid = md.out("create", "--name", "doomed", "busybox", "true")
    crashed = killed_at(md, "unlink,unlinkat", 1, "rm", "doomed")
    crashed.communicate(timeout=60)
    left = os.listdir(os.path.join(md.root, "containers"))
    assert [d for d in left if d.startswith(f".removing-{cid}")] == left and left  # renamed, not yet deleted
    assert md.out("ps", "-aq") == ""
    assert md("inspect", "doomed").returncode == 125
    md.out("create", "--name", "doomed", "busybox", "true")  # the name is free again
    md.out("system", "prune")
    assert_nothing_left(md, "after prune")


def test_supervisor_killed_between_exec_and_recording_running(md):
    """The supervisor dies after the container's command started, before its record says so."""
    md.out("create", "--name", "limbo", "busybox", "sleep", "60")
    # The supervisor's renames: 1. its claim on the record, 2. "running".  Killed entering the second.
    crashed = killed_at(md, "rename,renameat,renameat2", 2, "start", "limbo", follow_forks=True)
    group = md.cgroup("limbo")
    md.wait_for(lambda: group.pids(), what="the container's process")
    record = json.loads(md.out("inspect", "limbo"))[0]
    # The container runs before its supervisor reaches that rename: wait for the kill itself.
    md.wait_for(lambda: not supervisor.supervisor_alive(record), timeout=30, what="the supervisor to be killed")
    record = json.loads(md.out("inspect", "limbo"))[0]
    assert record["State"]["Status"] == "created"  # the record never learnt it was running
    md.out("rm", "limbo")  # not refused: its supervisor is gone; its process and cgroup go with it
    crashed.communicate(timeout=60)  # strace ends once the container's process has been killed
    assert group.pids() == []
    assert_nothing_left(md, "after rm")


def _reuse_pid(pid: int) -> subprocess.Popen:
    """Start a process that gets `pid`, as the kernel would reuse it: ns_last_pid says where to go on."""
    for _ in range(50):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        impostor = subprocess.Popen(["sleep", "60"])
        if impostor.pid == pid:
            return impostor
        impostor.kill()
        impostor.wait()
    pytest.skip(f"could not get PID {pid} again (a busy machine took it)")


def test_a_dead_supervisors_pid_reused_by_another_process_is_not_mistaken_for_it(md):
    md.out("run", "-d", "--name", "orphan", "busybox", "sleep", "60")
    record = json.loads(md.out("inspect", "orphan"))[0]
    supervisor_pid = record["State"]["SupervisorPid"]
    os.kill(supervisor_pid, signal.SIGKILL)
    md.wait_for(lambda: not os.path.exists(f"/proc/{supervisor_pid}"), what="the supervisor to be reaped")
    impostor = _reuse_pid(supervisor_pid)
    try:
        assert md("rm", "orphan").returncode == 0  # a live PID alone does not make it running
        assert impostor.poll() is None  # and the impostor was left alone
        assert_nothing_left(md, "after rm")
    finally:
        impostor.kill()
        impostor.wait()


def test_attached_run_killed_leaves_a_container_the_next_command_cleans(md):
    process = subprocess.Popen([MINIDOCKER, "run", "--name", "att", "busybox", "sleep", "60"], env=md.env)
    md.wait_for(lambda: md("inspect", "-f", "{{.State.Running}}", "att").stdout.strip() == "true",
                what="the container to run")
    container_pid = md.pid("att")
    process.kill()  # the CLI was the supervisor
    process.wait()
    assert os.path.exists(f"/proc/{container_pid}")
    assert md.out("stop", "att") == "att"  # finds the supervisor gone, kills what is left
    assert md.inspect("att", "{{.State.Status}} {{.State.Running}}") == "exited false"
    md.wait_for(lambda: not os.path.exists(f"/proc/{container_pid}"), what="the container to die")
    md.out("rm", "att")
    assert_nothing_left(md, "after rm")


def test_a_damaged_record_costs_one_line_and_prune_removes_it(md):
    """minidocker's own writes are atomic; a record truncated by something else must not break the rest."""
    cid = md.out("create", "--name", "damaged", "busybox", "true")
    md.out("create", "--name", "healthy", "busybox", "true")
    path = os.path.join(md.root, "containers", cid, "config.json")
    with open(path, "r+") as f:
        f.truncate(os.path.getsize(path) // 2)
    inspected = md("inspect", cid)
    assert inspected.returncode == 125 and inspected.stderr.count("\n") == 1 and "not valid JSON" in inspected.stderr
    assert md.out("ps", "-aq") == md.inspect("healthy", "{{.Id}}")[:12]  # listed: only what can be inspected
    assert cid in md.out("system", "prune")
    assert md.out("ps", "-aq") == ""


def test_a_log_that_cannot_be_opened_fails_the_start_before_anything_runs(md):
    """The container's log is opened before the container starts: one line, exit 125, and no
    container runs that nobody records."""
    cid = md.out("create", "--name", "unlogged", "busybox", "sleep", "30")
    log = os.path.join(md.root, "containers", cid, "container.log")
    os.unlink(log)
    os.mkdir(log)  # open(…, "ab") now fails with EISDIR
    started = md("start", "-a", "unlogged")
    assert started.returncode == 125, started.stderr
    assert started.stderr.count("\n") == 1 and "cannot open the container's log" in started.stderr
    assert md.inspect("unlogged", "{{.State.Running}} {{.State.SupervisorPid}}") == "false 0"
    os.rmdir(log)
    md.out("rm", "unlogged")
    assert_nothing_left(md, "after a failed start")


def test_a_supervisor_that_fails_after_the_start_stops_its_container(md):
    """If supervising fails once the container runs (here: the API's on_started callback raises),
    the container is killed and its cgroup removed -- never left running with nobody watching --
    and the record says it is not running.  In-process, through the Python API."""
    program = (
        "import sys\n"
        "from minidocker import api, supervisor, store\n"
        "s = store.Store()\n"
        "cid = api.create('busybox', ['sleep', '30'], store=s)\n"
        "def boom():\n"
        "    raise RuntimeError('on_started failed')\n"
        "try:\n"
        "    supervisor.supervise(s, cid, attach=True, on_started=boom)\n"
        "except RuntimeError:\n"
        "    print(cid)\n")
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", program],
                         cwd=repository, env=md.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip(), run.stderr
    cid = run.stdout.strip()
    assert md.inspect(cid, "{{.State.Running}} {{.State.Pid}} {{.State.SupervisorPid}}") == "false 0 0"
    md.out("rm", cid)
    assert_nothing_left(md, "after a supervisor failed")  # no cgroup, no `sleep 30`


def _tar_of(name: str, size: int) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buffer.getvalue()


def _import_killed_halfway(md) -> str:
    """`import -` SIGKILLed while it spools its stdin: returns the work directory it leaves."""
    importer = subprocess.Popen([MINIDOCKER, "import", "-", "half:1"], env=md.env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        importer.stdin.write(_tar_of("big", 4 << 20)[: 2 << 20])  # half a tar: import waits for the rest
        importer.stdin.flush()
        pattern = os.path.join(md.root, "images", "layers", f".incoming-{importer.pid}-*")
        left = md.wait_for(lambda: glob.glob(pattern), what="the import's work directory")
    finally:
        importer.kill()
        importer.wait(10)
        importer.stdin.close()
    return left[0]


def test_an_import_killed_halfway_leaves_a_work_directory_the_next_import_or_image_prune_removes(md):
    left = _import_killed_halfway(md)
    assert os.path.isdir(left)
    md.out("image", "prune", "-f")
    assert not os.path.exists(left)
    left = _import_killed_halfway(md)
    md.out("import", "-", "small:1", input=_tar_of("small", 100))
    assert not os.path.exists(left)
    assert not glob.glob(os.path.join(md.root, "images", "layers", ".incoming-*"))
    alive = os.path.join(md.root, "images", "layers", f".incoming-{os.getpid()}-0000")  # this test's PID: alive
    os.mkdir(alive)
    md.out("image", "prune", "-f")
    assert os.path.isdir(alive)  # a registration still under way is left alone
    os.rmdir(alive)
