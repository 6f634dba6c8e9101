"""Run pytest inside a throwaway Linux VM whose cgroups are pure v2.

Why a VM: minidocker has two cgroup drivers, ``minidocker/cgroups/v1.py`` and
``v2.py``.  The machine this project is developed and tested on mounts its
cgroups as a v1 *hybrid* (every controller in a v1 hierarchy), and those v1
hierarchies cannot be unmounted -- so the v2 driver would never run here, while
the students' VMs are pure v2.  A virtual machine runs a kernel of its own, and
we decide how that kernel's cgroups are mounted: cgroup2 only.

How, in four steps (a function each, below):

1. **The kernel**: Debian's ``linux-image-amd64``.  QEMU can boot the
   *uncompressed* kernel, ``vmlinux``, directly (the x86 "PVH" entry point),
   about twice as fast as ``/boot/vmlinuz-*``, a bzImage that first has to
   decompress itself -- slow under software emulation.  So we unpack vmlinux
   from the bzImage once (:func:`extract_vmlinux`).
2. **The initramfs**: a tiny root filesystem the kernel unpacks into RAM: busybox
   (a static shell and tools), the kernel modules of :data:`MODULES` (virtio,
   9p, overlay, a network card, veth, bridge, tun, loop) and ``/init``, a shell
   script that becomes PID 1 (:data:`INIT_SCRIPT`).
3. **No disk**: QEMU shares the host's ``/`` with the guest over 9p (a
   file-sharing protocol over virtio), read-only.  /init lays a RAM-backed
   overlay on top so the guest can write, mounts cgroup2 -- and no v1
   hierarchy -- on ``/sys/fs/cgroup``, brings the loopback and eth0 up, and
   *switches root* into it: busybox's ``switch_root`` moves the overlay onto
   ``/`` and execs :data:`SECOND_INIT_SCRIPT` there as PID 1, which runs the test
   command.  Not a chroot: a chrooted process may not make a user namespace
   (``--userns remap``), and the kernel loads a missing module on demand with
   the ``/sbin/modprobe`` it finds in PID 1's root.  The repo, its venv and
   busybox are at the same paths as on the host.
4. **The result**: the second init prints ``MINIDOCKER-VM-EXIT <status>`` on the
   serial console, which is QEMU's stdout, then powers the VM off.

Steps 1 and 2 are cached in /var/cache/minidocker-vm/<kernel version>-<recipe>/.
Without KVM (this host is itself a VM) QEMU emulates the CPU in software
(TCG), and the guest runs Python ~16x slower: run in it the tests that need
cgroup v2 or a student's kind of kernel (tests/test_cgroup2_vm.py lists them).

As a command, it runs any test file in the VM on demand; the notebooks need
more memory and time than the default (see :func:`main`)::

    .venv/bin/python tests/vm/cgroup2.py --notebooks
    .venv/bin/python tests/vm/cgroup2.py tests/test_union.py -k overlay
"""

import base64
import hashlib
import lzma
import os
import re
import select
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

CACHE_DIR = Path(os.environ.get("MINIDOCKER_VM_CACHE", "/var/cache/minidocker-vm"))
# tests/vm/cgroup2.py -> the repo.  Not a fixed path: CI runs from a clone elsewhere.
REPO_ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = Path("/bin/busybox")  # busybox-static: it must run without a dynamic loader
# The kernel modules the initramfs loads, each with why (modules.dep adds what they depend on;
# one built into the kernel, listed in modules.builtin, needs no loading).  Each costs boot time
# under TCG, so only these: anything else a test needs, the kernel loads on demand by running
# the host's /sbin/modprobe -- which it can do once /init has switched to the host's root.
MODULES = (
    "virtio_pci", "9pnet_virtio", "9p",  # the host's / over virtio and 9p
    "overlay",  # a writable layer on it, and the containers' own overlays
    "virtio_net",  # eth0, a network card as a student's VM has (QEMU's user network, restricted)
    "veth",  # `ip link add ... type veth` (tests/test_security.py; chapter 5's cable)
    "bridge", "br_netfilter",  # chapter 5's switch; br_netfilter is never loaded on demand
    "tun",  # /dev/net/tun exists only once tun is loaded (a device, as the devices tests see it)
    "loop",  # /dev/loop-control likewise
)
EXIT_MARKER = "MINIDOCKER-VM-EXIT"
GUEST_TMPDIR = "/minidocker-vm-tmp"  # a tmpfs that /init mounts
COMMAND_LINE_SIZE = 2048  # the x86 kernel's limit on its command line, in bytes

