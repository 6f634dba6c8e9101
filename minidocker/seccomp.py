"""seccomp: which system calls the container may make (chapter 1, the kernel's seccomp filters).

Namespaces change what a process *sees*, capabilities what root *may do*;
seccomp narrows the door itself.  seccomp(2): a process hands the kernel a
small program, a "Berkeley Packet Filter" (BPF), that the kernel runs on
every system call the process makes from then on.  The program looks at the
call's number and arguments and answers: allow it, or fail it with an errno
(or kill the process).  "If fork(2) or clone(2) is allowed by the filter, any
child processes will be constrained to the same system call filters as the
parent.  If execve(2) is allowed, the existing filters will be preserved across
a call to execve(2)" -- so a filter installed before the container's command
starts stays with everything it runs, and no process can remove it.

Why, when capabilities already stop root?  The kernel is large, and not all of
it is namespaced or checks a capability: the keyring (keyctl, add_key,
request_key) is shared with the host, and a bug in a rarely used call is
a way into the kernel for any process.  Docker's answer is its default
profile: an allow-list of the ~360 calls that ordinary programs make;
everything else fails with EPERM.  Some calls are allowed only when the
container also has the capability they belong to (mount with CAP_SYS_ADMIN,
clock_settime with CAP_SYS_TIME): the filter is computed from the container's
capability set, so ``--cap-add SYS_TIME`` opens both doors at once.

The profile below is Docker's default (moby's profiles/seccomp/default.json),
written as our own Python data: groups of names with the reason for each rule.
Compiling a profile to BPF is not the lesson: libseccomp does it (through the
``pyseccomp`` package), once per (profile, architecture, capabilities), and
the program is cached in /var/cache/minidocker like compiled.py's binaries.
The container's start only reads those bytes and hands them to the kernel
(kernel.seccomp_set_filter).

    --security-opt seccomp=unconfined    no filter
    --security-opt seccomp=FILE          a profile in Docker's JSON format
    --privileged                         no filter, as in Docker
"""

import errno
import os

try:
    from _sha2 import sha256  # hashlib's built-in core: hashlib itself loads OpenSSL, 3 ms a start
except ImportError:
    from _sha256 import sha256  # Python < 3.12

from minidocker import kernel
from minidocker.compiled import CACHE_DIR
from minidocker.errors import MinidockerError

ALLOW = ("allow", 0)


def fail_with(err: int) -> tuple[str, int]:
    """The action "do not run the call; return -1 with errno `err`"."""
    return ("errno", err)


def rule(names: str, action=ALLOW, *, args=(), with_caps=(), without_caps=(), arches=(), not_arches=(),
         min_kernel: tuple[int, int] | None = None, why: str = "") -> dict:
    """One rule of a profile: what happens to the calls `names` (a space-separated list).

    The rule applies only if the container has every capability in `with_caps` and none of
    `without_caps`, the machine is one of `arches` (if given) and none of `not_arches`, and
    the kernel is at least `min_kernel`.  `args` are conditions on the call's arguments,
    (index, op, value) or (index, "masked_eq", mask, value); all of them must hold.
    """
    return {"names": names.split(), "action": action, "args": [tuple(a) for a in args],
            "with_caps": set(with_caps), "without_caps": set(without_caps), "arches": set(arches),
            "not_arches": set(not_arches), "min_kernel": min_kernel, "why": why}


# -- Docker's default profile, in our own words --------------------------------------------------

