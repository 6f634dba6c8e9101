"""Chapter 1: every process in a container is confined alike -- its first one and every `exec`'d one.

The holes these tests close were found by trying to escape (issue 14): an
`exec`'d process kept all of the host root's capabilities (and could then undo
the container's read-only /proc/sys and its masked paths, for every process
of the container); every container process ignored SIGPIPE and SIGXFSZ
(inherited from Python); the open-files limit was the caller's; and an image
whose /etc is a symlink made minidocker write into a host directory.
"""

import os
import shutil
import subprocess

import pytest

from conftest import MINIDOCKER, demo_program
from minidocker import capabilities

CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
NOFILE_SOFT, NOFILE_HARD = 1024, 524288  # Docker 25+: systemd's default, which neither daemon raises


def mask_of(names) -> int:
    return sum(1 << capabilities.NAMES.index(name) for name in names)


DOCKER_DEFAULT = mask_of(capabilities.DEFAULT)  # 0xa80425fb, as Docker's


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _caps(status: dict[str, str]) -> dict[str, int]:
    return {field: int(status[field], 16) for field in CAP_FIELDS}


def _held_by_us() -> int:
    """What this (the host's root) process may hold: a capability the host lacks cannot be granted."""
    return _caps(_status(open("/proc/self/status").read()))["CapBnd"]


@pytest.fixture
def running(md):
    def start(*flags: str, name: str = "c") -> str:
        md.out("run", "-d", "--name", name, *flags, "busybox", "sleep", "300")
        return name
    return start


@pytest.mark.parametrize("flags, expected", [
    ((), DOCKER_DEFAULT),
    (("--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"),
     (DOCKER_DEFAULT | mask_of({"NET_ADMIN"})) & ~mask_of({"CHOWN"})),
    (("--cap-drop", "ALL"), 0),
    (("--privileged",), None),  # every capability this host has
])
def test_an_exec_process_has_exactly_the_capabilities_of_pid_1(md, running, flags, expected):
    running(*flags)
    pid_1 = _caps(_status(md.out("exec", "c", "cat", "/proc/1/status")))
    execd = _caps(_status(md.out("exec", "c", "cat", "/proc/self/status")))
    assert execd == pid_1
    expected = _held_by_us() if expected is None else expected
    assert execd == {"CapInh": 0, "CapPrm": expected, "CapEff": expected, "CapBnd": expected, "CapAmb": 0}


def test_exec_as_another_user_holds_no_capability_and_exec_privileged_holds_all(md, running):
    running()
    as_user = _caps(_status(md.out("exec", "-u", "1000", "c", "cat", "/proc/self/status")))
    assert as_user == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": DOCKER_DEFAULT, "CapAmb": 0}
    privileged = _caps(_status(md.out("exec", "--privileged", "c", "cat", "/proc/self/status")))
    assert privileged["CapEff"] == privileged["CapBnd"] == _held_by_us()
    # ... and only that one process: the container's own stay as they were
    assert _caps(_status(md.out("exec", "c", "cat", "/proc/1/status")))["CapEff"] == DOCKER_DEFAULT


def test_an_exec_process_cannot_undo_the_read_only_and_masked_mounts(md, running):
    running()
    # (each attempt is harmless should it succeed: the clock is set to what it already says, the sysrq
    # key is "h", help -- a run of this test against a minidocker with the hole once set the host's clock)
    attack = md("exec", "c", "sh", "-c", "mount -o remount,bind,rw /proc/sys; umount /proc/acpi; "
                "mount -t tmpfs none /tmp; echo h > /proc/sysrq-trigger; date -s \"$(date +%Y.%m.%d-%H:%M:%S)\"")
    assert "mount: permission denied" in attack.stderr or "Operation not permitted" in attack.stderr
    assert "can't unmount /proc/acpi: Operation not permitted" in attack.stderr
    assert "can't set date: Operation not permitted" in attack.stderr
    mounts = md.out("exec", "c", "cat", "/proc/1/mountinfo").splitlines()
    proc_sys = [line.split() for line in mounts if line.split()[4] == "/proc/sys"]
    assert proc_sys and all("ro" in fields[5].split(",") for fields in proc_sys)  # still read-only for PID 1
    assert any(line.split()[4] == "/proc/acpi" for line in mounts)  # still masked
    assert not any(line.split()[4] == "/tmp" for line in mounts)


