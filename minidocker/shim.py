"""The shim: what stays beside a detached container while it runs (chapter 2).

A detached container may run for weeks, and every one has a process beside
it -- Docker's containerd-shim, podman's conmon, minidocker's supervisor.  So
that process should be small.  The supervisor (supervisor.py) needs most of
minidocker to *start* a container; once the container runs, all that is left
to do is copy its output into the log and wait for it to exit.  So the
supervisor replaces itself (execve, same PID, so the container stays its
child) by this file, run as ``python -I -S shim.py``: a fresh interpreter that
imports only modules built into Python -- no json, no re, nothing of minidocker
-- and so holds about a third of the memory.  When the container exits, the
shim execs the full supervisor once more to record how it ended
(``python -m minidocker.supervisor``).

    python -I -S shim.py LOG PID FD:STREAM[,FD:STREAM] -- FINISH-COMMAND...

LOG gets one JSON line per chunk of output, in the format of supervisor.py
(Docker's json-file log driver); FINISH-COMMAND is exec'd with the
container's wait status appended.
"""

import os
import select
import sys
import time
from _json import encode_basestring_ascii  # json's C string quoting, without importing json (and re)


def main(argv: list[str]) -> None:
    log_path, pid, streams = argv[1], int(argv[2]), argv[3]
    finish = argv[argv.index("--") + 1:]
    outputs = {int(fd): stream for fd, stream in (pair.split(":") for pair in streams.split(",") if pair)}
    pidfd = os.pidfd_open(pid)  # readable once the container's init has exited
    with open(log_path, "ab") as log:
        watched = list(outputs) + [pidfd]
        exited = False
        while not exited:
            for fd in select.select(watched, [], [])[0]:
                if fd == pidfd:
                    exited = True
                elif not copy(fd, outputs[fd], log):
                    watched.remove(fd)
        for fd in outputs:  # what is still buffered once the container is gone
            os.set_blocking(fd, False)
            while copy(fd, outputs[fd], log):
                pass
    _, status = os.waitpid(pid, 0)
    os.execv(finish[0], finish + [str(status)])


def copy(fd: int, stream: str, log) -> bool:
    """One chunk of the container's output into the log; False at its end."""
    try:
        data = os.read(fd, 65536)
    except OSError:  # EAGAIN when drained; EIO from a terminal whose other side closed
        return False
    if not data:
        return False
    text = encode_basestring_ascii(data.decode("utf-8", "surrogateescape"))
    log.write(f'{{"log": {text}, "stream": "{stream}", "time": "{timestamp()}"}}\n'.encode())
    log.flush()
    return True


def timestamp() -> str:
    """RFC 3339 in UTC, as store.now() writes it (which this file cannot import)."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds // 1000:06d}Z"


if __name__ == "__main__":
    main(sys.argv)