# Allowed to every container: what ordinary programs call.  (Names of calls that exist only on
# some architectures, like chown32 on 32-bit x86, are simply skipped where they do not exist.)
ALWAYS_ALLOWED = {
    "files and directories": """
        access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2 chown chown32 fchown
        fchown32 fchownat lchown lchown32 creat open openat openat2 name_to_handle_at close close_range
        dup dup2 dup3 fcntl fcntl64 flock link linkat symlink symlinkat readlink readlinkat rename renameat
        renameat2 unlink unlinkat mkdir mkdirat mknod mknodat rmdir stat stat64 lstat lstat64 fstat fstat64
        fstatat64 newfstatat statx statfs statfs64 fstatfs fstatfs64 getdents getdents64 truncate
        truncate64 ftruncate ftruncate64 umask utime utimes utimensat utimensat_time64 futimesat
        getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat listxattr llistxattr
        flistxattr listxattrat removexattr lremovexattr fremovexattr removexattrat fanotify_mark
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch listmount statmount""",
    "reading and writing": """
        read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2 lseek _llseek sendfile
        sendfile64 splice tee vmsplice copy_file_range fallocate fadvise64 fadvise64_64 readahead
        cachestat fsync fdatasync sync syncfs sync_file_range msync pipe pipe2 ioctl
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64""",
    "waiting for many things at once": """
        select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64 epoll_create epoll_create1
        epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2 eventfd eventfd2
        futex futex_time64 futex_waitv futex_wait futex_wake futex_requeue""",
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore mlock mlock2 mlockall munlock munlockall
        membarrier memfd_create memfd_secret remap_file_pages pkey_alloc pkey_free pkey_mprotect
        map_shadow_stack mseal process_mrelease""",
    "processes and threads": """
        fork vfork execve execveat exit exit_group wait4 waitid waitpid getpid getppid gettid getpgrp
        getpgid setpgid getsid setsid set_tid_address set_robust_list get_robust_list rseq
        get_thread_area set_thread_area prctl getrlimit setrlimit ugetrlimit prlimit64 getrusage
        pidfd_open uname sysinfo getrandom restart_syscall uretprobe riscv_hwprobe seccomp
        landlock_create_ruleset landlock_add_rule landlock_restrict_self""",
    "users, groups and capabilities (within what the process already has)": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32
        getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32
        setregid setregid32 setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid
        setfsgid32 setgroups setgroups32 capget capset""",
    "signals": """
        kill tkill tgkill pidfd_send_signal rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo sigaltstack
        sigprocmask sigreturn signalfd signalfd4 pause alarm""",
    "reading the clock, sleeping, timers": """
        clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_nanosleep
        clock_nanosleep_time64 clock_adjtime clock_adjtime64 adjtimex gettimeofday time times nanosleep
        getitimer setitimer timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
        timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64""",
    "scheduling": """
        sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam
        sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min
        sched_rr_get_interval sched_rr_get_interval_time64 getpriority setpriority ioprio_get ioprio_set
        getcpu""",
    "sockets (socket itself: below)": """
        socketpair bind connect listen accept accept4 getsockname getpeername getsockopt setsockopt
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64 shutdown socketcall""",
    "System V IPC and POSIX message queues (both namespaced: --ipc)": """
        ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl shmget shmat
        shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive
        mq_timedreceive_time64 mq_notify mq_getsetattr""",
}

# The mask of the namespace flags of clone(2): NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET.
NAMESPACE_FLAGS = 0x7E020000

