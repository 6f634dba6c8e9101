"""The container's root seen from the host, through /proc/PID (chapter 1; graded by exercises/01_isolation).

/proc/PID/root is the process's root directory as the kernel keeps it: after
chroot(2) the host can still name it as a path in its own tree, after
pivot_root(2) and the old root's detachment it is a whole other tree ("/").
/proc/PID/mountinfo lists the mounts of the process's mount namespace.
"""

import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

# Every mount point a default container has; anything else came from the host.
CONTAINER_MOUNTS = ("/", "/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def mount_points(pid: int) -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line.split()[4] for line in f]


def test_the_containers_root_is_a_tree_of_its_own_seen_from_the_host(md):
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "60")
    pid = md.pid("c")
    assert os.readlink(f"/proc/{pid}/root") == "/", "the root is still a directory of the host's tree (chroot?)"
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    with open(f"/proc/{pid}/mountinfo") as f:
        root_mount = next(line for line in f if line.split()[4] == "/")
    assert " - overlay overlay " in root_mount  # "/" is the container's own overlay


def test_nothing_of_the_hosts_tree_stays_mounted_or_named(md):
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "60")
    points = mount_points(md.pid("c"))
    strangers = [p for p in points if not any(p == m or p.startswith(m + "/") for m in CONTAINER_MOUNTS)]
    assert strangers == [], "mounts of the host's tree are still there"
    assert "/" in points and not any(p.startswith("/.old_root") for p in points)
    assert ".old_root" not in md.out("exec", "c", "ls", "-a", "/").split(), "the put_old directory is left behind"
