"""Launching: how an ordinary fork(2) becomes a container (chapters 1 and 2).

Three processes take part, as in runc:

    minidocker (the supervisor)          intermediate              container init
    ---------------------------          ------------              --------------
    fork() ---------------------------->  moves itself into the v1 cgroups
                                          unshare(--user)?
    write uid_map/gid_map   <-- asks --   (wait)
                                          unshare(--pid --mount --uts --ipc --net)
                                          fork() -------------->   PID 1 of the new PID namespace
    learns init's PID  <---------------   exit                     mount overlay, /proc, /dev, /sys
    moves init into the v2 cgroup                                  pivot_root (or chroot)
    (init is re-parented to minidocker,                            hostname, user, workdir
     a "child subreaper")                                          (wait)
    go!  ------------------------------------------------------>   execve(the command)

Why two forks?  ``unshare(CLONE_NEWPID)`` does not move the caller into the
new PID namespace -- only its next child is born there, as PID 1.  And a user
namespace must exist *before* the others so that it owns them.

Who moves the container into its cgroup?  Moving a whole process (its PID
into ``cgroup.procs``) makes the kernel hold up every fork on the machine, and
the first such move waits for an RCU grace period: about 10 ms of doing
nothing.  A v1 hierarchy also lets a single thread move (0 into ``tasks``),
which needs no such wait: the intermediate, one thread fresh from fork, moves
itself that way, and init is born inside.  v2 moves whole processes only, so
there minidocker moves init while init sets up its mounts, and the wait
overlaps them.  Either way the command starts inside the cgroup: init waits
for "go!", and minidocker sends it only after the move.

The processes talk over a socketpair: the forked ones send their requests and
their errors (with the explain-trace steps they performed since their last
message riding along); minidocker answers.  The container's
end is close-on-exec, so when ``execve`` succeeds minidocker simply sees the
socket close.
"""

# Everything the container's processes use after pivot_root is imported here, up front:
# once the host's tree is detached, the host's Python library is no longer reachable.
import _socket  # the socket module's C core: socket.py itself costs a container start 3 ms to import
import errno
import fcntl
import os
import struct
import termios

from minidocker import confinement, init, jsoncore, kernel, rootfs, seccomp, trace
from minidocker.cgroups import devices
from minidocker.errors import CannotExecute, CommandNotFound, MinidockerError
from minidocker.kernel import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER,
                               CLONE_NEWUTS)

# --userns remap: container uid/gid 0..65535 are host 100000..165535, as Docker's default range.
USERNS_BASE, USERNS_SIZE = 100000, 65536
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Channel:
    """One message (a JSON object) per datagram, over a SOCK_SEQPACKET socketpair.

    A forked process's explain-trace steps are not sent one by one: each message
    carries the steps recorded since the last one ("steps"), and the receiver
    adopts them -- a container start is then a handful of messages, not sixty.

    A datagram is received whole or cut (the rest is lost), so the receiver
    must know how big one can be: MESSAGE_MAX.  A bigger message (a
    command line of a megabyte, in the trace of its execve) travels in a
    memfd(2), an anonymous file in memory, whose descriptor goes along with
    a one-byte datagram, LARGE.  One datagram either way, so messages that
    two processes send at once on the same socket never interleave.
    """

    MESSAGE_MAX = 65536
    LARGE = b"@"  # a JSON object begins with "{": this datagram's message is in the first descriptor passed

    def __init__(self, sock):
        self.sock = sock
        self.carries_trace = False

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, **message) -> None:
        self._send(message, [])

    def send_fd(self, fd: int, **message) -> None:
        """Pass an open file descriptor to the other process (SCM_RIGHTS, unix(7))."""
        self._send(message, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])  # one C int

    def _send(self, message: dict, ancillary: list) -> None:
        if self.carries_trace:
            message["steps"] = [step.as_list() for step in trace.take()]
        data = jsoncore.dumps(message).encode()
        if len(data) <= self.MESSAGE_MAX:
            self.sock.sendmsg([data], ancillary)
            return
        memfd = os.memfd_create("minidocker-message", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(memfd, view):]
            os.lseek(memfd, 0, os.SEEK_SET)
            fds = struct.pack("i", memfd) + b"".join(passed for _level, _kind, passed in ancillary)
            self.sock.sendmsg([self.LARGE], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        finally:
            os.close(memfd)  # the receiver has its own copy of the descriptor now

    def flush_trace(self) -> None:
        """Send the steps recorded so far now (before a fork or an exec would lose or copy them)."""
        if self.carries_trace and trace.steps():
            self.send()

    def recv(self) -> dict | None:
        int_size = struct.calcsize("i")
        data, ancillary, flags, _addr = self.sock.recvmsg(self.MESSAGE_MAX, _socket.CMSG_SPACE(2 * int_size))
        if not data:
            return None
        fds = []
        for level, kind, passed in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += [fd for fd, in struct.iter_unpack("i", passed[:len(passed) - len(passed) % int_size])]
        if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):  # cannot happen between two minidockers
            raise MinidockerError("internal error: a message between minidocker's processes was cut")
        if data == self.LARGE:
            memfd = fds.pop(0)
            with os.fdopen(memfd, "rb") as f:
                data = f.read()
        message = jsoncore.loads(data)
        if fds:
            message["fd"] = fds[0]
        for step in message.pop("steps", []):
            trace.adopt(step)
        return message

    def expect(self, key: str) -> None:
        message = self.recv()
        if not message or key not in message:
            os._exit(125)  # minidocker went away or gave up: stop quietly

    def forward_trace(self) -> None:
        """In a forked process: label its steps "container" and send them along with its messages."""
        trace.become("container")
        self.carries_trace = True

    def close(self) -> None:
        self.sock.close()


