"""Which devices a container may open (chapter 1): the devices cgroup, v1 files and the v2 eBPF program.

Container root keeps CAP_MKNOD (as in Docker), so it can make a node for any
device number; what stops it opening the host's disks is the allow-list of its
cgroup.  These tests make such nodes and try to open them, on the real kernel.
"""

import glob
import os
import stat
import subprocess
import sys
import tarfile
import uuid

import pytest

from minidocker import cgroups

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and cgroups need root")

# Nodes for the host's KVM (c 10:232) and first loop disk (b 7:0): made inside, then opened.
MKNOD_AND_OPEN = ("mknod /tmp/k c 10 232; mknod /tmp/l b 7 0 && echo MKNOD; "
                  "(exec 3</tmp/k) && echo KVM; (exec 4</tmp/l) && echo LOOP0; true")


def test_a_container_can_make_but_not_open_host_devices(md):
    run = md("run", "--rm", "busybox", "sh", "-c", MKNOD_AND_OPEN)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["MKNOD"]  # mknod is allowed (Docker's "c *:* m"), opening is not
    assert run.stderr.count("Operation not permitted") == 2, run.stderr  # EPERM, whatever the node's mode


def test_the_few_default_devices_and_a_pty_still_work(md):
    out = md.out("run", "--rm", "busybox", "sh", "-c",
                 "echo x > /dev/null && echo null; head -c 3 /dev/zero | wc -c; head -c 5 /dev/urandom | wc -c; "
                 "head -c 2 /dev/random | wc -c; (echo x > /dev/full) 2>&1 | grep -c 'No space'; "
                 "(exec 3<>/dev/ptmx) && echo ptmx; mknod /tmp/k c 10 232; (exec 3</tmp/k) 2>/dev/null || echo kvm-denied")
    assert out.split() == ["null", "3", "5", "2", "1", "ptmx", "kvm-denied"]  # the list lets these through only


def test_with_a_terminal_the_container_opens_its_pty(md):
    run = md("run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo hi > /dev/tty; mknod /tmp/t c 4 1; "
             "(exec 3</tmp/t) 2>/dev/null || echo tty1-denied")
    assert run.returncode == 0, run.stderr
    assert "/dev/pts/" in run.stdout and "hi" in run.stdout
    assert "tty1-denied" in run.stdout  # a pseudo-terminal, yes; the host's virtual console tty1 (4:1), no


def test_the_containers_cgroup_holds_the_rules_and_goes_with_it(md):
    """v1: devices.list reads back Docker's list.  v2: one device program is attached to the container's
    directory.  Either way `rm` removes the cgroup (the program goes with it)."""
    from minidocker import kernel
    from minidocker.cgroups import devices

    cid = md.out("run", "-d", "busybox", "sleep", "60")
    group = md.cgroup(cid)
    if "devices" in group.dirs:
        where = group.dirs["devices"][1]
        with open(f"{where}/devices.list") as f:
            listed = f.read().split("\n")
        assert sorted(filter(None, listed)) == sorted(str(rule) for rule in devices.DEFAULT_RULES)
    else:
        where = group.v2_path
        assert len(kernel.bpf_device_programs(where)) == 1
    md.out("rm", "-f", cid)
    assert not os.path.exists(where)


# A device that every kernel has, with a driver behind it and no capability check on open:
# the PM QoS knob (a misc device: its minor number is given out at boot, so it is looked up).
QOS = "/dev/cpu_dma_latency"


def _numbers(path: str) -> tuple[int, int]:
    rdev = os.stat(path).st_rdev
    return os.major(rdev), os.minor(rdev)