# Allowed only in some cases; checked in this order (the first rule that allows a call wins).
CONDITIONAL = [
    rule("ptrace process_vm_readv process_vm_writev", min_kernel=(4, 8),
         why="before Linux 4.8, ptrace could be used to get around seccomp itself"),
    rule("socket", args=[(0, "lt", 38)], why="every address family below AF_ALG (38) ..."),
    rule("socket", args=[(0, "eq", 39)], why="... and AF_NFC (39) ..."),
    rule("socket", args=[(0, "gt", 40)], why="... and above AF_VSOCK (40): the kernel crypto API and "
                                             "vsock (talking to the hypervisor) are shut"),
    *[rule("personality", args=[(0, "eq", persona)], why=f"personality {meaning} only")
      for persona, meaning in [(0x0, "PER_LINUX"), (0x8, "UNAME26"), (0x20000, "ADDR_NO_RANDOMIZE"),
                               (0x20008, "UNAME26|ADDR_NO_RANDOMIZE"), (0xFFFFFFFF, "query")]],
    rule("sync_file_range2 swapcontext", arches=["ppc64le"], why="this machine's own calls"),
    rule("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
         arches=["arm", "arm64"], why="this machine's own calls"),
    rule("arch_prctl", arches=["amd64", "x32"], why="this machine's own calls"),
    rule("modify_ldt", arches=["amd64", "x32", "x86"], why="this machine's own calls"),
    rule("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", arches=["s390", "s390x"],
         why="this machine's own calls"),
    rule("riscv_flush_icache", arches=["riscv64"], why="this machine's own calls"),
    # What a capability allows, seccomp allows too -- only with that capability.
    rule("open_by_handle_at", with_caps=["DAC_READ_SEARCH"],
         why="a file handle opens any file of the filesystem, from outside the container's root too "
             "(the 'shocker' escape of 2014)"),
    rule("""mount umount umount2 mount_setattr move_mount open_tree fsopen fsconfig fsmount fspick unshare setns
            clone clone3 sethostname setdomainname bpf perf_event_open fanotify_init lookup_dcookie quotactl
            quotactl_fd syslog lsm_get_self_attr lsm_set_self_attr lsm_list_modules""",
         with_caps=["SYS_ADMIN"], why="mounts, new namespaces and other system administration"),
    rule("clone", args=[(0, "masked_eq", NAMESPACE_FLAGS, 0)], without_caps=["SYS_ADMIN"],
         not_arches=["s390", "s390x"],
         why="fork and threads yes; new namespaces (CLONE_NEWUSER ...) no: a user namespace makes "
             "its creator root again, inside, and opens kernel code written for root"),
    rule("clone", args=[(1, "masked_eq", NAMESPACE_FLAGS, 0)], without_caps=["SYS_ADMIN"],
         arches=["s390", "s390x"], why="the same; on s390 the flags are clone's second argument"),
    rule("clone3", fail_with(errno.ENOSYS), without_caps=["SYS_ADMIN"],
         why="clone3 passes its flags in memory, where a filter cannot look; ENOSYS makes the C library "
             "fall back to clone, whose flags it can check"),
    rule("reboot", with_caps=["SYS_BOOT"]),
    rule("chroot", with_caps=["SYS_CHROOT"]),
    rule("init_module finit_module delete_module", with_caps=["SYS_MODULE"]),
    rule("acct", with_caps=["SYS_PACCT"]),
    rule("ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd process_madvise", with_caps=["SYS_PTRACE"]),
    rule("iopl ioperm", with_caps=["SYS_RAWIO"]),
    rule("settimeofday stime clock_settime clock_settime64", with_caps=["SYS_TIME"],
         why="the clock is not namespaced: setting it sets the host's"),
    rule("vhangup", with_caps=["SYS_TTY_CONFIG"]),
    rule("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", with_caps=["SYS_NICE"]),
    rule("syslog", with_caps=["SYSLOG"]),
    rule("bpf", with_caps=["BPF"]),
    rule("perf_event_open", with_caps=["PERFMON"]),
]

# Denied by the default action, EPERM -- and why they are not on the list.  (For the learner and
# the tests: the filter needs no rule for them.)
DENIED_WHY = {
    "keyctl add_key request_key": "the kernel keyring is not namespaced: a container would share the host's keys",
    "bpf": "loads programs into the kernel; allowed only with CAP_SYS_ADMIN or CAP_BPF",
    "perf_event_open": "reads what other processes and the kernel do; allowed only with CAP_SYS_ADMIN or "
                       "CAP_PERFMON",
    "kexec_load kexec_file_load": "loads a new kernel to boot into",
    "open_by_handle_at": "opens files outside the container's root; allowed only with CAP_DAC_READ_SEARCH",
    "init_module finit_module delete_module": "kernel modules are the host's kernel; only with CAP_SYS_MODULE",
    "clock_settime settimeofday stime clock_settime64": "the host's clock; only with CAP_SYS_TIME",
    "mount umount2 unshare setns": "only with CAP_SYS_ADMIN",
    "ptrace": "before Linux 4.8 (and without CAP_SYS_PTRACE): tracing could get around seccomp",
    "personality": "except the harmless personas above: old Linux ABIs disable protections "
                   "(READ_IMPLIES_EXEC makes all memory executable)",
    "iopl ioperm": "direct access to I/O ports; only with CAP_SYS_RAWIO",
    "swapon swapoff": "the host's swap",
    "userfaultfd": "lets a process stall the kernel in the middle of a copy: a favourite tool of exploits",
    "io_uring_setup io_uring_enter io_uring_register": "a second way into the kernel that seccomp cannot see "
                                                       "into, and a long list of bugs",
    "nfsservctl create_module get_kernel_syms query_module uselib vm86 vm86old":
        "obsolete or removed",
}

