"""cgroup v2's own rules, on a pure v2 kernel (natively, or in the VM of test_cgroup2_vm.py).

tests/test_cgroups.py and test_limits.py run on any cgroup layout.  The tests
here are about what only the unified hierarchy has: controllers that reach a
cgroup only when its parent hands them down (``cgroup.subtree_control``), the
"no internal processes" rule, and a limit that binds a whole subtree.  On this
project's v1-hybrid machine they are skipped, and tests/test_cgroup2_vm.py runs
them in a pure-v2 VM instead -- where the first test makes sure that it really
is v2 in there.

Needs root.
"""

import errno
import os
import signal
import subprocess
import sys
import uuid

import pytest

from minidocker import cgroups

MiB = 1 << 20

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
PURE_V2 = cgroups.detect().version == "v2"
needs_v2 = pytest.mark.skipif(not PURE_V2, reason="needs a pure cgroup v2 host; on this one "
                              "tests/test_cgroup2_vm.py runs these in a VM")


def filesystem_type(path: str) -> str:
    """What statfs(2) says `path` is: "cgroup2fs", "tmpfs", ... (via coreutils' stat -f)."""
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def version_as_systemd_sees_it() -> str:
    """systemd's own test, independent of detect()'s reading of mountinfo: which
    filesystem is mounted on /sys/fs/cgroup (and on /sys/fs/cgroup/unified)?"""
    if filesystem_type("/sys/fs/cgroup") == "cgroup2fs":
        return "v2"
    if os.path.isdir("/sys/fs/cgroup/unified") and filesystem_type("/sys/fs/cgroup/unified") == "cgroup2fs":
        return "hybrid"
    return "v1"


def test_detect_finds_the_cgroup_version_expected_here():
    # The VM tier sets MINIDOCKER_EXPECT_CGROUP=v2: a VM that was not pure v2 would fail here.
    expected = os.environ.get("MINIDOCKER_EXPECT_CGROUP") or version_as_systemd_sees_it()
    assert cgroups.detect().version == expected


# -- the unified hierarchy's rules ------------------------------------------------------


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def make_cgroup():
    """cgroups.create() for a test; afterwards kill, destroy, and prove nothing is left."""
    made = []

    def make(limits=cgroups.Limits()):
        cgroup = cgroups.create(uuid.uuid4().hex * 2, limits)
        made.append(cgroup)
        return cgroup

    yield make
    for cgroup in made:
        cgroup.kill_all()
        cgroup.destroy()
        assert not [p for p in cgroup.paths if os.path.exists(p)]


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@needs_v2
def test_controllers_are_handed_down_from_the_root_to_the_container(make_cgroup):
    cgroup = make_cgroup(cgroups.Limits(memory=32 * MiB, cpus=0.5, pids=10))
    mount, parent = cgroup.layout.v2_mount, os.path.dirname(cgroup.v2_path)
    # One directory holds every controller's files: no per-controller hierarchies as in v1.
    assert cgroup.paths == [cgroup.v2_path]
    assert {version for version, _ in cgroup.dirs.values()} == {"v2"}
    # The root hands them to minidocker/, minidocker/ to the container.
    for directory in (mount, parent):
        assert {"memory", "cpu", "pids"} <= set(read(f"{directory}/cgroup.subtree_control").split())
    assert {"memory", "cpu", "pids"} <= set(read(f"{cgroup.v2_path}/cgroup.controllers").split())
    assert read(f"{cgroup.v2_path}/memory.max") == str(32 * MiB)


@needs_v2
def test_no_internal_processes_the_parent_holds_only_cgroups(make_cgroup, sleeper):
    # v2's rule: a cgroup (other than the root) that hands controllers down to
    # children may not hold processes itself.  The kernel enforces it both ways.
    first = make_cgroup(cgroups.Limits(memory=32 * MiB))
    parent = os.path.dirname(first.v2_path)
    first.join(sleeper.pid)  # a leaf may hold processes
    assert first.pids() == [sleeper.pid]
    assert read(f"{parent}/cgroup.procs") == ""
    # 1. no process may join the parent, since it hands controllers down ...
    with pytest.raises(OSError) as refused:
        write(f"{parent}/cgroup.procs", str(sleeper.pid))
    assert refused.value.errno == errno.EBUSY
    # 2. ... and a cgroup holding a process may not start handing controllers down.
    with pytest.raises(OSError) as refused:
        write(f"{first.v2_path}/cgroup.subtree_control", "+memory")
    assert refused.value.errno == errno.EBUSY
    # minidocker falls in neither trap: another container still gets its controllers.
    second = make_cgroup(cgroups.Limits(memory=16 * MiB, pids=5))
    assert read(f"{second.v2_path}/memory.max") == str(16 * MiB)
    assert read(f"{second.v2_path}/pids.max") == "5"


@needs_v2
def test_a_cgroup_delegated_below_the_container_stays_within_its_memory_limit(make_cgroup):
    container = make_cgroup(cgroups.Limits(memory=32 * MiB))
    # The container's cgroup holds no process yet, so it may hand memory down to a child.
    write(f"{container.v2_path}/cgroup.subtree_control", "+memory")
    child = f"{container.v2_path}/child"
    os.mkdir(child)
    try:
        assert read(f"{child}/memory.max") == "max"  # no limit of its own ...
        grab = "b = []\nwhile True: b.append(b'x' * (1 << 20))"
        result = subprocess.run([sys.executable, "-c", grab], stderr=subprocess.DEVNULL, timeout=60,
                                preexec_fn=lambda: write(f"{child}/cgroup.procs", "0"))
        assert result.returncode == -signal.SIGKILL  # ... but its parent's limit binds it
        assert cgroups.v2.oom_kills(child) == 1
        # memory.events counts the whole subtree: the container's cgroup saw the OOM kill too.
        assert container.oom_killed() is True
    finally:
        os.rmdir(child)  # the container's destroy() removes only its own directory