class Stdio:
    """The container's stdin, stdout, stderr (fds); with tty=True they are made inside it (see open_console)."""

    def __init__(self, stdin: int, stdout: int, stderr: int, tty: bool = False):
        self.stdin, self.stdout, self.stderr, self.tty = stdin, stdout, stderr, tty


def namespace_flags(host_config: dict) -> int:
    """Every namespace on, unless a --xxx host flag asks to share the host's."""
    flags = CLONE_NEWNS
    for mode_key, flag in [("PidMode", CLONE_NEWPID), ("UTSMode", CLONE_NEWUTS),
                           ("IpcMode", CLONE_NEWIPC), ("NetworkMode", CLONE_NEWNET)]:
        if host_config.get(mode_key) != "host":
            flags |= flag
    if host_config.get("UsernsMode") == "remap":
        flags |= CLONE_NEWUSER
    return flags


def launch(record: dict, container_dir: str, lower_dirs: list[str], cgroup, stdio: Stdio,
           on_ready=None, on_console=None) -> int:
    """Create the container's processes; return the host PID of its init once it has exec'd.

    Raises CommandNotFound (127), CannotExecute (126) or MinidockerError (125)
    with the container's own one-line reason if it could not start.
    `on_ready(init_pid)` runs once the command has been exec'd (used by --explain);
    `on_console(fd)` receives the master side of the container's terminal (with tty).
    """
    host_config = record["HostConfig"]
    # Here, on the host: after pivot_root the cache and the compiler are out of the container's reach.
    seccomp_program = seccomp.program_for(host_config, confinement.container_capabilities(host_config))
    parent, child = Channel.pair()
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)  # orphaned container init comes back to us
    intermediate = os.fork()
    if intermediate == 0:
        parent.close()
        _run_child(lambda: _intermediate(record, container_dir, lower_dirs, cgroup, stdio, child, seccomp_program),
                   child)
    child.close()
    init_pid, failure = None, None
    try:
        while (message := parent.recv()) is not None:
            if "userns" in message:
                _write_id_maps(intermediate)
                parent.send(mapped=True)
            elif "pid" in message:
                init_pid = message["pid"]
                cgroup.move_v2(init_pid)  # while init sets up its mounts (see above)
            elif "console" in message:
                on_console(message["fd"])
            elif "ready" in message:
                parent.send(go=True)
            elif "error" in message:
                failure = message
    except BaseException:
        parent.close()  # init sees the socket close and gives up
        if init_pid:
            try:  # it may have exec'd already: then it would not look at the socket, and we would wait forever
                kernel.kill(init_pid, 9, why="minidocker failed while starting the container: stop it")
            except OSError:
                pass
            _reap(init_pid)
        raise
    finally:
        parent.close()
        os.waitpid(intermediate, 0)
    if failure:
        if init_pid:
            _reap(init_pid)
        error_class = {126: CannotExecute, 127: CommandNotFound}.get(failure["exit"], MinidockerError)
        raise error_class(failure["error"])
    if on_ready:
        on_ready(init_pid)
    return init_pid


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _run_child(body, channel: Channel) -> None:
    """Run a forked process's work; never return into minidocker's own code."""
    try:
        try:
            body()
        except MinidockerError as e:
            channel.send(error=str(e), exit=e.exit_code)
        except (BrokenPipeError, ConnectionResetError):
            pass  # minidocker went away (killed): nobody is left to tell; stop quietly
        except OSError as e:
            channel.send(error=str(e), exit=125)
        except BaseException as e:  # a bug: still one line, never a hung minidocker
            channel.send(error=f"container setup failed: {type(e).__name__}: {e}", exit=125)
    except OSError:
        pass  # the report itself could not be sent: minidocker is gone
    os._exit(125)


