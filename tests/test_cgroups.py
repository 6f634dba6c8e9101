"""cgroups on the real kernel: limits land in the kernel's files and the kernel enforces them.

Needs root.  Each test makes its own cgroup under <hierarchy>/minidocker/<id>
and checks that none of its directories survive.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from minidocker import cgroups
from minidocker.errors import MinidockerError

MiB = 1 << 20

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

# This Debian machine's layout, as /proc/self/mountinfo shows it: every v1
# controller on its own mount (cpu and cpuacct separate), a named systemd
# hierarchy, and cgroup2 at unified/ holding only hugetlb.
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / {unified} rw,relatime - cgroup2 cgroup2 rw
"""

# An older Docker host: pure v1, cpu and cpuacct mounted together.
PURE_V1 = """\
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
"""

# A modern systemd host: only cgroup2.
PURE_V2 = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 24 0:30 / {unified} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def fake_cgroup2_root(tmp_path, controllers: str) -> str:
    """A directory standing in for a cgroup2 mountpoint: detect() reads only its cgroup.controllers."""
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    return str(tmp_path)


def new_id() -> str:
    return uuid.uuid4().hex * 2  # 64 hex digits, like a Docker container id


@pytest.fixture
def make_cgroup():
    """create() for a test; afterwards destroy everything and prove nothing is left."""
    made = []

    def make(limits=cgroups.Limits()):
        cgroup = cgroups.create(new_id(), limits)
        made.append(cgroup)
        return cgroup

    yield make
    for cgroup in made:
        cgroup.kill_all()
        cgroup.destroy()
        assert not [p for p in cgroup.paths if os.path.exists(p)]


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


# -- detection ---------------------------------------------------------------------------


def test_detect_pure_v1_finds_combined_cpu_cpuacct_mount():
    layout = cgroups.detect(PURE_V1)
    assert layout.version == "v1"
    assert layout.hierarchy("memory") == ("v1", "/sys/fs/cgroup/memory")
    assert layout.hierarchy("pids") == ("v1", "/sys/fs/cgroup/pids")
    assert layout.hierarchy("cpu") == layout.hierarchy("cpuacct") == ("v1", "/sys/fs/cgroup/cpu,cpuacct")
    for not_a_controller in ("xattr", "systemd", "name=systemd", "rw", "hugetlb"):
        assert layout.hierarchy(not_a_controller) is None


def test_detect_pure_v2_reads_controllers_from_the_mount(tmp_path):
    root = fake_cgroup2_root(tmp_path, "cpuset cpu io memory hugetlb pids rdma misc")
    layout = cgroups.detect(PURE_V2.format(unified=root))
    assert layout.version == "v2"
    for controller in ("memory", "cpu", "pids"):
        assert layout.hierarchy(controller) == ("v2", root)
    assert layout.hierarchy("cpuacct") is None  # v2 has no cpuacct: cpu.stat is everywhere


def test_detect_hybrid_takes_each_controller_from_the_hierarchy_holding_it(tmp_path):
    root = fake_cgroup2_root(tmp_path, "hugetlb")
    layout = cgroups.detect(HYBRID.format(unified=root))
    assert layout.version == "hybrid"
    assert layout.hierarchy("memory") == ("v1", "/sys/fs/cgroup/memory")
    assert layout.hierarchy("cpu") == ("v1", "/sys/fs/cgroup/cpu")
    assert layout.hierarchy("cpuacct") == ("v1", "/sys/fs/cgroup/cpuacct")
    assert layout.hierarchy("pids") == ("v1", "/sys/fs/cgroup/pids")
    assert layout.hierarchy("hugetlb") == ("v2", root)


def test_detect_unescapes_spaces_in_mountpoints(tmp_path):
    (tmp_path / "my cgroup").mkdir()
    root = fake_cgroup2_root(tmp_path / "my cgroup", "memory")
    layout = cgroups.detect(PURE_V2.format(unified=root.replace(" ", "\\040")))
    assert layout.hierarchy("memory") == ("v2", root)