def test_an_exec_process_keeps_no_new_privileges_and_the_user_namespace(md, running):
    running("--security-opt", "no-new-privileges", "--userns", "remap", name="nnp")
    status = _status(md.out("exec", "nnp", "cat", "/proc/self/status"))
    assert status["NoNewPrivs"] == "1"
    pid = md.pid("nnp")
    assert md.out("exec", "nnp", "readlink", "/proc/self/ns/user") == os.readlink(f"/proc/{pid}/ns/user")
    assert md.out("exec", "nnp", "cat", "/proc/self/uid_map").split() == ["0", "100000", "65536"]
    assert _status(md.out("exec", "nnp", "cat", "/proc/self/status"))["CapEff"] == f"{DOCKER_DEFAULT:016x}"


@pytest.mark.parametrize("flags", [(), ("--init",)])
def test_no_signal_is_ignored_or_blocked_in_a_container(md, flags):
    status = _status(md.out("run", "--rm", *flags, "busybox", "cat", "/proc/self/status"))
    assert (status["SigIgn"], status["SigBlk"]) == ("0" * 16, "0" * 16)


def test_no_signal_is_ignored_in_a_detached_container_nor_in_exec(md, running):
    running("--init")
    for pid in ("2", "self"):  # the command under --init (PID 1 is minidocker's init), then exec's own
        status = _status(md.out("exec", "c", "cat", f"/proc/{pid}/status"))
        assert (status["SigIgn"], status["SigBlk"]) == ("0" * 16, "0" * 16), pid


def test_a_pipe_whose_reader_is_gone_kills_its_writer_with_sigpipe(md):
    # With SIGPIPE ignored, `yes` only learns of it as a write error (EPIPE) -- if it checks at all.
    result = md("run", "--rm", "busybox", "sh", "-c", "(yes; echo yes ended $? >&2) | head -c 1 >/dev/null",
                timeout=30)
    assert "yes ended 141" in result.stderr  # 128 + 13: killed by SIGPIPE, as outside a container


def test_the_open_files_limit_is_dockers_in_run_and_exec(md, running):
    import resource

    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = NOFILE_HARD if host_hard == resource.RLIM_INFINITY else min(NOFILE_HARD, host_hard)
    expected = f"{min(NOFILE_SOFT, hard)} {hard}"
    assert md.out("run", "--rm", "busybox", "sh", "-c", "echo $(ulimit -n) $(ulimit -Hn)") == expected
    running()
    assert md.out("exec", "c", "sh", "-c", "echo $(ulimit -n) $(ulimit -Hn)") == expected


def test_no_host_descriptor_reaches_the_container(md, running):
    running()
    assert md.out("exec", "c", "ls", "/proc/1/fd").split() == ["0", "1", "2"]
    # an exec'd shell has only its three standard streams (`; true`: the shell forks ls, and stays itself)
    assert md.out("exec", "c", "sh", "-c", "ls /proc/$$/fd; true").split() == ["0", "1", "2"]


def test_the_init_process_host_binary_is_out_of_reach(md, running):
    """CVE-2019-5736's shape: /proc/PID/exe of a process that still runs the host's binary
    (minidocker's --init stays Python) must not be openable from inside."""
    running("--init")
    attempt = md("exec", "c", "sh", "-c", "cat /proc/1/exe > /dev/null && echo READ; "
                 "exec 3>>/proc/1/exe && echo WRITABLE")
    assert "READ" not in attempt.stdout and "WRITABLE" not in attempt.stdout
    assert "Permission denied" in attempt.stderr


# -- an image's symlinks never lead minidocker out of the container's root ---------------------------


def _import(md, tmp_path, name: str, build) -> None:
    tree = tmp_path / f"tree-{name}"
    tree.mkdir()
    build(tree)
    tar = tmp_path / f"{name}.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tar), "."], check=True)
    md.out("import", str(tar), name)


def _busybox(tree) -> None:
    (tree / "bin").mkdir()
    shutil.copy2("/bin/busybox", tree / "bin" / "busybox")  # busybox-static: needs no library