DEFAULT_PROFILE = {
    "name": "Docker's default profile",
    "default_action": fail_with(errno.EPERM),
    "rules": [rule(names, why=group) for group, names in ALWAYS_ALLOWED.items()] + CONDITIONAL,
}

# os.uname().machine -> the name a profile's "arches" use (Go's, as in Docker's profiles) ...
MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "i386": "x86", "armv7l": "arm",
                "s390x": "s390x", "ppc64le": "ppc64le", "riscv64": "riscv64", "loongarch64": "loong64"}
# ... and the instruction sets a filter must cover there: a 64-bit x86 process can also make
# 32-bit x86 (int 0x80) and x32 calls, each with its own numbers (Docker's archMap).
FILTER_ARCHES = {"amd64": ["X86_64", "X86", "X32"], "arm64": ["AARCH64", "ARM"], "x86": ["X86"],
                 "arm": ["ARM"], "s390x": ["S390X", "S390"], "ppc64le": ["PPC64LE"], "riscv64": ["RISCV64"]}
KNOWN_ARCHES = {"NATIVE", "X86_64", "X86", "X32", "AARCH64", "ARM", "S390X", "S390", "PPC64LE", "RISCV64"}


# -- choosing, resolving, compiling (on the host, before the container's processes are forked) -------


def program_for(host_config: dict, capability_set: set[str]) -> bytes | None:
    """The BPF program the container's processes get, or None for no filter at all.

    `capability_set` is the container's (capabilities.resolve): rules that depend on a
    capability are in or out depending on it, as in Docker.
    """
    choice = chosen_profile(host_config.get("SecurityOpt") or [])
    if host_config.get("Privileged") or choice == "unconfined":
        return None
    if choice is None:
        profile = DEFAULT_PROFILE
    else:
        from minidocker import jsoncore

        profile = from_docker_json(jsoncore.loads(choice), "the container's seccomp profile")
    machine = os.uname().machine
    arch = MACHINE_ARCH.get(machine, machine)
    return compiled_program(resolve(profile, arch, capability_set, kernel_version()), arch)


def chosen_profile(security_opt: list[str]) -> str | None:
    """From HostConfig.SecurityOpt: None (the default profile), "unconfined" or a profile's JSON text."""
    for opt in security_opt:
        if opt.startswith("seccomp="):
            return opt.removeprefix("seccomp=")
    return None


def kernel_version() -> tuple[int, int]:
    """'6.1.0-13-amd64' -> (6, 1)."""
    major, _, rest = os.uname().release.partition(".")
    minor = rest[:len(rest) - len(rest.lstrip("0123456789"))]  # its leading digits: '15-rc1' -> '15'
    return int(major), int(minor or 0)


def resolve(profile: dict, arch: str, capability_set: set[str], kernel: tuple[int, int]) -> dict:
    """The rules that apply to this machine and this capability set, as Docker decides it:
    a rule is kept only if the container has all its `with_caps` and none of its `without_caps`."""
    kept = []
    for r in profile["rules"]:
        if r["arches"] and arch not in r["arches"] or arch in r["not_arches"]:
            continue
        if not r["with_caps"] <= capability_set or r["without_caps"] & capability_set:
            continue
        if r["min_kernel"] and kernel < r["min_kernel"]:
            continue
        kept.append((r["names"], r["action"], r["args"]))
    return {"default_action": profile["default_action"], "rules": kept,
            "arches": profile.get("arches") or FILTER_ARCHES.get(arch, ["NATIVE"])}


def compiled_program(resolved: dict, arch: str, cache_dir: str = CACHE_DIR) -> bytes:
    """The BPF program for `resolved`, from the cache, or compiled by libseccomp and cached.

    The cache key is a hash of what is compiled (the resolved rules) and of this file, the
    compiler's code.  A hit costs a stat and a read: no libseccomp, no pyseccomp.
    """
    with open(__file__, "rb") as source:
        key = sha256(source.read() + repr((sorted(resolved.items()), arch)).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"seccomp-{arch}-{key}.bpf")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    return _compile_and_cache(resolved, cache_dir, path)