def test_detect_on_this_host_agrees_with_proc_self_cgroup():
    # /proc/self/cgroup is a second opinion: v1 lines read "4:memory:/...",
    # the v2 line reads "0::/...".
    v1_controllers = set()
    for line in read("/proc/self/cgroup").splitlines():
        hierarchy_id, names, _ = line.split(":", 2)
        if hierarchy_id != "0":
            v1_controllers.update(names.split(","))
    layout = cgroups.detect()
    for controller in ("memory", "cpu", "pids"):
        expected = "v1" if controller in v1_controllers else "v2"
        assert layout.hierarchy(controller)[0] == expected
    if os.path.isdir("/sys/fs/cgroup/memory") and os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        assert layout.version == "hybrid"  # the Debian machine this was written on
        assert layout.hierarchy("memory") == ("v1", "/sys/fs/cgroup/memory")


# -- limits --------------------------------------------------------------------------------


def test_create_writes_every_limit_into_the_kernel(make_cgroup):
    cgroup = make_cgroup(cgroups.Limits(memory=32 * MiB, cpus=0.5, cpu_shares=512, pids=10))
    assert all(os.path.isdir(p) for p in cgroup.paths)
    version, memory_dir = cgroup.dirs["memory"]
    _, cpu_dir = cgroup.dirs["cpu"]
    _, pids_dir = cgroup.dirs["pids"]
    if version == "v1":
        assert read(f"{memory_dir}/memory.limit_in_bytes") == str(32 * MiB)
        if os.path.exists(f"{memory_dir}/memory.memsw.limit_in_bytes"):
            assert read(f"{memory_dir}/memory.memsw.limit_in_bytes") == str(32 * MiB)
        assert read(f"{cpu_dir}/cpu.cfs_period_us") == "100000"
        assert read(f"{cpu_dir}/cpu.cfs_quota_us") == "50000"
        assert read(f"{cpu_dir}/cpu.shares") == "512"
    else:
        assert read(f"{memory_dir}/memory.max") == str(32 * MiB)
        assert read(f"{cpu_dir}/cpu.max") == "50000 100000"
        assert read(f"{cpu_dir}/cpu.weight") == "20"  # 1 + (510 * 9999) // 262142
    assert read(f"{pids_dir}/pids.max") == "10"
    cgroup.destroy()
    assert not [p for p in cgroup.paths if os.path.exists(p)]


def test_missing_controller_is_a_clear_error_and_creates_nothing(tmp_path):
    memory_mount, cpu_mount = tmp_path / "memory", tmp_path / "cpu"
    memory_mount.mkdir(), cpu_mount.mkdir()
    no_pids = (f"1 0 0:1 / {memory_mount} rw - cgroup cgroup rw,memory\n"
               f"2 0 0:2 / {cpu_mount} rw - cgroup cgroup rw,cpu,cpuacct\n")
    layout = cgroups.detect(no_pids)
    with pytest.raises(MinidockerError) as error:
        cgroups.create(new_id(), cgroups.Limits(memory=32 * MiB, pids=5), layout)
    assert str(error.value) == "cgroup controller 'pids' is not available on this host (needed for --pids-limit)"
    assert os.listdir(memory_mount) == [] and os.listdir(cpu_mount) == []


def test_v2_shares_conversion_matches_runc():
    assert cgroups.v2.shares_to_weight(2) == 1
    assert cgroups.v2.shares_to_weight(1024) == 39
    assert cgroups.v2.shares_to_weight(262144) == 10000
    assert cgroups.v2.shares_to_weight(1) == 1  # clamped like v1's kernel, never 0


# -- processes ---------------------------------------------------------------------------


def test_join_moves_a_process_in_and_kill_all_kills_it(make_cgroup):
    cgroup = make_cgroup()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        cgroup.join(sleeper.pid)
        assert cgroup.pids() == [sleeper.pid]
        membership = read(f"/proc/{sleeper.pid}/cgroup")
        expected = f"/{cgroups.PARENT}/{cgroup.container_id}"
        ours = ("memory", "pids", "cpu", "cpuacct") + (("",) if cgroup.v2_path else ())  # "": the 0:: line
        assert all(line.endswith(expected) for line in membership.splitlines() if line.split(":")[1] in ours)
        cgroup.kill_all()
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
    cgroup.destroy()
    assert not [p for p in cgroup.paths if os.path.exists(p)]


