"""Chapter 1: the seed's eight aspects of isolation, checked on the real kernel."""

import os
import subprocess

import pytest

NAMESPACES = ("pid", "uts", "mnt", "ipc", "net")


def _namespaces(pid) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in NAMESPACES + ("user",)}


def test_every_namespace_is_new_by_default(md):
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "30")
    inside, host = _namespaces(md.pid("c")), _namespaces("self")
    for ns in NAMESPACES:
        assert inside[ns] != host[ns], f"{ns} namespace is shared with the host"
    assert inside["user"] == host["user"]  # user namespaces are opt-in, as in Docker


@pytest.mark.parametrize("flag, ns", [("--pid", "pid"), ("--uts", "uts"), ("--ipc", "ipc"), ("--network", "net")])
def test_each_namespace_can_be_the_hosts(md, flag, ns):
    md.out("run", "-d", flag, "host", "--name", "c", "busybox", "sleep", "30")
    inside, host = _namespaces(md.pid("c")), _namespaces("self")
    assert inside[ns] == host[ns]
    others = [n for n in NAMESPACES if n != ns]
    assert all(inside[n] != host[n] for n in others)


def test_pid_namespace_shows_only_the_containers_processes(md):
    out = md.out("run", "--rm", "busybox", "ps", "-o", "pid,comm")
    assert out.split("\n")[1:] == ["    1 ps"]
    host_view = md.out("run", "--rm", "--pid", "host", "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'")
    assert int(host_view) > 10


def test_uts_namespace_has_its_own_hostname(md):
    cid = md.out("create", "busybox", "hostname")
    md.out("start", cid)
    md.out("wait", cid)
    assert md.out("logs", cid) == cid[:12]
    assert md.out("run", "--rm", "--uts", "host", "busybox", "hostname") == os.uname().nodename


def test_network_none_has_only_loopback_and_it_is_up(md):
    out = md.out("run", "--rm", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    assert "UP" in out
    assert md.out("run", "--rm", "busybox", "ping", "-c1", "-W1", "127.0.0.1").count("1 packets received") == 1


def _link_names(ip_o_link: str) -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in ip_o_link.splitlines()}


def test_network_host_sees_the_hosts_interfaces(md):
    host_before = _link_names(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout)
    seen = _link_names(md.out("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    host_after = _link_names(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout)
    # Exactly the host's links -- give or take one that another test (pytest -n) made or removed meanwhile.
    assert host_before & host_after <= seen <= host_before | host_after
    assert len(host_before & host_after) > 1  # more than a new namespace's lone loopback


def test_ipc_namespace_isolates_shared_memory(md):
    md.out("run", "-d", "--name", "c", "busybox", "sh", "-c", "echo secret > /dev/shm/seg; sleep 30")
    md.wait_for(lambda: md("exec", "c", "cat", "/dev/shm/seg").stdout == "secret\n", what="the shm file")
    other = md("run", "--rm", "busybox", "cat", "/dev/shm/seg")
    assert other.returncode != 0  # another container has its own /dev/shm


def test_user_namespace_maps_container_root_to_an_unprivileged_host_uid(md):
    # CAP_SYS_ADMIN, granted inside the user namespace only: it rules the namespaces that one owns, no more
    # (and with it the seccomp profile lets sethostname through)
    md.out("run", "-d", "--userns", "remap", "--cap-add", "SYS_ADMIN", "--name", "c", "busybox", "sh", "-c",
           "echo written-by-root > /root/f; sleep 30")
    pid = md.pid("c")
    status = open(f"/proc/{pid}/status").read()
    assert "Uid:\t100000\t100000\t100000\t100000" in status  # on the host it is nobody special
    assert md.out("exec", "c", "id", "-u") == "0"  # inside it is root
    assert md.out("exec", "c", "cat", "/proc/self/uid_map").split() == ["0", "100000", "65536"]
    assert md.out("exec", "c", "cat", "/root/f") == "written-by-root"
    # container root cannot do what host root can: e.g. load a kernel module or set the host's clock
    assert md("exec", "c", "sh", "-c", "hostname other && hostname").stdout.strip() == "other"  # own UTS ns: fine
    refused = md("exec", "c", "sh", "-c", "echo 1 > /proc/sys/kernel/panic_on_oops")
    assert refused.returncode != 0


def test_writes_land_in_the_containers_own_layer(md):
    md.out("run", "--name", "c", "busybox", "sh", "-c", "echo new > /etc/motd; rm /bin/vi")
    data = md.inspect("c", "{{json .GraphDriver.Data}}")
    import json

    dirs = json.loads(data)
    assert open(os.path.join(dirs["UpperDir"], "etc/motd")).read() == "new\n"
    lower = dirs["LowerDir"]
    assert not os.path.exists(os.path.join(lower, "etc/motd"))  # the image layer is untouched
    assert os.path.lexists(os.path.join(lower, "bin/vi"))
    whiteout = os.lstat(os.path.join(dirs["UpperDir"], "bin/vi"))  # deletion = a 0/0 character device
    assert os.major(whiteout.st_rdev) == 0 and os.minor(whiteout.st_rdev) == 0


def test_pivot_root_leaves_no_trace_of_the_host_tree(md):
    mounts = md.out("run", "--rm", "busybox", "cat", "/proc/self/mountinfo").splitlines()
    targets = [line.split()[4] for line in mounts]
    assert not any(md.root in t for t in targets)  # no mount point of the host's tree is left
    root_mount = next(line for line in mounts if line.split()[4] == "/")
    assert " - overlay overlay " in root_mount  # "/" is the container's overlay
    assert "/proc" in targets and "/dev" in targets
    # (under --chroot the host's tree is still mounted, just out of sight: test_breakout.py climbs out to it)


def test_dev_holds_only_safe_devices_and_sys_is_read_only(md):
    out = md.out("run", "--rm", "busybox", "sh", "-c", "ls /dev; echo x > /dev/null && echo null-ok; "
                 "(touch /sys/x) 2>/dev/null || echo sys-ro; (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null || "
                 "echo proc-sys-ro; wc -c < /proc/keys")
    lines = out.split("\n")
    assert set(lines[:lines.index("null-ok")]) == {"core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random",
                                                   "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
    assert lines[-3:] == ["sys-ro", "proc-sys-ro", "0"]  # /proc/keys is masked by /dev/null


def test_etc_files_are_written_per_container(md):
    out = md.out("run", "--rm", "--hostname", "web1", "busybox", "sh", "-c",
                 "cat /etc/hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo resolv")
    assert out.split("\n") == ["web1", "2", "resolv"]
