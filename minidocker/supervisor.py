"""The supervisor: the process that sits beside a running container (chapter 2).

Docker gives each container a *shim* (containerd-shim): a small process that
is the container's parent, holds its stdin/stdout/stderr, writes its output
to the log, waits for it to exit and records the exit status.  minidocker's
supervisor is the same idea in one function, :func:`supervise`:

* ``minidocker run`` (attached) runs it right in the CLI process, echoing the
  output to your terminal and forwarding Ctrl-C and other signals;
* ``run -d`` and ``start`` fork it off as a daemon (``setsid``, double fork)
  that outlives the command, so the container keeps running after you get
  your prompt back.  Once the container runs, that daemon slims down: it
  execs the shim, a small C program (shim.c, compiled once and cached), which
  copies the output into the log (rotating it as logfile.py explains) and
  waits; when the container exits, the
  shim execs this module again (``python -m minidocker.supervisor``) to record
  the exit (:func:`finish`).
"""

import _signal as signal  # signal.py's C core: signal.py itself imports enum, ~6 ms of a container start
import os
import select
import sys
import termios

from minidocker import cgroups, images, jsoncore, launch, logfile, trace
from minidocker.cgroups import devices
from minidocker.errors import CannotExecute, CommandNotFound, Conflict, MinidockerError
from minidocker.init import exit_status
from minidocker.launch import Stdio
from minidocker.store import NEVER, Store, now

ATTACHED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
SHIM_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.c")


def cgroup_of(record: dict) -> cgroups.Cgroup:
    """The container's cgroup: <hierarchy>/<--cgroup-parent>/<id>."""
    return cgroups.find(record["Id"], parent=record["HostConfig"]["CgroupParent"])


def limits_of(host_config: dict) -> cgroups.Limits:
    return cgroups.Limits(memory=host_config.get("Memory") or None,
                          cpus=(host_config.get("NanoCpus") or 0) / 1e9 or None,
                          cpu_shares=host_config.get("CpuShares") or None,
                          pids=host_config.get("PidsLimit") or None)


def supervise(store: Store, cid: str, attach: bool, on_started=None, on_ready=None) -> int:
    """Start the container, pump its output, wait for it, record how it ended. Returns its exit code."""
    record = store.update(cid, _claim)  # from here on, our PID in the record says "being started"
    host_config, config = record["HostConfig"], record["Config"]
    container_dir = store.container_dir(cid)
    cgroup = streams = pid = None
    try:
        image = images.get(store, record["Image"])
        remapped = host_config.get("UsernsMode") == "remap"
        lower_dirs = images.shifted_layers(image, launch.USERNS_BASE) if remapped else image.layer_dirs
        log = _open_log(record)  # before anything runs: a container nobody can log is not started
        cgroup = cgroups.create(cid, limits_of(host_config), parent=host_config["CgroupParent"],
                                devices=devices.rules_for(host_config))
        streams = Streams(config, attach)
        try:
            pid = launch.launch(record, container_dir, lower_dirs, cgroup, streams.container_side, on_ready,
                                on_console=streams.console)
        finally:
            streams.close_container_side()

        def started(r):
            r["State"].update(Status="running", Running=True, Paused=False, Pid=pid, ExitCode=0, Error="",
                              OOMKilled=False, StartedAt=now(), FinishedAt=NEVER)

        store.update(cid, started)
        if on_started:
            on_started()
        if not attach:
            try:
                _exec_shim(store, record, pid, streams.outputs, shim_binary())  # does not return
            except MinidockerError:
                pass  # no shim and no gcc to build it: this supervisor waits itself, only bigger
        # Attached, Ctrl-C and friends are for the container (Docker's --sig-proxy), then ours again.
        previous = {sig: signal.signal(sig, lambda signum, _frame: _signal_quietly(pid, signum))
                    for sig in (ATTACHED_SIGNALS if attach else ())}
        try:
            with log:
                status = relay(pid, streams.outputs, log, streams.stdin_relay)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    except BaseException as e:  # whatever went wrong, leave no container, cgroup, descriptor or claim behind
        _give_up(store, cid, cgroup, streams, pid, e)
        raise
    return finish(store, cid, cgroup, status)


def _log_path(record: dict) -> str:
    """Where the output goes: container.log, or nowhere with --log-driver none (which has no LogPath)."""
    return record["LogPath"] or os.devnull


def _open_log(record: dict) -> logfile.LogWriter:
    path = _log_path(record)
    try:
        return logfile.LogWriter(path, *logfile.limits(record["HostConfig"]))
    except OSError as e:
        raise MinidockerError(f"cannot open the container's log {path}: {e.strerror}") from None