# PID 1 of the guest, first part, in the initramfs.  The kernel runs it with the
# command line's unknown NAME=value parameters in its environment:
# MINIDOCKER_VM_COMMAND is the base64-encoded shell command to run (base64: the
# command line is split at spaces).  It builds the new root, then hands PID 1 over
# to SECOND_INIT_SCRIPT inside it with switch_root.
INIT_SCRIPT = r"""#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM, in the initramfs, written by tests/vm/cgroup2.py.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "MINIDOCKER-VM-SETUP-FAILED: $*"
    poweroff -f
}

mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for module in /modules/*.ko; do
    insmod "$module" || fail "insmod $module"
done

# The host's / (read-only), with a tmpfs overlaid on it so that the guest can write.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host \
    || fail "cannot mount the host's / over 9p"
mount -t tmpfs -o mode=755 scratch /scratch
mkdir /scratch/upper /scratch/work
mount -t overlay -o lowerdir=/host,upperdir=/scratch/upper,workdir=/scratch/work root /newroot \
    || fail "cannot mount the overlay root"

# The kernel filesystems a Linux system expects, fresh.  /sys/fs/cgroup gets
# cgroup2 alone, mounted like systemd does: this is what makes the VM "pure v2".
cd /newroot
mount -t proc proc proc
mount -t sysfs sysfs sys
mount -t cgroup2 -o nsdelegate cgroup2 sys/fs/cgroup || fail "cannot mount cgroup2"
mount --move /dev dev  # the devtmpfs, with the nodes of the modules loaded above
mkdir -p dev/pts dev/shm dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts dev/pts
mount -t tmpfs -o mode=1777 shm dev/shm
mount -t mqueue mqueue dev/mqueue
mount -t tmpfs -o mode=755 run run  # a fresh /run, as systemd gives (ip netns keeps its files there)
mkdir -p run/lock run/minidocker-vm
# A tmpfs of its own for the tests' files (the guest's TMPDIR): minidocker mounts
# its containers' overlays in there, and an overlay's upper directory may not
# itself lie on an overlay.  A new directory, not /tmp: a tmpfs on /tmp would
# hide the host's /tmp, where the repo under test may well have been cloned.
mkdir minidocker-vm-tmp
mount -t tmpfs -o mode=1777 tmp minidocker-vm-tmp

# What a booted machine has and a bare kernel does not: a name, and its loopback up
# (down, 127.0.0.1 reaches nothing: a notebook's Jupyter kernel would never answer).
hostname minidocker-vm
ip link set lo up || fail "cannot bring the loopback up"
# eth0 on QEMU's user-mode network, with QEMU's fixed addresses; restrict=on (see qemu_command)
# lets no packet out of it, so the guest has a card, an address and a default route, and no Internet.
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 \
    || fail "cannot set up eth0"

echo "$MINIDOCKER_VM_COMMAND" | base64 -d > run/minidocker-vm/command || fail "no MINIDOCKER_VM_COMMAND"
cp /second-init run/minidocker-vm/init
umount /proc
cd /
# switch_root: delete the initramfs's files (they would hold RAM), move /newroot onto /
# (mount --move), chroot there and exec the second init as PID 1.  Not a plain chroot:
# then the overlay is the mount namespace's real root, which unshare(CLONE_NEWUSER)
# insists on and /proc/PID/root is measured from -- and, since the kernel's own threads
# share PID 1's root, the kernel finds /sbin/modprobe there to load a module on demand.
exec switch_root /newroot /bin/busybox sh /run/minidocker-vm/init
fail "switch_root"
"""

# PID 1 of the guest, second part: in the new root, after switch_root.
SECOND_INIT_SCRIPT = r"""#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM, in the host's root, written by tests/vm/cgroup2.py.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/sh -c "$(cat /run/minidocker-vm/command)" </dev/null
echo "MINIDOCKER-VM-EXIT $?"
/bin/busybox poweroff -f
"""


class VMUnavailable(Exception):
    """QEMU, a kernel or a tool is missing: the VM cannot run at all (an error, not a skip)."""


class VMResult(NamedTuple):
    exit_code: int | None  # the guest command's exit status; None if it never reported one
    output: str  # everything the guest printed on its console
    seconds: float  # wall time, boot to power-off
    timed_out: bool = False  # QEMU was killed at the deadline


# -- step 1: the kernel ------------------------------------------------------------------


