"""docker exec: entering a running container (chapters 1 and 2).

A container is not a place, it is a set of namespaces plus a cgroup; a new
process "enters" it by joining each of them, exactly as nsenter(1) does:

    join the cgroup                  echo 0 > .../tasks (v1: just this thread), echo $$ > .../cgroup.procs (v2)
    setns() into each namespace      nsenter --target PID --ipc --uts --net --pid --mount
    chroot to the container's root   (its /proc/PID/root)
    fork()                           setns(pid) only takes effect for children
    confine                          the container's capabilities, limits, user (confinement.py)
    execve(the command)

The last step is what makes ``exec`` safe: a process that joined from the
host arrives with all of the host root's capabilities, so without it an
exec'd shell could undo the container's read-only and masked mounts.
``exec --privileged`` gives it every capability, as Docker's does.

Only namespaces that differ from minidocker's own are joined, so
``--pid host`` or ``--network host`` containers share those with the host.
"""

import os

from minidocker import confinement, kernel, launch, seccomp, supervisor
from minidocker.errors import MinidockerError
from minidocker.init import exit_status
from minidocker.launch import Channel, Stdio
from minidocker.store import Store

# user first: it grants the capabilities needed to join the others; mnt last: it changes our root.
NAMESPACE_ORDER = ("user", "ipc", "uts", "net", "pid", "mnt")


def exec_in(store: Store, ref: str, command: list[str], tty: bool = False, interactive: bool = False,
            env: list[str] = (), workdir: str | None = None, user: str | None = None, privileged: bool = False,
            on_ready=None) -> int:
    """Run `command` inside a running container, attached; return its exit code."""
    if not command:
        raise MinidockerError("exec needs a command")
    cid = store.resolve(ref)
    record = store.load(cid)
    if not record["State"]["Running"]:
        raise MinidockerError(f"Container {cid[:12]} is not running")
    if record["State"].get("Paused"):
        raise MinidockerError(f"Container {cid[:12]} is paused, unpause the container before exec")
    config = dict(record["Config"], Env=record["Config"]["Env"] + list(env),
                  User=user if user is not None else record["Config"].get("User", ""),
                  WorkingDir=workdir or record["Config"].get("WorkingDir") or "/", Tty=tty, OpenStdin=interactive)
    host_config = record["HostConfig"]
    # the container's filter (exec --privileged adds capabilities, not system calls: as Docker's), computed here
    seccomp_program = seccomp.program_for(host_config, confinement.container_capabilities(host_config))
    streams = supervisor.Streams(config, attach=True)
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:
        parent.close()
        launch._run_child(lambda: _enter(record, config, command, streams.container_side, child, privileged,
                                         seccomp_program), child)
    child.close()
    streams.close_container_side()
    failure = None
    while (message := parent.recv()) is not None:
        if "console" in message:
            streams.console(message["fd"])
        elif "error" in message:
            failure = message
    parent.close()
    if on_ready:
        on_ready(pid)
    if failure:
        os.waitpid(pid, 0)
        streams.close_ours()
        error_class = {126: launch.CannotExecute, 127: launch.CommandNotFound}.get(failure["exit"], MinidockerError)
        raise error_class(failure["error"])
    return exit_status(supervisor.relay(pid, streams.outputs, None, streams.stdin_relay))  # exec keeps no log


def _enter(record: dict, config: dict, command: list[str], stdio: Stdio, channel: Channel,
           privileged: bool = False, seccomp_program: bytes | None = None) -> None:
    channel.forward_trace()
    kernel.set_undumpable(why="until execve, this process runs the host's python: keep its /proc/PID/exe out of reach")
    supervisor.cgroup_of(record).join(0)
    init_pid = record["State"]["Pid"]
    root = os.open(f"/proc/{init_pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    for ns in NAMESPACE_ORDER:
        if kernel.namespace_id(init_pid, ns) != kernel.namespace_id("self", ns):
            kernel.setns(init_pid, ns, why=f"join the container's {ns} namespace")
    os.fchdir(root)
    kernel.chroot(".", why="the container's root directory (nsenter --root)")
    os.close(root)
    if stdio.tty:
        stdio = launch.open_console(channel)
    channel.flush_trace()  # the child would inherit a copy of them
    if os.fork():
        # setns(pid) applies to children only: this process waits for the one that runs the command
        channel.close()
        _, status = os.wait()
        os._exit(exit_status(status))
    uid, gid, home = launch.lookup_user(config["User"])
    env = launch._environment(config, home)
    try:
        kernel.chdir(config["WorkingDir"])
    except OSError as e:  # exec does not create it (Docker's exec neither)
        raise MinidockerError(f'chdir to cwd ("{config["WorkingDir"]}") set in config.json failed: '
                              f"{os.strerror(e.errno).lower()}") from None
    launch._attach_stdio(stdio)
    confinement.confine(record["HostConfig"], uid, gid, seccomp_program, privileged_exec=privileged)
    launch.exec_command(launch.find_executable(command[0], env), command, env, channel)
