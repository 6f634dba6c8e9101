"""Errors and the exit codes Docker uses for them.

Docker's CLI exits 125 when the daemon itself failed, 126 when the container's
command exists but cannot be executed, 127 when it does not exist; anything
else is the container's own exit status.  minidocker keeps the same contract so
a learner's scripts behave the same against both.
"""


class MinidockerError(Exception):
    """A problem minidocker itself reports: bad input, missing image, conflict."""

    exit_code = 125


class CannotExecute(MinidockerError):
    """The command was found but the kernel refused to execute it (EACCES, ENOEXEC)."""

    exit_code = 126


class CommandNotFound(MinidockerError):
    """The command does not exist inside the container."""

    exit_code = 127


class NotFound(MinidockerError):
    """No such container or image."""


class Conflict(MinidockerError):
    """The name, cidfile or state clashes with what already exists."""


class NotRoot(MinidockerError):
    """Run without root: Docker's CLI, refused by its daemon's socket, exits 1."""

    exit_code = 1