def _write_id_maps(pid: int) -> None:
    """user_namespaces(7): 'ID-inside-ns ID-outside-ns length', written once by a privileged process."""
    mapping = f"0 {USERNS_BASE} {USERNS_SIZE}\n"
    kernel.write(f"/proc/{pid}/uid_map", mapping, why="container uid 0..65535 = host uid 100000..165535")
    kernel.write(f"/proc/{pid}/gid_map", mapping, why="the same for group IDs")


def _intermediate(record, container_dir, lower_dirs, cgroup, stdio, channel: Channel, seccomp_program) -> None:
    channel.forward_trace()
    cgroup.move_self_v1()  # init, forked below, is born in there (see above)
    flags = namespace_flags(record["HostConfig"])
    if flags & CLONE_NEWUSER:
        kernel.unshare(CLONE_NEWUSER, why="a user namespace first, so that it owns all the others")
        channel.send(userns=True)
        channel.expect("mapped")
        kernel.set_identity(0, 0, why="become root of the new user namespace (host uid 100000)")
    kernel.unshare(flags & ~CLONE_NEWUSER, why="new namespaces; the next child is PID 1 of the new PID namespace")
    channel.flush_trace()  # the child would inherit a copy of them
    try:
        init_pid = os.fork()
    except BlockingIOError:  # EAGAIN: we are in the cgroup already, and its pids.max is reached
        raise MinidockerError(f"fork: resource temporarily unavailable: --pids-limit "
                              f"{record['HostConfig'].get('PidsLimit')} leaves no room for the container's "
                              f"init (minidocker needs 2 processes to start one)") from None
    if init_pid:
        channel.send(pid=init_pid)
        os._exit(0)
    _run_child(lambda: _container_init(record, container_dir, lower_dirs, stdio, flags, channel, seccomp_program),
               channel)


def _container_init(record, container_dir, lower_dirs, stdio, flags, channel: Channel, seccomp_program) -> None:
    host_config, config = record["HostConfig"], record["Config"]
    kernel.set_undumpable(why="until execve, this process runs the host's python: keep its /proc/PID/exe out of reach")
    root = f"{container_dir}/rootfs"
    rootfs.make_mounts_private()
    rootfs.mount_overlay(lower_dirs, f"{container_dir}/upper", f"{container_dir}/work", root,
                         in_user_namespace=bool(flags & CLONE_NEWUSER))
    rootfs.mount_proc(root)
    rootfs.mount_dev(root, can_mknod=not flags & CLONE_NEWUSER, private_ipc=bool(flags & CLONE_NEWIPC))
    if host_config.get("Devices") or host_config.get("Privileged"):
        rootfs.make_devices(root, devices.custom_devices(host_config), can_mknod=not flags & CLONE_NEWUSER)
    rootfs.mount_sys(root, read_only=not host_config.get("Privileged"))
    rootfs.bind_etc_files(root, container_dir)
    if flags & CLONE_NEWNET:
        kernel.bring_loopback_up(why="a new network namespace has only a loopback device, and it is down")
    if flags & CLONE_NEWUTS:
        kernel.sethostname(config["Hostname"], why="the UTS namespace has its own hostname")
    if host_config.get("ChangeRoot") == "chroot":
        rootfs.chroot_into(root)
    else:
        _check_put_old_is_free(root)
        rootfs.pivot_into(root)
    if not host_config.get("Privileged"):
        rootfs.mask_host_paths()
    if stdio.tty:
        stdio = open_console(channel)

    uid, gid, home = lookup_user(config.get("User") or "")
    env = _environment(config, home)
    workdir = config.get("WorkingDir") or "/"
    if workdir != "/":
        enter_working_directory(workdir)
    _attach_stdio(stdio)
    confinement.confine(host_config, uid, gid, seccomp_program)
    argv = [record["Path"]] + record["Args"]
    executable = find_executable(argv[0], env)
    channel.send(ready=True)
    channel.expect("go")
    if host_config.get("Init"):
        trace.record("# fork(): the command becomes PID 2; PID 1 stays minidocker's init",
                     "--init: PID 1 reaps orphaned zombies and passes signals on to the command")
        channel.flush_trace()  # the child would inherit a copy of it
        command_pid = os.fork()
        if command_pid:
            channel.close()
            init.reap_and_forward(command_pid)  # never returns
    exec_command(executable, argv, env, channel)


def open_console(channel: Channel) -> Stdio:
    """A pseudo-terminal made *inside* the container, so its name (/dev/pts/0) exists there.

    The master side goes back to minidocker over the socket, as runc's
    "console socket" does; the container keeps the slave as its terminal.
    """
    master, slave = os.openpty()  # opens /dev/ptmx -- now the container's own devpts
    trace.record(f"# openpty() -> {os.ttyname(slave)}", "a terminal inside the container; its master goes to minidocker")
    channel.send_fd(master, console=True)
    os.close(master)
    return Stdio(slave, slave, slave, tty=True)