def test_usage_counts_what_the_processes_inside_consume(make_cgroup):
    cgroup = make_cgroup()
    assert cgroup.cpu_usage_ns() == 0 and cgroup.memory_usage() == 0
    # Join before exec: v1 charges pages to the cgroup that was current when
    # they were touched, and does not move old charges along with a process.
    child = subprocess.Popen([sys.executable, "-c", "b = b'x' * (16 << 20); print(flush=True); input()"],
                             preexec_fn=cgroup.join, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # it holds 16 MiB now
        assert cgroup.memory_usage() >= 16 * MiB
        assert cgroup.cpu_usage_ns() > 1_000_000  # starting Python takes well over 1 ms
    finally:
        child.kill()
        child.wait()


def test_kill_all_with_sigterm_lets_the_process_handle_it(make_cgroup):
    cgroup = make_cgroup()
    child = subprocess.Popen(["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"],
                             preexec_fn=cgroup.join)  # join(0): the child moves itself in before exec
    try:
        deadline = time.monotonic() + 5
        while len(cgroup.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until the shell has set its trap (then it forks a sleep)
        cgroup.kill_all(signal.SIGTERM)
        assert child.wait(timeout=5) == 7
    finally:
        child.kill()
        child.wait()


def test_memory_hog_is_oom_killed_and_the_cgroup_says_so(make_cgroup):
    hog = make_cgroup(cgroups.Limits(memory=32 * MiB))
    fresh = make_cgroup(cgroups.Limits(memory=32 * MiB))
    grab = "b = []\nwhile True: b.append(b'x' * (1 << 20))"  # touch every page: it gets charged
    result = subprocess.run([sys.executable, "-c", grab], preexec_fn=hog.join,
                            stderr=subprocess.DEVNULL, timeout=30)
    assert result.returncode == -signal.SIGKILL
    assert hog.oom_killed() is True
    assert fresh.oom_killed() is False
    hog.destroy()
    assert not [p for p in hog.paths if os.path.exists(p)]


def test_pids_limit_makes_fork_fail(make_cgroup):
    cgroup = make_cgroup(cgroups.Limits(pids=5))
    # Python rather than a shell: bash retries a failed fork for seconds.
    forker = """
import os, time
made = failed = 0
for _ in range(20):
    try:
        if os.fork() == 0:
            os.closerange(1, 3)  # let the test see EOF on our output while we linger
            time.sleep(30)
            os._exit(0)
        made += 1
    except BlockingIOError:  # EAGAIN: pids.max reached
        failed += 1
print(made, failed, flush=True)
"""
    result = subprocess.run([sys.executable, "-c", forker], preexec_fn=cgroup.join,
                            capture_output=True, text=True, timeout=30)
    made, failed = map(int, result.stdout.split())
    assert (made, failed) == (4, 16)  # 4 sleepers + the forker itself = 5
    assert len(cgroup.pids()) == 4  # the forker has exited; its children linger
    cgroup.kill_all()
    cgroup.destroy()
    assert not [p for p in cgroup.paths if os.path.exists(p)]


# -- lifecycle ---------------------------------------------------------------------------


def test_find_returns_the_same_cgroup_and_destroy_is_idempotent(make_cgroup):
    cgroup = make_cgroup(cgroups.Limits(pids=3))
    found = cgroups.find(cgroup.container_id)
    assert found.paths == cgroup.paths
    found.destroy()
    assert not [p for p in cgroup.paths if os.path.exists(p)]
    found.destroy()  # already gone: no error
    assert cgroups.find(new_id()).pids() == []


def test_many_containers_created_and_destroyed_concurrently():
    errors = []

    def churn():
        try:
            for _ in range(5):
                cgroup = cgroups.create(new_id(), cgroups.Limits(memory=64 * MiB, pids=10))
                cgroup.destroy()
                assert not [p for p in cgroup.paths if os.path.exists(p)]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- the freezer (docker pause) ---------------------------------------------------------------


def freezer_file_says_frozen(cgroup) -> bool:
    """Ask the kernel's own file: freezer.state on v1, cgroup.events on v2."""
    version, path = cgroup._freezer()
    if version == "v1":
        return read(f"{path}/freezer.state") == "FROZEN"
    return "frozen 1" in read(f"{path}/cgroup.events").splitlines()


def count(path) -> int:
    return len(path.read_text())


def test_freeze_stops_a_process_and_thaw_lets_it_go_on(make_cgroup, tmp_path):
    cgroup = make_cgroup()
    counter = tmp_path / "counter"
    counter.touch()
    writer = subprocess.Popen(["sh", "-c", f"while :; do echo -n x >> {counter}; sleep 0.01; done"],
                              preexec_fn=cgroup.join)
    try:
        deadline = time.monotonic() + 5
        while count(counter) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        cgroup.freeze()
        assert freezer_file_says_frozen(cgroup) and cgroup.freezer_state() == "frozen"
        frozen_at = count(counter)
        time.sleep(0.3)
        assert count(counter) == frozen_at  # not one more write while frozen
        cgroup.thaw()
        assert not freezer_file_says_frozen(cgroup) and cgroup.freezer_state() == "thawed"
        deadline = time.monotonic() + 5
        while count(counter) == frozen_at and time.monotonic() < deadline:
            time.sleep(0.01)
        assert count(counter) > frozen_at
    finally:
        writer.kill()
        writer.wait()


def test_kill_all_of_a_frozen_cgroup_kills_and_thaws_it(make_cgroup):
    cgroup = make_cgroup()
    sleeper = subprocess.Popen(["sleep", "30"], preexec_fn=cgroup.join)
    try:
        cgroup.freeze()
        cgroup.kill_all(signal.SIGTERM)  # not SIGKILL: it is only acted on once thawed
        assert sleeper.wait(timeout=5) == -signal.SIGTERM
        assert cgroup.freezer_state() == "thawed"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_thaw_after_the_process_exited_and_destroy_of_a_frozen_empty_cgroup(make_cgroup):
    cgroup = make_cgroup()
    subprocess.run(["true"], preexec_fn=cgroup.join, check=True)
    cgroup.freeze()  # an empty cgroup freezes at once
    assert freezer_file_says_frozen(cgroup)
    cgroup.thaw()
    assert cgroup.freezer_state() == "thawed"
    cgroup.freeze()
    cgroup.destroy()  # frozen and empty: it goes all the same
    assert not [p for p in cgroup.paths if os.path.exists(p)]
    assert cgroup.freezer_state() is None
    with pytest.raises(MinidockerError):
        cgroup.thaw()  # one clear error, not a traceback


def test_a_container_moves_in_thread_wise_on_v1_and_from_outside_on_v2(md):
    # Writing a PID to cgroup.procs moves a whole process and takes a machine-wide lock (its first
    # taker waits ~10 ms for RCU).  On v1 the container's first process, one thread fresh from fork,
    # moves itself by writing 0 to `tasks` instead; v2 only moves whole processes: minidocker does it.
    result = md("--explain", "run", "--rm", "busybox", "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    cid = result.stderr.splitlines()[1].removeprefix("ID=")
    trace = [line.replace("$ID", cid) for line in result.stderr.splitlines()]
    layout = cgroups.detect()
    for controller in ("memory", "pids", "cpu"):
        version, mount = layout.hierarchy(controller)
        directory = f"{mount}/{md.cgroup_parent}/{cid}"
        if version == "v1":
            assert any(line.startswith(f"echo 0 > {directory}/tasks ") and "[container]" in line for line in trace)
            assert not any(f" > {directory}/cgroup.procs " in line for line in trace)  # not also the slow way
        else:
            assert any(line.startswith("echo ") and f" > {directory}/cgroup.procs " in line
                       and "[minidocker]" in line for line in trace)
    # The command really ran inside: every hierarchy holding one of these controllers says so.
    membership = dict(line.split(":", 2)[1:] for line in result.stdout.splitlines())
    seen = set()
    for names, path in membership.items():
        if set(names.split(",")) & {"memory", "pids", "cpu"}:
            assert path == f"/{md.cgroup_parent}/{cid}", (names, path)
            seen.update(names.split(","))
    if layout.version != "v2":  # each v1 controller has its own line; none may be missing
        assert {"memory", "pids", "cpu"} <= seen, result.stdout
    if layout.version == "hybrid":  # its unified tree holds none of our controllers: the container stays out
        assert membership[""] != f"/{md.cgroup_parent}/{cid}"
        assert not any(line.startswith(f"mkdir -p {layout.v2_mount}/") for line in trace)
    elif layout.version == "v2":
        assert membership[""] == f"/{md.cgroup_parent}/{cid}"