def _compile_and_cache(resolved: dict, cache_dir: str, path: str) -> bytes:
    """libseccomp turns the rules into BPF for each architecture of the filter."""
    import tempfile

    try:
        import pyseccomp
    except (ImportError, OSError) as e:  # OSError: no libseccomp.so.2 to load
        raise MinidockerError(f"cannot compile the seccomp profile: {e} (pip install pyseccomp; "
                              f"apt-get install libseccomp2)") from None
    default = _action_code(pyseccomp, resolved["default_action"])
    bpf_filter = pyseccomp.SyscallFilter(default)
    for arch in resolved["arches"]:
        if arch != "NATIVE" and not bpf_filter.exist_arch(getattr(pyseccomp.Arch, arch)):
            bpf_filter.add_arch(getattr(pyseccomp.Arch, arch))
    ops = {"ne": pyseccomp.NE, "lt": pyseccomp.LT, "le": pyseccomp.LE, "eq": pyseccomp.EQ,
           "ge": pyseccomp.GE, "gt": pyseccomp.GT, "masked_eq": pyseccomp.MASKED_EQ}
    for names, action, args in resolved["rules"]:
        code = _action_code(pyseccomp, action)
        if code == default:
            continue  # libseccomp refuses a rule that changes nothing
        conditions = [pyseccomp.Arg(index, ops[op], *values) for index, op, *values in args]
        # All conditions of a rule must hold -- unless two test the same argument: then, as runc
        # reads a profile, each is a rule of its own, and either one allows the call.
        indexes = [c[0] for c in args]
        groups = [conditions] if len(set(indexes)) == len(indexes) else [[c] for c in conditions]
        for name in names:
            number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if number == -1:
                continue  # a call this libseccomp does not know (newer than it): skipped, as runc does
            for group in groups:
                bpf_filter.add_rule(code, number, *group)
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".seccomp-", dir=cache_dir)
    try:
        with os.fdopen(fd, "w+b") as f:
            bpf_filter.export_bpf(f)
            f.seek(0)
            program = f.read()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic: a concurrent start sees no program or a whole one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return program


def _action_code(pyseccomp, action: tuple[str, int]) -> int:
    kind, err = action
    if kind == "errno":
        return pyseccomp.ERRNO(err)
    return {"allow": pyseccomp.ALLOW, "kill_thread": pyseccomp.KILL_THREAD, "kill_process": pyseccomp.KILL_PROCESS,
            "trap": pyseccomp.TRAP, "log": pyseccomp.LOG}[kind]


# -- in the container ------------------------------------------------------------------------------


def install(program: bytes | None) -> None:
    """Hand the filter to the kernel (needs CAP_SYS_ADMIN or no_new_privs); None: no filter."""
    if program is not None:
        kernel.seccomp_set_filter(program, why="only the system calls of the seccomp profile: the others "
                                               "fail (EPERM) before the kernel runs them")


# -- Docker's JSON format (--security-opt seccomp=FILE) --------------------------------------------

DOCKER_ACTIONS = {"SCMP_ACT_ALLOW": "allow", "SCMP_ACT_ERRNO": "errno", "SCMP_ACT_KILL": "kill_thread",
                  "SCMP_ACT_KILL_THREAD": "kill_thread", "SCMP_ACT_KILL_PROCESS": "kill_process",
                  "SCMP_ACT_TRAP": "trap", "SCMP_ACT_LOG": "log"}
DOCKER_OPS = {"SCMP_CMP_NE": "ne", "SCMP_CMP_LT": "lt", "SCMP_CMP_LE": "le", "SCMP_CMP_EQ": "eq",
              "SCMP_CMP_GE": "ge", "SCMP_CMP_GT": "gt", "SCMP_CMP_MASKED_EQ": "masked_eq"}