def test_device_flag_makes_the_node_and_allows_it(md):
    major, minor = _numbers(QOS)
    out = md.out("run", "--rm", "--device", QOS, "busybox", "sh", "-c",
                 f"ls -l {QOS}; (exec 3<{QOS}) && echo read; (exec 3<>{QOS}) && echo write; "
                 f"mknod /tmp/other c {major} {minor}; (exec 3</tmp/other) && echo same-number-other-name")
    lines = out.split("\n")
    assert lines[0].startswith("c") and lines[0].split()[4:6] == [f"{major},", str(minor)]
    assert lines[1:] == ["read", "write", "same-number-other-name"]  # the rule is for the number, not the name
    run = md("run", "--rm", "--device", f"{QOS}:/dev/xvdc:r", "busybox", "sh", "-c",
             "(exec 3</dev/xvdc) && echo read; (exec 3>/dev/xvdc) 2>/dev/null || echo not-writable")
    assert run.stdout.split() == ["read", "not-writable"], run.stderr
    cid = md.out("create", "--device", f"{QOS}:/dev/xvdc:r", "busybox", "true")
    assert md.inspect(cid, "{{json .HostConfig.Devices}}") == \
        f'[{{"PathOnHost": "{QOS}", "PathInContainer": "/dev/xvdc", "CgroupPermissions": "r"}}]'
    if os.path.exists("/dev/loop0"):  # a block device too, where the host has one
        out = md.out("run", "--rm", "--device", "/dev/loop0", "busybox", "sh", "-c",
                     "(exec 3</dev/loop0) && echo loop0; mknod /tmp/l1 b 7 1; (exec 3</tmp/l1) 2>/dev/null || echo l1-denied")
        assert out.split() == ["loop0", "l1-denied"]


BAD_DEVICES = {
    "/dev/nope": 'error gathering device information while adding custom device "/dev/nope": no such file or directory',
    "/etc/hostname": 'error gathering device information while adding custom device "/etc/hostname": '
                     'not a device node',
    "/dev/loop0:/a:r:x": "bad format for path: /dev/loop0:/a:r:x",
    "/dev/loop0:/a:rx": "bad mode specified: rx",
    "/dev/loop0:xvdc": "xvdc is not an absolute path",
    ":/dev/x": "bad format for path: :/dev/x",
}


@pytest.mark.parametrize("value", BAD_DEVICES, ids=list(BAD_DEVICES))
def test_a_bad_device_flag_is_one_line_and_125(md, value):
    run = md("run", "--rm", "--device", value, "busybox", "true")
    assert run.returncode == 125
    assert run.stderr.strip().splitlines() == [f"minidocker: {BAD_DEVICES[value]}"]
    assert md.out("ps", "-aq") == ""  # nothing was created


def test_privileged_opens_any_device(md):
    major, minor = _numbers(QOS)
    script = f"mknod /tmp/q c {major} {minor} && echo MKNOD; (exec 3</tmp/q) && echo OPEN; true"
    assert md.out("run", "--rm", "--privileged", "busybox", "sh", "-c", script).split() == ["MKNOD", "OPEN"]
    assert md.out("run", "--rm", "busybox", "sh", "-c", script).split() == ["MKNOD"]  # but not without


def test_an_image_with_device_nodes_imports_and_its_nodes_stay_closed(md, tmp_path):
    """A debootstrapped tree is full of device nodes: import takes them (as Docker does), export gives them
    back, and a container of that image still cannot open what its cgroup does not allow."""
    md.out("create", "--name", "base", "busybox", "true")
    flat = tmp_path / "flat.tar"
    md.out("export", "-o", str(flat), "base")
    with tarfile.open(flat, "a") as tar:  # busybox's files, plus a /nodes directory of devices
        info = tarfile.TarInfo("nodes")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, kind, major, minor in [("null", tarfile.CHRTYPE, 1, 3), ("kvm", tarfile.CHRTYPE, 10, 232),
                                         ("loop0", tarfile.BLKTYPE, 7, 0)]:
            info = tarfile.TarInfo(f"nodes/{name}")
            info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o666
            tar.addfile(info)
    md.out("import", str(flat), "nodes:1")
    out = md.out("run", "--name", "c", "nodes:1", "sh", "-c",
                 "ls -l /nodes | grep -c '^[bc]rw-rw-rw-'; echo x > /nodes/null && echo null; "
                 "(exec 3</nodes/kvm) 2>/dev/null || echo kvm-denied; (exec 3</nodes/loop0) 2>/dev/null || echo loop-denied")
    assert out.split() == ["3", "null", "kvm-denied", "loop-denied"]
    again = tmp_path / "again.tar"
    md.out("export", "-o", str(again), "c")
    with tarfile.open(again) as tar:
        found = {m.name: (m.type, m.devmajor, m.devminor) for m in tar if m.name.startswith("nodes/")}
    assert found == {"nodes/null": (tarfile.CHRTYPE, 1, 3), "nodes/kvm": (tarfile.CHRTYPE, 10, 232),
                     "nodes/loop0": (tarfile.BLKTYPE, 7, 0)}