def _version_key(version: str) -> list:
    """Sort "6.1.0-9" before "6.1.0-10": compare the digit runs as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version)]


def find_kernel() -> tuple[str, Path]:
    """(version, /boot/vmlinuz-<version>) of the newest installed kernel that has its modules."""
    versions = [path.name.removeprefix("vmlinuz-") for path in Path("/boot").glob("vmlinuz-*")]
    versions = [v for v in versions if (Path("/lib/modules") / v / "modules.dep").exists()]
    if not versions:
        raise VMUnavailable("no kernel to boot the cgroup v2 VM with (/boot/vmlinuz-* and its "
                            "/lib/modules/<version>): run scripts/setup, it installs linux-image-amd64")
    version = max(versions, key=_version_key)
    return version, Path("/boot") / f"vmlinuz-{version}"


def decompress(data: bytes, what: str) -> bytes:
    """Undo xz, zstd or gzip, whichever the magic bytes at the start say."""
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor().decompress(data)  # stops at the end of the stream
    if data.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(data)  # 31: gzip framing
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        if not shutil.which("zstd"):
            raise VMUnavailable(f"{what} is zstd-compressed and the zstd tool is missing: run scripts/setup")
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    raise VMUnavailable(f"{what}: unknown compression (magic bytes {data[:6].hex()})")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed kernel, an ELF file, from inside a bzImage.

    A bzImage is a real-mode setup program, then a self-extracting decompressor
    carrying the compressed kernel as its "payload".  The boot protocol header
    (Documentation/arch/x86/boot.rst) says where the payload is: the setup is
    setup_sects+1 sectors of 512 bytes (byte 0x1f1), and payload_offset,
    payload_length (0x248, 0x24c) locate it in what follows.  The build appends
    the uncompressed size as 4 more bytes, which we cut off.
    """
    if bzimage[0x202:0x206] != b"HdrS":
        raise VMUnavailable("the kernel image is not a bzImage (no 'HdrS' boot header)")
    setup_sectors = bzimage[0x1F1] or 4  # 0 means 4, for very old kernels
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sectors + 1) * 512 + payload_offset
    vmlinux = decompress(bzimage[start:start + payload_length - 4], "the kernel's payload")
    if not vmlinux.startswith(b"\x7fELF"):
        raise VMUnavailable("the kernel's payload did not decompress to an ELF vmlinux")
    return vmlinux


# -- step 2: the initramfs ---------------------------------------------------------------


def _module_name(path: str) -> str:
    """kernel/net/9p/9pnet_virtio.ko.xz -> 9pnet_virtio ('-' and '_' are the same to the kernel)."""
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


