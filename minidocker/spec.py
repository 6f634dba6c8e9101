"""What the user asked for, checked: values of flags and the command to run (chapter 2).

Everything a user types is validated here, before anything touches the
kernel, so bad input costs one clear line and exit code 125 and changes
nothing.  This module also holds Docker's rule for which command a
container runs, the one the seed asks about (``--entrypoint``):

    ENTRYPOINT (image, or --entrypoint) + CMD (image, or the arguments after the image)

with one twist: ``--entrypoint`` also throws away the image's CMD.  A
Dockerfile's *shell form* (``CMD echo hi``) is stored as
``["/bin/sh", "-c", "echo hi"]``; the CLI's arguments are always *exec form*.
"""

import os

from minidocker.errors import MinidockerError

# Patterns are compiled (and cached by re) when a flag needs them: importing re costs a container
# start ~7 ms, which a run without --memory or --hostname should not pay.
_SIZE = r"^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$"
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024 * 1024  # Docker's floor: below this a container cannot even start
MAX_MEMORY = 2**63 - 1  # the largest limit a cgroup file takes (a signed 64-bit count of bytes)


def parse_memory(value: str, flag: str = "--memory") -> int:
    """'32m' -> 33554432.  Units b, k, m, g (powers of 1024), as Docker."""
    import re

    match = re.match(_SIZE, value.strip(), re.IGNORECASE)
    if not match:
        raise MinidockerError(f"invalid value {value!r} for {flag}: expected a size such as 32m, 512k or 1g")
    number = float(match[1]) * _UNITS[match[2].lower()]
    if number > MAX_MEMORY:  # (float() of 400 digits is inf, which int() refuses)
        raise MinidockerError(f"invalid value {value!r} for {flag}: the largest memory limit is 8 EiB")
    size = int(number)
    if size < MIN_MEMORY:
        raise MinidockerError(f"invalid value {value!r} for {flag}: the minimum memory limit is 6m")
    return size


def parse_cpus(value: str) -> float:
    """'0.5' -> half of one CPU's time (a CFS quota of 50 ms every 100 ms)."""
    try:
        cpus = float(value)
    except ValueError:
        cpus = -1.0
    available = os.cpu_count() or 1
    if not 0.01 <= cpus <= available:
        raise MinidockerError(f"invalid value {value!r} for --cpus: the range of CPUs is from 0.01 to "
                              f"{available}.00, as there are only {available} CPUs available")
    return cpus


def parse_int(value: str, flag: str, minimum: int, maximum: int = 2**62) -> int:
    try:
        number = int(value)
    except ValueError:
        raise MinidockerError(f"invalid value {value!r} for {flag}: expected a whole number") from None
    if not minimum <= number <= maximum:
        raise MinidockerError(f"invalid value {value!r} for {flag}: must be between {minimum} and {maximum}")
    return number


def parse_seconds(value: str, flag: str = "--time") -> float:
    """'10', '0.5' -> seconds to wait; a finite number, not below 0 ('nan' would wait forever)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise MinidockerError(f"invalid value {value!r} for {flag}: expected a number of seconds, 0 or more")
    return seconds


_HOSTNAME = r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"


def parse_hostname(value: str) -> str:
    """-h: an RFC 1123 host name, at most 64 bytes (HOST_NAME_MAX, what sethostname(2) takes)."""
    import re

    if len(value) > 64 or not re.match(_HOSTNAME, value):
        raise MinidockerError(f"invalid value {value!r} for --hostname: letters, digits and '-', in labels "
                              f"separated by '.', at most 64 characters")
    return value


ENV_FILE_LIMIT = 16 << 20  # Docker reads any size; a bigger env file is a mistake (execve(2) would refuse it anyway)


def _read_env_file(path: str) -> str:
    """The text of an --env-file: a regular file of at most ENV_FILE_LIMIT bytes, in UTF-8.

    O_NONBLOCK: opening a FIFO does not wait for a writer (that would hang);
    O_NOCTTY: a terminal named here does not become ours.  Then fstat(2)
    tells what was opened, and only a regular file is read: /dev/zero or a
    FIFO would be read forever.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise MinidockerError(f"open {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MinidockerError(f"env file {path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(ENV_FILE_LIMIT + 1)
    if len(data) > ENV_FILE_LIMIT:
        raise MinidockerError(f"env file {path} is larger than {ENV_FILE_LIMIT >> 20} MiB, minidocker's limit")
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise MinidockerError(f"env file {path} contains invalid utf8 bytes at byte {e.start}") from None


def parse_env(items: list[str], env_files: list[str] = ()) -> list[str]:
    """-e KEY=VALUE, -e KEY (take the value from minidocker's own environment), --env-file FILE."""
    lines = []
    for path in env_files:
        text = _read_env_file(path).replace("\r\n", "\n").replace("\r", "\n")
        lines += [ln.strip() for ln in text.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    env = []
    for item in lines + list(items):
        key, eq, value = item.partition("=")
        if not key or any(c.isspace() for c in key) or "\0" in item:  # execve(2) cannot pass a NUL byte
            raise MinidockerError(f"invalid environment variable: {item!r}")
        if eq:
            env.append(f"{key}={value}")
        elif key in os.environ:
            env.append(f"{key}={os.environ[key]}")
    return env


def merge_env(image_env: list[str], overrides: list[str]) -> list[str]:
    """Image ENV first, then -e values replacing the same keys."""
    merged = {e.partition("=")[0]: e for e in image_env}
    merged.update({e.partition("=")[0]: e for e in overrides})
    return list(merged.values())


def shell_form(command: str) -> list[str]:
    """A Dockerfile's shell form: the string is run by /bin/sh -c."""
    return ["/bin/sh", "-c", command]


def resolve_command(image_entrypoint: list[str] | None, image_cmd: list[str] | None,
                    entrypoint: str | None, args: list[str]) -> list[str]:
    """Docker's rule: ENTRYPOINT + CMD, where --entrypoint also drops the image's CMD."""
    if entrypoint is not None:
        chosen_entrypoint = [entrypoint] if entrypoint else []
        chosen_cmd = list(args)
    else:
        chosen_entrypoint = list(image_entrypoint or [])
        chosen_cmd = list(args) if args else list(image_cmd or [])
    command = chosen_entrypoint + chosen_cmd
    if not command:
        raise MinidockerError("No command specified")
    return command


def parse_mode(value: str, flag: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MinidockerError(f"invalid value {value!r} for {flag}: expected one of {', '.join(allowed)}")
    return value