def read_profile_option(path: str) -> str:
    """--security-opt seccomp=PATH -> "seccomp=<the profile, compact JSON>", as Docker's CLI stores it.

    The file is read and checked now, at create: the record keeps the profile itself, so
    a later edit or removal of the file does not change the container.
    """
    import json  # only for a profile file: a default start does not pay for it

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise MinidockerError(f"opening seccomp profile ({path}) failed: open {path}: {e.strerror.lower()}") \
            from None
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise MinidockerError(f"compacting json for seccomp profile ({path}) failed: {e}") from None
    from_docker_json(document, f"seccomp profile ({path})")  # every mistake is found here, at create
    return "seccomp=" + json.dumps(document, separators=(",", ":"))


def from_docker_json(document, what: str) -> dict:
    """A profile in Docker's JSON format, turned into ours (the subset Docker's own default.json uses)."""

    def bad(problem: str):
        return MinidockerError(f"decoding {what} failed: {problem}")

    def action(name, err) -> tuple[str, int]:
        if name not in DOCKER_ACTIONS:
            raise bad(f"unknown action {name!r}")
        if not isinstance(err, int) or not 0 <= err < 4096:
            raise bad(f"an errno must be a number from 0 to 4095, not {err!r}")
        return (DOCKER_ACTIONS[name], err if name == "SCMP_ACT_ERRNO" else 0)

    def caps(names) -> list[str]:
        return [str(c).upper().removeprefix("CAP_") for c in names or []]

    def min_kernel(text) -> tuple[int, int] | None:
        if text is None:
            return None
        try:
            major, minor = str(text).split(".")[:2]
            return int(major), int(minor)
        except ValueError:
            raise bad(f'minKernel must be like "4.8", not {text!r}') from None

    if not isinstance(document, dict):
        raise bad("a profile is a JSON object")
    default_action = action(document.get("defaultAction"), document.get("defaultErrnoRet", errno.EPERM))
    # "architectures": the filter's list; or "archMap" (default.json): this machine's entry and its
    # companions; neither: this machine's own instruction set only.
    names = document.get("architectures") or []
    native = FILTER_ARCHES.get(MACHINE_ARCH.get(os.uname().machine, ""), ["NATIVE"])[0]
    for entry in document.get("archMap") or []:
        if isinstance(entry, dict) and str(entry.get("architecture")).removeprefix("SCMP_ARCH_") == native:
            names = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    arches = [str(name).removeprefix("SCMP_ARCH_") for name in names] or ["NATIVE"]
    for arch in arches:
        if arch not in KNOWN_ARCHES:
            raise bad(f"unknown architecture {arch!r}")
    rules = []
    for item in document.get("syscalls") or []:
        if not isinstance(item, dict):
            raise bad("each entry of syscalls is an object")
        names = item.get("names") or ([item["name"]] if item.get("name") else [])
        if not names or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad(f"a syscalls entry needs a list of names: {item}")
        args = []
        for arg in item.get("args") or []:
            if not isinstance(arg, dict) or arg.get("op") not in DOCKER_OPS or arg.get("index") not in range(6):
                raise bad(f"bad argument condition {arg} (index 0 to 5, op one of {', '.join(DOCKER_OPS)})")
            op = DOCKER_OPS[arg["op"]]
            values = [arg.get("value", 0), arg.get("valueTwo", 0)] if op == "masked_eq" else [arg.get("value", 0)]
            if not all(isinstance(v, int) and 0 <= v < 2 ** 64 for v in values):
                raise bad(f"argument values are numbers from 0 to 2^64-1: {arg}")
            args.append((arg["index"], op, *values))
        includes, excludes = item.get("includes") or {}, item.get("excludes") or {}
        if excludes.get("minKernel"):
            raise bad("excludes.minKernel is not supported")
        rules.append(rule(" ".join(names), action(item.get("action"), item.get("errnoRet", errno.EPERM)), args=args,
                          with_caps=caps(includes.get("caps")), without_caps=caps(excludes.get("caps")),
                          arches=includes.get("arches") or (), not_arches=excludes.get("arches") or (),
                          min_kernel=min_kernel(includes.get("minKernel")), why=item.get("comment", "")))
    return {"name": what, "default_action": default_action, "rules": rules, "arches": arches}