def module_load_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The .ko files of `wanted` and of everything they need, each after its dependencies.

    depmod wrote modules.dep, a line per module: "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko ...".
    A module that is built into the kernel (listed in modules.builtin) needs no loading.
    """
    needs = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        module, _, dependencies = line.partition(":")
        needs[module] = dependencies.split()
    by_name = {_module_name(module): module for module in needs}
    builtin_file = modules_dir / "modules.builtin"
    builtin = {_module_name(m) for m in builtin_file.read_text().split()} if builtin_file.exists() else set()
    order: list[str] = []

    def load_after_dependencies(module: str) -> None:
        if module in order:
            return
        for dependency in needs[module]:
            load_after_dependencies(dependency)
        order.append(module)

    for name in wanted:
        if name in by_name:
            load_after_dependencies(by_name[name])
        elif name not in builtin:
            raise VMUnavailable(f"the kernel in {modules_dir} has no '{name}' module")
    return [modules_dir / module for module in order]


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def cpio_entry(name: str, mode: int, data: bytes = b"", inode: int = 0, device: tuple[int, int] = (0, 0)) -> bytes:
    """One file in the "newc" cpio format that the kernel unpacks an initramfs from.

    A 110-byte ASCII header (magic 070701, then 13 fields of 8 hex digits), the
    NUL-terminated name, the contents; header+name and contents each padded to 4 bytes.
    Writing the archive ourselves lets it hold /dev/console, a device node, without mknod.
    """
    encoded_name = name.encode() + b"\0"
    fields = [inode, mode, 0, 0, 1, 0, len(data), 0, 0, device[0], device[1], len(encoded_name), 0]
    #         ino    mode uid gid nlink mtime size  dev major, minor; rdev major, minor; namesize; check
    header = b"070701" + b"".join(b"%08X" % field for field in fields)
    return _pad4(header + encoded_name) + _pad4(data)


def build_initramfs(version: str) -> bytes:
    """busybox, /init, /dev/console and the modules (decompressed, numbered in load order)."""
    if not BUSYBOX.exists():
        raise VMUnavailable(f"{BUSYBOX} is missing: run scripts/setup, it installs busybox-static")
    files = [(directory, stat.S_IFDIR | 0o755, b"")
             for directory in ("bin", "dev", "proc", "host", "scratch", "newroot", "modules")]
    files += [("init", stat.S_IFREG | 0o755, INIT_SCRIPT.encode()),
              ("second-init", stat.S_IFREG | 0o755, SECOND_INIT_SCRIPT.encode()),
              ("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes())]
    for number, module in enumerate(module_load_order(Path("/lib/modules") / version, MODULES)):
        code = module.read_bytes()
        if not module.name.endswith(".ko"):  # .ko.xz, .ko.zst: busybox's insmod wants it plain
            code = decompress(code, str(module))
        files.append((f"modules/{number:02d}-{_module_name(module.name)}.ko", stat.S_IFREG | 0o644, code))
    archive = [cpio_entry(name, mode, data, inode) for inode, (name, mode, data) in enumerate(files, 1)]
    # The kernel opens /dev/console for PID 1's stdin, stdout and stderr (char device 5,1).
    archive.append(cpio_entry("dev/console", stat.S_IFCHR | 0o600, inode=len(files) + 1, device=(5, 1)))
    archive.append(cpio_entry("TRAILER!!!", 0))
    return b"".join(archive)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file next to `path`, then rename: nobody sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        try:
            f.write(data)
        except BaseException:
            os.unlink(f.name)
            raise
    os.replace(f.name, path)


def boot_files() -> tuple[Path, Path]:
    """(vmlinux, initramfs) for the newest kernel, built on first use and then cached."""
    version, vmlinuz = find_kernel()
    recipe = hashlib.sha256(f"{INIT_SCRIPT}{SECOND_INIT_SCRIPT}{MODULES}".encode()).hexdigest()[:12]  # rebuild when it changes
    directory = CACHE_DIR / f"{version}-{recipe}"
    vmlinux, initramfs = directory / "vmlinux", directory / "initramfs.cpio"
    if not vmlinux.exists():
        _write_atomically(vmlinux, extract_vmlinux(vmlinuz.read_bytes()))
    if not initramfs.exists():
        _write_atomically(initramfs, build_initramfs(version))
    return vmlinux, initramfs


# -- step 3: booting QEMU ----------------------------------------------------------------


def guest_command(pytest_args: list[str], env: dict[str, str]) -> str:
    """The shell command the guest runs: pytest in this repo, with the Python running us now."""
    variables = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                 "PYTHONDONTWRITEBYTECODE": "1",  # the host's files are read-only to the guest anyway
                 "TERM": "dumb",  # the console is a serial line: no colour codes in the output we read
                 "TMPDIR": GUEST_TMPDIR,  # pytest's tmp_path and so every test's MINIDOCKER_ROOT
                 **env}
    argv = ["env", "-i", *(f"{name}={value}" for name, value in variables.items()),
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
    return f"cd {shlex.quote(str(REPO_ROOT))} && exec {shlex.join(argv)}"


def kernel_command_line(command: str) -> str:
    """The guest kernel's parameters, and `command` for /init as MINIDOCKER_VM_COMMAND."""
    encoded = base64.b64encode(command.encode()).decode()
    line = ("console=ttyS0,115200 loglevel=3"  # kernel messages up to "critical" only: keep the output readable
            " panic=-1"  # a kernel panic reboots at once, which -no-reboot turns into QEMU exiting
            " cgroup_no_v1=all"  # no controller may be bound to a v1 hierarchy, as on a systemd host
            f" MINIDOCKER_VM_COMMAND={encoded}")
    if len(line) >= COMMAND_LINE_SIZE:
        raise ValueError(f"the guest command is too long for the kernel's command line: {command}")
    return line


def qemu_command(vmlinux: Path, initramfs: Path, command_line: str, memory_mb: int = 2048) -> list[str]:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise VMUnavailable("qemu-system-x86_64 is missing: run scripts/setup, it installs qemu-system-x86")
    # Software emulation (TCG), one host thread per virtual CPU.  Not KVM: this
    # host is itself a VM, and although it has a /dev/kvm, no guest runs on it.
    return [qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", str(memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio",  # the guest's console is QEMU's stdin and stdout
            "-no-reboot",  # a reboot (or a panic) ends QEMU instead of booting again
            "-kernel", str(vmlinux), "-initrd", str(initramfs), "-append", command_line,
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
            # a network card on a user-mode network that reaches nothing outside (restrict=on)
            "-nic", "user,model=virtio-net-pci,restrict=on"]