def test_an_etc_symlink_out_of_the_image_writes_nothing_on_the_host(md, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "resolv.conf").symlink_to(tmp_path / "host-resolv.conf")
    (tmp_path / "host-resolv.conf").write_text("nameserver 192.0.2.1\n")
    before = sorted(os.listdir(victim))

    def build(tree):
        _busybox(tree)
        (tree / "etc").symlink_to(victim)  # absolute, pointing at a directory of the host

    _import(md, tmp_path, "evil", build)
    # Inside the container the symlink means ROOT/<victim's path>: that is made and used, as runc does.
    out = md.out("run", "--rm", "--hostname", "h2", "evil", "/bin/busybox", "cat", f"{victim}/hostname")
    assert out == "h2"
    assert sorted(os.listdir(victim)) == before  # no hostname, hosts or resolv.conf made on the host
    assert os.path.islink(victim / "resolv.conf")  # nor the host's symlink replaced
    assert (tmp_path / "host-resolv.conf").read_text() == "nameserver 192.0.2.1\n"


def test_an_etc_symlink_is_followed_inside_the_root(md, tmp_path):
    def build(tree):
        _busybox(tree)
        (tree / "real-etc").mkdir()
        (tree / "etc").symlink_to("/real-etc")  # absolute: inside the container it means ROOT/real-etc

    _import(md, tmp_path, "inside", build)
    out = md.out("run", "--rm", "--hostname", "h1", "inside", "/bin/busybox", "cat", "/real-etc/hostname")
    assert out == "h1"


@pytest.mark.parametrize("mount_point", ["proc", "dev", "sys"])
def test_a_kernel_filesystem_mount_point_may_not_be_a_symlink(md, tmp_path, mount_point):
    victim = tmp_path / "victim"
    victim.mkdir()

    def build(tree):
        _busybox(tree)
        (tree / mount_point).symlink_to(victim)

    _import(md, tmp_path, "sym", build)
    result = md("run", "--rm", "sym", "/bin/busybox", "true")
    assert result.returncode == 125
    assert f"the image's /{mount_point} is a symlink, where a directory is needed" in result.stderr
    assert os.listdir(victim) == []
    with open("/proc/self/mountinfo") as f:
        assert not any(line.split()[4] == str(victim) for line in f)


def test_an_image_without_proc_dev_sys_or_etc_runs(md, tmp_path):
    """A tar of one static binary (FROM scratch): the mount points are made in the container's layer."""
    _import(md, tmp_path, "bare", _busybox)
    out = md.out("run", "--rm", "bare", "/bin/busybox", "sh", "-c", "echo $(cat /etc/hostname | wc -c) "
                 "$(ls /dev/null) $(cat /proc/1/cmdline | tr '\\0' ' ')")
    assert out.split()[:4] == ["13", "/dev/null", "/bin/busybox", "sh"]


# -- what a confined process cannot do, whichever way it came in ------------------------------------


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> bytes:
    from minidocker.demos import probe_binary

    return demo_program(tmp_path_factory, probe_binary)


def _probe(md, probe: bytes, how: list[str], calls: list[str]) -> dict[str, str]:
    """Run minidocker/demos/syscall_probe.c in a container (`how`: run ... or exec ...): {call: result}."""
    result = md(*how, "sh", "-c", f"cat > /tmp/p && chmod +x /tmp/p && /tmp/p {' '.join(calls)}", input=probe)
    assert result.returncode == 0, result.stderr
    return dict(line.decode().split(": ", 1) for line in result.stdout.splitlines())


ESCAPES = ["keyctl", "bpf", "init_module", "finit_module", "kexec_load", "open_by_handle_at", "unshare-user",
           "mount", "clock_settime"]


def test_an_exec_process_is_as_confined_as_the_container(md, running, probe):
    running()
    by_run = _probe(md, probe, ["run", "--rm", "-i", "busybox"], ESCAPES)
    by_exec = _probe(md, probe, ["exec", "-i", "c"], ESCAPES)
    assert by_exec == by_run == dict.fromkeys(ESCAPES, "EPERM")