def _give_up(store: Store, cid: str, cgroup: cgroups.Cgroup | None, streams, pid: int | None,
             error: BaseException) -> None:
    """Starting or watching the container failed: stop whatever runs in its cgroup (a container
    nobody supervises would run on, unseen), remove the cgroup, and record why."""
    if streams:
        streams.close_ours()
    if cgroup:
        cgroup.kill_all()
        cgroup.destroy()  # waits until every process in it has exited
    if pid:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap PID 1 (unless relay() already did)
        except ChildProcessError:
            pass

    def failed(r):
        if r["State"]["Running"]:
            r["State"].update(Status="exited", Running=False, Paused=False, Pid=0, ExitCode=137, FinishedAt=now())
        r["State"]["SupervisorPid"] = 0
        if isinstance(error, MinidockerError):
            r["State"].update(Error=str(error), ExitCode=error.exit_code)

    try:
        store.update(cid, failed)
    except MinidockerError:
        pass  # removed meanwhile (rm -f)


def finish(store: Store, cid: str, cgroup: cgroups.Cgroup, status: int) -> int:
    """The container has exited with wait `status`: record it, remove its cgroup (and it, with --rm)."""
    code = exit_status(status)
    oom_killed = cgroup.oom_killed()
    if cgroup.pids():  # with --pid host, nothing else would stop what the command left running
        cgroup.kill_all()
    cgroup.destroy()

    def exited(r):
        r["State"].update(Status="exited", Running=False, Paused=False, Pid=0, ExitCode=code, OOMKilled=oom_killed,
                          FinishedAt=now(), SupervisorPid=0)

    if store.load(cid)["HostConfig"].get("AutoRemove"):
        store.delete(cid)  # --rm: straight away, without first writing a record nobody will read
    else:
        store.update(cid, exited)
    return code


def shim_binary() -> str:
    """The compiled shim (shim.c), built on first use; scripts/setup builds it ahead."""
    from minidocker import compiled  # only detached containers need it

    return compiled.compiled(SHIM_SOURCE, "the shim")


def _exec_shim(store: Store, record: dict, pid: int, outputs: dict, shim: str) -> None:
    """Become the shim (same PID: the container stays our child); it execs `finish` when the container exits."""
    for fd in outputs:
        os.set_inheritable(fd, True)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # where the finishing python finds us
    streams = ",".join(f"{fd}:{stream}" for fd, (stream, _echo) in outputs.items())
    finish_command = [sys.executable, "-S", "-m", "minidocker.supervisor", store.root, record["Id"]]
    max_size, max_files = logfile.limits(record["HostConfig"])
    os.execv(shim, [shim, _log_path(record), str(max_size), str(max_files), str(pid), streams, "--",
                    *finish_command])


def _claim(record: dict) -> None:
    """Write our PID and its start time into the record (under the store's lock), unless a live
    supervisor already has the container: two `start`s at once must not launch it twice."""
    if supervisor_alive(record):
        raise Conflict(f"container {record['Id'][:12]} is already being started or running "
                       f"(supervisor PID {record['State']['SupervisorPid']})")
    record["State"].update(SupervisorPid=os.getpid(), SupervisorStartTime=process_start_time(os.getpid()))
    for key in ("CreatorPid", "CreatorStartTime"):  # run's create marked it for prune: the supervisor has it now
        record["State"].pop(key, None)


