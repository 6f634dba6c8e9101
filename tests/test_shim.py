"""The lean shim beside a detached container (minidocker/shim.py): the supervisor becomes it.

The supervisor execs the shim once the container runs: same PID (so the container is still its
child), a fresh interpreter with nothing of minidocker imported; when the container exits, the shim
execs the supervisor again, which records the exit.  Memory is measured in benchmarks/ (P4), not here.
"""



def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not reaped yet
    except FileNotFoundError:
        return True


def test_a_detached_container_is_watched_by_the_shim_that_logs_and_records_its_exit(md):
    md.out("run", "-d", "--name", "quiet", "busybox", "sh", "-c",
           "echo out; echo err >&2; read line < /dev/fd/0 || sleep 30; exit 3")
    shim = int(md.inspect("quiet", "{{.State.SupervisorPid}}"))
    md.wait_for(lambda: any(arg.endswith("minidocker/shim.py") for arg in _cmdline(shim)), what="the shim")
    assert _parent(md.pid("quiet")) == shim  # the same process that started the container
    with open(f"/proc/{shim}/maps") as f:
        assert "_ctypes" not in f.read()  # a fresh interpreter, not a fork of minidocker
    md.wait_for(lambda: md("logs", "quiet").stdout == "out\n", what="the log")
    assert md("logs", "quiet").stderr == "err\n"
    md.out("kill", "-s", "TERM", "quiet")  # sh as PID 1 ignores TERM ...
    md.out("kill", "quiet")  # ... not KILL
    assert md.out("wait", "quiet") == "137"
    assert md.inspect("quiet", "{{.State.Status}}") == "exited"
    md.wait_for(lambda: _gone(shim), what="the shim, then the finishing supervisor, to exit")


def test_detached_run_with_rm_is_removed_by_the_finishing_supervisor(md):
    md.out("run", "-d", "--rm", "--name", "brief", "busybox", "sh", "-c", "echo bye")
    md.wait_for(lambda: md("inspect", "brief").returncode != 0, what="the container to be removed")
    assert md.out("ps", "-aq") == ""