def test_the_v2_program_decides_open_on_this_kernel(tmp_path):
    """The eBPF program itself, attached to a cgroup2 directory (the host's unified/ tree on a hybrid host):
    a process moved in can open /dev/null and /dev/urandom but not KVM's or a loop disk's node."""
    from minidocker.cgroups import devices, v2

    mount = cgroups.detect().v2_mount
    if not mount:
        pytest.skip("no cgroup2 mount on this host")
    nodes = {"null": ("c", 1, 3), "urandom": ("c", 1, 9), "kvm": ("c", 10, 232), "loop0": ("b", 7, 0)}
    for name, (kind, major, minor) in nodes.items():
        os.mknod(tmp_path / name, (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600, os.makedev(major, minor))
    group = os.path.join(mount, f"minidocker-devtest-{uuid.uuid4().hex[:12]}")
    os.mkdir(group)
    try:
        qos_major, qos_minor = _numbers(QOS)
        os.mknod(tmp_path / "qos", stat.S_IFCHR | 0o600, os.makedev(qos_major, qos_minor))
        v2.set_devices(group, devices.DEFAULT_RULES + [devices.Rule("c", qos_major, qos_minor, "r")])
        script = ("import os, sys\n"
                  f"open({group + '/cgroup.procs'!r}, 'w').write(str(os.getpid()))\n"
                  "for name in sys.argv[1:]:\n"
                  "    try:\n"
                  f"        os.close(os.open(os.path.join({str(tmp_path)!r}, name), os.O_RDONLY)); print(name, 'ok')\n"
                  "    except OSError as e:\n"
                  "        print(name, e.strerror)\n"
                  f"os.mknod(os.path.join({str(tmp_path)!r}, 'made'), 0o20600, os.makedev(10, 232)); print('mknod ok')\n"
                  f"qos = os.path.join({str(tmp_path)!r}, 'qos')\n"
                  "os.close(os.open(qos, os.O_RDONLY)); print('qos read ok')\n"
                  "try:\n"
                  "    os.open(qos, os.O_WRONLY)\n"
                  "except OSError as e:\n"
                  "    print('qos write', e.strerror)\n")
        run = subprocess.run([sys.executable, "-S", "-c", script, *nodes], capture_output=True, text=True,
                             timeout=30)
        assert run.stdout.splitlines() == ["null ok", "urandom ok", "kvm Operation not permitted",
                                           "loop0 Operation not permitted", "mknod ok", "qos read ok",
                                           "qos write Operation not permitted"], run.stderr
        with open(f"{group}/cgroup.procs") as f:
            assert f.read() == ""  # the child has exited
    finally:
        os.rmdir(group)  # the attached program goes with the cgroup


def _run_program(program, kind: int, access: int, major: int, minor: int) -> int:
    """Execute our eBPF subset on one struct bpf_cgroup_dev_ctx, as the kernel would (for the model test)."""
    from minidocker.cgroups import devicefilter as f

    ctx = {0: access << 16 | kind, 4: major, 8: minor}
    reg, pc = [0] * 11, 0
    for _step in range(len(program)):  # no loops: each instruction runs at most once
        i = program[pc]
        pc += 1
        if i.opcode == f.LDX_MEM_W:
            reg[i.dst] = ctx[i.off]
        elif i.opcode == f.ALU32_AND_K:
            reg[i.dst] &= i.imm
        elif i.opcode == f.ALU32_RSH_K:
            reg[i.dst] >>= i.imm
        elif i.opcode == f.ALU32_MOV_K:
            reg[i.dst] = i.imm
        elif i.opcode == f.ALU32_MOV_X:
            reg[i.dst] = reg[i.src]
        elif i.opcode in (f.JMP_JNE_K, f.JMP_JNE_X):
            if reg[i.dst] != (i.imm if i.opcode == f.JMP_JNE_K else reg[i.src]):
                pc += i.off
        elif i.opcode == f.JMP_EXIT:
            return reg[0]
        else:
            raise AssertionError(f"unknown opcode {i.opcode:#x}")
    raise AssertionError("the program ran off its end")


def test_the_program_decides_as_the_model_for_every_rule():
    """devices.allowed() is the rule list read as the kernel's v1 controller reads it; the assembled program
    (run here instruction by instruction) must say the same for every type, access and number tried."""
    from minidocker.cgroups import devicefilter, devices

    rules = devices.DEFAULT_RULES + [devices.Rule("b", 7, 0, "r"), devices.Rule("c", 10, devices.ANY, "rw")]
    program = devicefilter.assemble(rules)
    numbers = [(1, 3), (1, 5), (1, 4), (1, 11), (5, 0), (5, 2), (5, 3), (136, 0), (136, 77), (10, 200), (10, 232),
               (7, 0), (7, 1), (8, 0), (0, 0)]
    checked = 0
    for kind in ("c", "b"):
        for access in ("r", "w", "m", "rw", "rm", "wm", "rwm"):
            bits = sum(devicefilter.ACCESS_BIT[a] for a in access)
            for major, minor in numbers:
                want = devices.allowed(rules, kind, major, minor, access)
                got = _run_program(program, devicefilter.DEVICE_TYPE[kind], bits, major, minor)
                assert got == int(want), (kind, access, major, minor)
                checked += 1
    assert checked == 2 * 7 * len(numbers)
    assert devices.allowed(rules, "b", 8, 0, "m") and not devices.allowed(rules, "b", 8, 0, "r")
    assert _run_program(devicefilter.assemble(devices.ALLOW_ALL), 1, 2, 8, 0) == 1  # "a": everything


def test_a_host_user_cannot_reach_device_nodes_in_the_store(md, tmp_path):
    """Device nodes in layers (and in containers' upper dirs) are confined by the devices cgroup only
    inside a container: the store itself lets no host user but root (and remapped root's group) in."""
    from minidocker import launch, store

    assert store.REMAPPED_ROOT_GID == launch.USERNS_BASE
    tree = tmp_path / "tree"
    (tree / "dev").mkdir(parents=True)
    os.mknod(tree / "dev" / "open-me", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    os.chmod(tree / "dev" / "open-me", 0o666)  # (mknod's mode passes through the umask)
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tmp_path / "dev.tar"), "."], check=True)
    md.out("import", str(tmp_path / "dev.tar"), "devs")
    nodes = glob.glob(f"{md.root}/images/layers/*/dev/open-me")
    assert nodes
    as_nobody = subprocess.run([sys.executable, "-c", f"import os; os.setgid(65534); os.setuid(65534); "
                                f"os.open({nodes[0]!r}, os.O_RDWR)"], capture_output=True, text=True)
    assert as_nobody.returncode != 0 and "PermissionError" in as_nobody.stderr


def test_privileged_gets_the_hosts_device_nodes_as_docker_does(md):
    """docker run --privileged: the host's device nodes are in the container's /dev too (not its
    terminals: /dev/pts, /dev/console and /dev/ptmx stay the container's own)."""
    listing = md.out("run", "--rm", "--privileged", "busybox", "sh", "-c",
                     f"ls -ln {QOS} && (exec 3<{QOS}) && echo OPEN; readlink /dev/ptmx; ls /dev/pts")
    major, minor = _numbers(QOS)
    assert f"{major}, {minor}" in listing.splitlines()[0] and "OPEN" in listing
    assert "pts/ptmx" in listing
    assert md("run", "--rm", "busybox", "ls", QOS).returncode != 0  # a default container has only the few
