"""--init: a tiny PID 1 that reaps zombies and forwards signals (chapter 2).

PID 1 of a PID namespace has two jobs the kernel gives nobody else:

* **reaping**: every orphaned process in the namespace is re-parented to
  PID 1, and stays a zombie until PID 1 calls wait(2) for it.  A program that
  never expected to be PID 1 (a shell script, `sleep`, most servers) never
  waits for children it did not start, so zombies pile up.
* **signals**: the kernel delivers to PID 1 only the signals it installed a
  handler for.  `docker stop` sends SIGTERM; a PID 1 without a handler simply
  ignores it, and 10 seconds later gets SIGKILL.

With ``--init``, PID 1 is this loop (the role tini plays as docker-init), and
the command runs as PID 2.  It is still the Python process minidocker forked,
already inside the container, so it needs no binary in the image.
"""

import _signal as signal  # signal.py's C core: signal.py itself imports enum, ~6 ms of a container start
import os

from minidocker import kernel

FORWARDED = sorted(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD})


def reap_and_forward(command_pid: int) -> None:
    """Forward every signal to the command; reap every child; exit as the command exits."""
    kernel.prctl(kernel.PR_SET_NAME, b"minidocker-init")
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # hold nothing of minidocker's open: pipes would never close

    def forward(signum, _frame):
        try:
            os.kill(command_pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError):
            pass
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # any child: the command, or an orphan re-parented to us
        except ChildProcessError:
            os._exit(0)
        if pid == command_pid:
            os._exit(exit_status(status))


def exit_status(wait_status: int) -> int:
    """Docker's convention: the exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