def _die_with_parent() -> None:
    """In the child, before exec: have the kernel SIGKILL QEMU if we die, so no VM outlives a test run."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read_console(qemu: subprocess.Popen, deadline: float, echo: Callable[[str], None] | None) -> tuple[str, bool]:
    """Everything QEMU prints until it exits, or until `deadline`: (output, timed out?)."""
    output, line = [], b""
    fd = qemu.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(output).decode(errors="replace"), True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:  # end of file: QEMU has exited
            return b"".join(output).decode(errors="replace"), False
        output.append(chunk)
        if echo:
            line += chunk
            *complete, line = line.split(b"\n")
            for text in complete:
                echo(text.decode(errors="replace").rstrip("\r"))


def run_in_vm(command: str, timeout: float, echo: Callable[[str], None] | None = None,
              memory_mb: int = 2048) -> VMResult:
    """Boot a pure cgroup v2 VM, run the shell `command` as root there, power off.

    `echo`: called with each console line as it arrives.  QEMU is killed at
    `timeout` seconds, and then the result has exit_code None and timed_out True.
    """
    argv = qemu_command(*boot_files(), kernel_command_line(command), memory_mb=memory_mb)
    started = time.monotonic()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    try:
        output, timed_out = _read_console(qemu, started + timeout, echo)
    finally:
        if qemu.poll() is None:
            qemu.kill()  # a hang must fail the test, not stall it
        qemu.wait()
        qemu.stdout.close()
    output = output.replace("\r\n", "\n")  # the serial console ends lines the terminal way
    statuses = re.findall(rf"^{EXIT_MARKER} (\d+)$", output, re.MULTILINE)
    exit_code = int(statuses[-1]) if statuses and not timed_out else None
    return VMResult(exit_code, output, time.monotonic() - started, timed_out)


def run_in_cgroup2_vm(pytest_args: list[str], timeout: float, env: dict[str, str] | None = None,
                      echo: Callable[[str], None] | None = None, memory_mb: int = 2048) -> VMResult:
    """Boot a pure cgroup v2 VM, run ``python -m pytest <pytest_args>`` in this repo there, power off.

    `env`: extra environment variables for the guest's pytest; the rest as :func:`run_in_vm`.
    """
    return run_in_vm(guest_command(pytest_args, env or {}), timeout, echo, memory_mb)


def pytest_summary(output: str) -> str | None:
    """pytest's closing line, e.g. "27 passed in 151.20s (0:02:31)", from the guest's output."""
    lines = re.findall(r"^=*\s*(\d+ \w+.* in [\d.]+s\b.*?)\s*=*$", output, re.MULTILINE)
    return lines[-1] if lines else None


# -- as a command: any test file in the VM, on demand ------------------------------------


NOTEBOOKS = ["-q", "-rfEs", "tests/test_notebooks.py"]  # --notebooks: every notebook, cell by cell


def main(argv: list[str] | None = None) -> int:
    """``.venv/bin/python tests/vm/cgroup2.py [--notebooks] [--memory MiB] [--timeout S] [pytest args]``

    Boots the VM, runs pytest with the given arguments there (e.g. a test file the
    ordinary suite runs on the host only) and prints the guest's console as it goes,
    then pytest's summary and the wall time.  Exits with the guest pytest's status.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Run pytest in the pure cgroup v2 VM (as root).")
    parser.add_argument("--notebooks", action="store_true",
                        help="run tests/test_notebooks.py: every notebook, with Jupyter kernels in the VM")
    parser.add_argument("--memory", type=int, help="the VM's memory in MiB (default 2048, 4096 with --notebooks)")
    parser.add_argument("--timeout", type=float, help="seconds before QEMU is killed (default 600, 1500 with --notebooks)")
    options, pytest_args = parser.parse_known_args(argv)
    if options.notebooks:
        pytest_args = NOTEBOOKS + pytest_args
    if not pytest_args:
        parser.error("say what to run: --notebooks, or pytest's arguments (e.g. tests/test_limits.py)")
    memory = options.memory or (4096 if options.notebooks else 2048)  # each Jupyter kernel is a Python of its own
    timeout = options.timeout or (1500 if options.notebooks else 600)  # under TCG a notebook takes minutes
    result = run_in_cgroup2_vm(pytest_args, timeout=timeout, env={"MINIDOCKER_EXPECT_CGROUP": "v2"},
                               echo=print, memory_mb=memory)
    print(f"cgroup v2 VM: {pytest_summary(result.output) or 'no pytest summary'} "
          f"(boot to power-off {result.seconds:.0f} s{', killed at the timeout' if result.timed_out else ''})")
    return 1 if result.exit_code is None else result.exit_code


if __name__ == "__main__":
    sys.exit(main())