def test_a_host_process_cannot_be_traced_even_when_visible(md, running, probe):
    """--pid host shows the host's processes; ptrace(2) still needs CAP_SYS_PTRACE over a process
    holding capabilities the container lacks."""
    host_process = subprocess.Popen(["sleep", "60"])
    try:
        running("--pid", "host")
        call = f"ptrace-attach={host_process.pid}"
        assert _probe(md, probe, ["run", "--rm", "-i", "--pid", "host", "busybox"], [call]) == {call: "EPERM"}
        assert _probe(md, probe, ["exec", "-i", "c"], [call]) == {call: "EPERM"}
        with open(f"/proc/{host_process.pid}/status") as f:
            assert "TracerPid:\t0" in f.read()
    finally:
        host_process.kill()
        host_process.wait()


# -- the same confinement as a real peer's --------------------------------------------------------------


CONFINEMENT_FIELDS = CAP_FIELDS + ("NoNewPrivs", "Seccomp", "Seccomp_filters", "SigIgn", "SigBlk")


def _confinement(status_text: str) -> dict[str, str]:
    status = _status(status_text)
    return {field: status[field].strip() for field in CONFINEMENT_FIELDS}


def test_pid_1_and_exec_are_confined_as_podman_confines_them(md, tmp_path):
    """podman (with Docker's three extra default capabilities: MKNOD, NET_RAW, AUDIT_WRITE) against
    minidocker, for the container's PID 1, an exec'd process and an `exec --privileged` one."""
    from test_save_load import Podman

    podman = Podman(str(tmp_path / "podman"))
    try:
        md.out("save", "-o", str(tmp_path / "bb.tar"), "busybox")
        podman("load", "-i", str(tmp_path / "bb.tar"))
        podman("run", "-d", "--name", "p", "--network", "none", "--cap-add", "MKNOD,NET_RAW,AUDIT_WRITE",
               "localhost/busybox:latest", "sleep", "300")
        md.out("run", "-d", "--name", "c", "busybox", "sleep", "300")
        for flags, path in (((), "/proc/1/status"), ((), "/proc/self/status"), (("--privileged",), "/proc/self/status")):
            theirs = _confinement(podman("exec", *flags, "p", "cat", path).stdout)
            ours = _confinement(md.out("exec", *flags, "c", "cat", path))
            assert ours == theirs, (flags, path)
    finally:
        podman.clean()


def test_an_exec_process_cannot_open_a_host_device_either(md, running):
    """exec joins the container's cgroup, and with it the devices cgroup's allow-list."""
    running()
    attempt = md("exec", "c", "sh", "-c", "mknod /tmp/kvm c 10 232 && mknod /tmp/loop b 7 0 && "
                 "( (exec 3</tmp/kvm) && echo KVM; (exec 4</tmp/loop) && echo LOOP0 ) 2>&1")
    assert "KVM" not in attempt.stdout and "LOOP0" not in attempt.stdout
    assert attempt.stdout.count("Operation not permitted") == 2


def test_a_signal_ignored_by_whoever_started_minidocker_is_not_ignored_inside(md):
    """`nohup minidocker run ...` (SIGHUP ignored), or a shell's `trap '' USR1`: an ignored signal
    survives execve, so minidocker puts it back to its default before the container's command."""
    import signal

    def ignore_usr1_and_hup():
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    run = subprocess.run([MINIDOCKER, "run", "--rm", "busybox", "cat", "/proc/self/status"], env=md.env,
                         capture_output=True, text=True, timeout=60, preexec_fn=ignore_usr1_and_hup)
    assert run.returncode == 0, run.stderr
    assert _status(run.stdout)["SigIgn"] == "0" * 16


@pytest.mark.parametrize("links", [{"etc": "/etc"}, {"etc": "a", "a": "b", "b": "/etc"}], ids=["self", "cycle"])
def test_a_symlink_loop_where_etc_should_be_is_one_line(md, tmp_path, links):
    def build(tree):
        _busybox(tree)
        for name, target in links.items():
            (tree / name).symlink_to(target)

    _import(md, tmp_path, "loop", build)
    result = md("run", "--rm", "loop", "/bin/busybox", "true")
    assert result.returncode == 125 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "symbolic links" in result.stderr