def process_start_time(pid: int) -> int | None:
    """When the process started, in clock ticks after boot (field 22 of /proc/PID/stat, proc(5)).

    A PID alone does not name a process for long: once it exits the kernel hands
    the number to the next fork.  PID plus start time does.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has exited: not alive either


def supervisor_alive(record: dict) -> bool:
    """Is the supervisor the record names still that same process, alive?  (Not merely its PID.)"""
    pid = record["State"].get("SupervisorPid")
    if not pid:
        return False
    started = process_start_time(pid)
    return started is not None and started == record["State"].get("SupervisorStartTime", started)


def _signal_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


class Streams:
    """minidocker's side of a container's stdin/stdout/stderr.

    Without a terminal: three pipes; minidocker reads stdout and stderr
    separately, so `logs` can tell them apart.  With -t: one pseudo-terminal,
    made inside the container, whose master arrives later (`console`).
    """

    def __init__(self, config: dict, attach: bool):
        self.attach = attach
        self.interactive = attach and config.get("OpenStdin")
        self.outputs: dict[int, tuple[str, int | None]] = {}  # our read end -> (stream, echo fd or None)
        self.stdin_relay = None  # (our fd, the container's) when we copy stdin ourselves
        if config.get("Tty"):
            self.container_side = Stdio(-1, -1, -1, tty=True)
            return
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = 0 if self.interactive else os.open(os.devnull, os.O_RDONLY)
        self.container_side = Stdio(stdin, out_w, err_w)
        self.outputs = {out_r: ("stdout", 1 if attach else None), err_r: ("stderr", 2 if attach else None)}

    def console(self, master: int) -> None:
        self.outputs[master] = ("stdout", 1 if self.attach else None)
        if self.attach and os.isatty(0):
            termios.tcsetwinsize(master, termios.tcgetwinsize(0))
        if self.interactive:
            self.stdin_relay = (0, master)

    def close_container_side(self) -> None:
        side = self.container_side
        for fd in {side.stdin, side.stdout, side.stderr}:
            if fd > 2:
                os.close(fd)

    def close_ours(self) -> None:
        for fd in self.outputs:
            os.close(fd)
        self.outputs.clear()  # closed once: relay() may have closed them already


def relay(pid: int, outputs: dict, log: logfile.LogWriter | None, stdin_relay=None) -> int:
    """Copy the container's output to the log (None: none) and the terminal until it exits; return its wait status."""
    pidfd = os.pidfd_open(pid)
    watched = list(outputs) + [pidfd] + ([stdin_relay[0]] if stdin_relay else [])
    saved_tty = None
    if stdin_relay and os.isatty(stdin_relay[0]):
        import tty  # only with a terminal

        saved_tty = termios.tcgetattr(stdin_relay[0])
        tty.setraw(stdin_relay[0], termios.TCSANOW)  # TCSAFLUSH would drop what was typed ahead
    try:
        exited = False
        while not exited:
            for fd in select.select(watched, [], [])[0]:
                if fd == pidfd:
                    exited = True
                elif stdin_relay and fd == stdin_relay[0]:
                    data = os.read(fd, 65536)
                    if data:
                        os.write(stdin_relay[1], data)
                    else:
                        watched.remove(fd)
                elif not _copy(fd, outputs, log):
                    watched.remove(fd)
        for fd in outputs:  # what is still buffered once the container is gone
            os.set_blocking(fd, False)
            while _copy(fd, outputs, log):
                pass
    finally:
        if saved_tty:
            termios.tcsetattr(stdin_relay[0], termios.TCSADRAIN, saved_tty)
        for fd in list(outputs) + [pidfd]:
            os.close(fd)
        outputs.clear()
    return os.waitpid(pid, 0)[1]


def _copy(fd: int, outputs: dict, log) -> bool:
    """Copy one chunk from the container's `fd` to the log (and our terminal); False at its end."""
    try:
        data = os.read(fd, 65536)
    except OSError:  # EAGAIN when drained; EIO from a pty whose slave closed
        return False
    if not data:
        return False
    stream, echo = outputs[fd]
    if echo is not None:
        try:
            os.write(echo, data)
        except OSError:  # our reader went away (`| head`): keep logging, the container runs on
            outputs[fd] = (stream, None)
    if log:
        log.write(stream, data)
    return True


def spawn_detached(store: Store, cid: str) -> None:
    """Fork the supervisor off as a daemon; return once the container runs (or raise why it did not)."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(read_end)
        os.setsid()
        if os.fork():
            os._exit(0)  # the supervisor's parent exits: init (or a subreaper) adopts it
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            def started():  # hand the explain trace back to the command that is waiting
                os.write(write_end, jsoncore.dumps({"steps": [step.as_list() for step in trace.steps()]}).encode())
                os.close(write_end)

            supervise(store, cid, attach=False, on_started=started)
        except BaseException as e:  # noqa: BLE001 - report, never leave the caller hanging
            failure = {"error": str(e) if isinstance(e, MinidockerError) else f"supervisor failed: {e!r}",
                       "exit": getattr(e, "exit_code", 125)}
            try:
                os.write(write_end, jsoncore.dumps(failure).encode())
            except OSError:
                pass  # the container had started; the error is in its record
        os._exit(0)
    os.close(write_end)
    os.waitpid(first, 0)
    with os.fdopen(read_end, "rb") as f:
        answer = f.read()
    answer = jsoncore.loads(answer or b'{"error": "the supervisor died before the container started", "exit": 125}')
    for step in answer.get("steps", []):
        trace.adopt(step)
    if "error" in answer:
        failure = answer
        raise {126: CannotExecute, 127: CommandNotFound}.get(failure["exit"], MinidockerError)(failure["error"])


if __name__ == "__main__":  # the shim, once the container has exited: ... supervisor ROOT ID WAIT-STATUS
    _root, _cid, _status = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _store = Store(_root)
    finish(_store, _cid, cgroup_of(_store.load(_cid)), _status)