def _attach_stdio(stdio: Stdio) -> None:
    os.setsid()  # its own session: terminal signals reach it only through minidocker or its own tty
    for fd in os.listdir("/proc/self/fd"):  # nothing of minidocker's may leak into the container
        if int(fd) > 2:
            try:
                os.set_inheritable(int(fd), False)
            except OSError:
                pass
    for target, fd in enumerate((stdio.stdin, stdio.stdout, stdio.stderr)):
        os.dup2(fd, target)
    if stdio.tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _check_put_old_is_free(root: str) -> None:
    """pivot_into makes /.old_root, an empty directory, for the host's tree: an image may have put something there."""
    path = f"{root}/.old_root"
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        kind = "a symbolic link" if os.path.islink(path) else "a file"
    elif os.path.isdir(path) and os.listdir(path):
        kind = "a directory that is not empty"
    else:
        return
    raise MinidockerError(f"the image's /.old_root is {kind}: pivot_root(2) needs that name for an empty "
                          f"directory (run it with --chroot, or remove /.old_root from the image)")


def enter_working_directory(workdir: str) -> None:
    """-w: create the directory if the image lacks it, and go there; one line saying why when that fails."""
    try:
        kernel.mkdir(workdir, why="-w: the working directory is created if the image lacks it")
    except FileExistsError:  # the name is taken by something that is not a directory
        raise MinidockerError(f'chdir to cwd ("{workdir}") set in config.json failed: not a directory') from None
    except OSError as e:
        raise MinidockerError(f"mkdir {e.filename or workdir}: {os.strerror(e.errno).lower()}") from None
    try:
        kernel.chdir(workdir)
    except OSError as e:
        raise MinidockerError(f'chdir to cwd ("{workdir}") set in config.json failed: '
                              f"{os.strerror(e.errno).lower()}") from None


ID_MAX = 2**31 - 1  # Docker's range for -u's numbers; the kernel's IDs are 32 bits, and 2**32-1 means "none"


def _checked_id(number: str) -> int:
    if int(number) > ID_MAX:
        raise MinidockerError(f"uids and gids must be in range 0-{ID_MAX}")
    return int(number)


def lookup_user(spec: str) -> tuple[int, int, str]:
    """-u name|uid[:group|gid] -> (uid, gid, home), read from the container's own /etc/passwd."""
    user, _, group = spec.partition(":")
    uid, gid, home = 0, 0, "/root"
    if user:
        entry = _find_entry("/etc/passwd", user)
        if entry:
            uid, gid, home = _checked_id(entry[2]), _checked_id(entry[3]), entry[5]
        elif user.isdigit():
            uid, gid, home = _checked_id(user), 0, "/"
        else:
            raise MinidockerError(f"unable to find user {user}: no matching entries in passwd file")
    if group:
        entry = _find_entry("/etc/group", group)
        if entry:
            gid = _checked_id(entry[2])
        elif group.isdigit():
            gid = _checked_id(group)
        else:
            raise MinidockerError(f"unable to find group {group}: no matching entries in group file")
    return uid, gid, home


def _find_entry(path: str, name_or_id: str) -> list[str] | None:
    try:
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 3 and name_or_id in (fields[0], fields[2]):
                    return fields
    except OSError:
        pass
    return None


def _environment(config: dict, home: str) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": config["Hostname"], "HOME": home}
    if config.get("Tty"):
        env["TERM"] = "xterm"
    env.update(e.partition("=")[::2] for e in config.get("Env", []))
    return env


def find_executable(name: str, env: dict[str, str]) -> str:
    """execvp(3)'s search of $PATH, done here so a missing command gets Docker's message and 127."""
    if "/" in name:
        if not os.path.exists(name):
            raise CommandNotFound(f'exec: "{name}": stat {name}: no such file or directory')
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CommandNotFound(f'exec: "{name}": executable file not found in $PATH')


def exec_command(executable: str, argv: list[str], env: dict[str, str], channel: Channel) -> None:
    """execve(2): 'executes the program referred to by pathname ... replacing the calling process'."""
    kernel.reset_signals(why="Python ignores SIGPIPE and SIGXFSZ; the container's command must not inherit that")
    trace.record(f"exec {' '.join(argv)}", "replace this process by the container's command (execve)")
    channel.flush_trace()
    try:
        os.execve(executable, argv, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        channel.send(error=f'exec: "{argv[0]}": {os.strerror(e.errno).lower()}', exit=code)
        os._exit(code)
