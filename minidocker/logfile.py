"""The container's log, as Docker's json-file driver keeps it (chapter 2): rotated with rename(2).

Everything a container writes to stdout and stderr is kept in one file, one
JSON line per chunk of output:

    {"log": "hi\\n", "stream": "stdout", "time": "2026-11-29T04:41:44.123456Z"}

A container that talks for weeks would fill the disk, so Docker can *rotate*
the log (``--log-opt max-size=10m --log-opt max-file=3``): once container.log
is full, the files move up one name and a new, empty container.log begins.

    container.log    -> container.log.1     (what was being written)
    container.log.1  -> container.log.2
    container.log.2     removed             (max-file=3: three files in all)

What the kernel gives us for this is rename(2): it changes a file's name in
one step, and never touches the file itself.  A reader that has the file open
keeps reading the same bytes under its new name (an open file is an inode, not
a name), so `logs -f` can finish the file it was reading and then open the new
container.log -- it notices the rotation because the name now leads to another
inode (stat(2)'s st_ino).  With max-file=1 (the default) there is no
container.log.1: the full file is unlinked and a new one begins.

Two processes write the log, and both rotate the same way: the supervisor when
it runs attached (:class:`LogWriter`, here) and the shim beside a detached
container (shim.c, in C).  Reading (:func:`entries`) goes through the files
oldest first, one line at a time, so `minidocker logs` needs little memory
however large the log is.

Two things differ from Docker, on purpose.  Docker writes one entry per line of
output and rotates once a file has reached max-size (so each file overshoots
by up to one line); minidocker writes one entry per read(2), up to 64 KiB,
and rotates *before* the write that would pass max-size -- but only between
lines: what completes the line being written still goes into the full file,
so no file begins in the middle of a line.  (A file is larger than max-size
only when one entry alone is: 64 KiB of output is about 75 kB of JSON.)  And this module checks the log
options when the container is created, where Docker checks their values only
when it starts.
"""

import os
import time

from minidocker import jsoncore
from minidocker.errors import MinidockerError
from minidocker.store import now

DRIVERS = ("json-file", "none")
OPTIONS = ("max-size", "max-file")
_UNITS = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}  # powers of 1000, as Docker's
NOT_READABLE = "configured logging driver does not support reading"  # Docker's words, for --log-driver none


# -- the options: --log-driver and --log-opt -----------------------------------------------------


def log_config(driver: str, options: list[str]) -> dict:
    """--log-driver and the --log-opt KEY=VALUE words, checked, as Docker's HostConfig.LogConfig."""
    config = {}
    for option in options:
        key, _, value = option.partition("=")  # no "=": the value is "", as Docker's CLI makes it
        config[key] = value
    if driver not in DRIVERS:
        raise MinidockerError(f"logger: no log driver named '{driver}' is registered")
    if driver == "none" and config:
        raise MinidockerError("invalid logging opts for driver none")
    for key in config:
        if key not in OPTIONS:
            raise MinidockerError(f"unknown log opt '{key}' for {driver} log driver")
    if "max-size" in config:
        size = parse_size(config["max-size"])
        if size <= 0:
            raise _failed("max-size must be a positive number")
    if "max-file" in config:
        files = _parse_int(config["max-file"])
        if files < 1:
            raise _failed("max-file cannot be less than 1")
    return {"Type": driver, "Config": config}


def limits(host_config: dict) -> tuple[int, int]:
    """(max-size in bytes or -1 for no limit, max-file) of a container."""
    config = host_config.get("LogConfig", {}).get("Config", {})  # (records older than log options have none)
    max_size = parse_size(config["max-size"]) if "max-size" in config else -1
    return max_size, _parse_int(config.get("max-file", "1"))


def readable(host_config: dict) -> bool:
    return host_config.get("LogConfig", {}).get("Type", "json-file") != "none"


def _failed(why: str) -> MinidockerError:
    return MinidockerError(f"failed to initialize logging driver: {why}")  # what Docker says when it starts


def parse_size(text: str) -> int:
    """'10m' -> 10000000: a number, then k, m or g (powers of 1000; 'kb', 'mib' and the like too)."""
    number, suffix = text, ""
    while number and number[-1] not in "0123456789. ":  # the suffix: what follows the last digit, dot or space
        number, suffix = number[:-1], number[-1] + suffix
    if not number:
        raise _failed(f"invalid size: '{text}'")
    if number.endswith(" "):  # "10 m"
        number = number[:-1]
    try:
        if number != number.strip() or "_" in number:  # Python's float() takes these, Go's ParseFloat not
            raise ValueError
        size = float(number)
    except ValueError:
        raise _failed(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    if size < 0:
        raise _failed(f"invalid size: '{text}'")
    unit = suffix.lower()
    if unit and not (unit == "b" or unit[0] in _UNITS and unit[1:] in ("", "b", "ib")):
        raise _failed(f"invalid suffix: '{unit}'")
    size *= _UNITS.get(unit[:1], 1)
    if size >= 2**63:  # (1e400 is inf)
        raise _failed(f"invalid size: '{text}'")
    return int(size)


def _parse_int(text: str) -> int:
    """Go's strconv.Atoi: [+-] and ASCII digits, nothing else (Python's int() also takes ' 3' and '3_0')."""
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise _failed(f'strconv.Atoi: parsing "{text}": invalid syntax')
    number = int(text)
    if abs(number) >= 2**63:
        raise _failed(f'strconv.Atoi: parsing "{text}": value out of range')
    return number


# -- writing: the supervisor's half (the shim's is in shim.c) -------------------------------------


class LogWriter:
    """Appends entries to container.log and rotates it as max-size and max-file say.

    ``max_size`` -1 means never rotate.  One writer per log at a time: the
    supervisor, or the shim that replaces it, never both.
    """

    def __init__(self, path: str, max_size: int = -1, max_files: int = 1):
        self.path, self.max_size, self.max_files = path, max_size, max_files
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self.size = os.fstat(self.fd).st_size  # a container started again goes on where it stopped
        self.at_line_start = True  # does what this file holds so far end with a whole line?

    def write(self, stream: str, data: bytes) -> None:
        """One chunk of the container's output as one entry; the file is rotated first if it is full."""
        line = _entry(stream, data)
        if 0 < self.max_size < self.size + len(line) and self.size > 0:
            end_of_line = data.find(b"\n") + 1
            if not self.at_line_start and end_of_line:  # finish the line this file holds the start of
                self._append(_entry(stream, data[:end_of_line]), data[:end_of_line])
                data = data[end_of_line:]
                line = _entry(stream, data)
            self.rotate()
        if data:
            self._append(line, data)

    def _append(self, line: bytes, data: bytes) -> None:
        self.size += len(line)
        try:
            while line:  # one write(2) unless the disk is full or a signal cuts it short
                line = line[os.write(self.fd, line):]
        except OSError:
            return  # a full disk loses log lines; the container must not stop for that
        self.at_line_start = data.endswith(b"\n")

    def rotate(self) -> None:
        """container.log.N-1 ... .1 move up one name (the last is dropped), container.log becomes
        container.log.1, and a new container.log begins; with max-file 1, container.log is dropped."""
        os.close(self.fd)
        try:
            if self.max_files < 2:
                os.unlink(self.path)  # a reader that has it open still reads it to its end
            else:
                rotated = 1  # the first free number after .1, .2 ... (at most max-file - 1, which is dropped)
                while rotated < self.max_files - 1 and os.path.exists(f"{self.path}.{rotated}"):
                    rotated += 1
                for number in range(rotated, 1, -1):  # the highest first: each name is free when it is needed
                    _rename_if_there(f"{self.path}.{number - 1}", f"{self.path}.{number}")
                os.rename(self.path, f"{self.path}.1")
        except OSError:
            pass  # (its directory removed meanwhile, by rm -f)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except OSError:  # rm -f again: what the container writes until it is killed goes nowhere
            self.fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        self.size, self.at_line_start = 0, True

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


def _entry(stream: str, data: bytes) -> bytes:
    entry = {"log": data.decode("utf-8", "surrogateescape"), "stream": stream, "time": now()}
    return jsoncore.dumps(entry).encode() + b"\n"


def _rename_if_there(old: str, new: str) -> None:
    try:
        os.rename(old, new)  # replaces `new`: the oldest file, when there are max-file of them, is dropped here
    except FileNotFoundError:
        pass


# -- reading: `minidocker logs` ------------------------------------------------------------------


def entries(path: str, follow: bool = False, running=lambda: False):
    """Yield (stream, bytes) of every entry of the log, oldest first, across its rotated files;
    with `follow`, go on with what is written (through rotations) until running() says it stopped."""
    files = _open_newest_first(path)
    if not files:
        return
    current = files.pop(0)  # container.log, the one being written
    for older in reversed(files):
        with older:
            yield from _whole_lines(older)
    with current:
        while True:
            stopped = not follow or not running()  # asked first: what it wrote before stopping is read next
            yield from _whole_lines(current)
            if not follow:
                return
            newer = _open_newest_first(path, stop_at=current) if _rotated(current, path) else []
            if newer:
                yield from _whole_lines(current)  # its last lines, written just before it was rotated
                current.close()
                current = newer.pop(0)
                for file in reversed(newer):  # rotated more than once since we last looked
                    with file:
                        yield from _whole_lines(file)
                continue
            if stopped:
                return
            time.sleep(0.05)


def _open_newest_first(path: str, stop_at=None) -> list:
    """container.log, container.log.1, container.log.2 ... opened (up to `stop_at`, an open file).

    Newest first, because a rotation may happen while we open them: then the file we opened
    as container.log comes round again as container.log.1 -- the same inode, skipped -- and
    nothing is read twice or out of order (only the oldest may be missed).
    """
    stop = _identity(stop_at) if stop_at else None
    opened, seen = [], set()
    for number in range(1_000_000):  # ends at the first name that is not there
        try:
            file = open(f"{path}.{number}" if number else path, "rb")
        except FileNotFoundError:
            break
        identity = _identity(file)
        if identity == stop or identity in seen:
            file.close()
            if identity == stop:
                break  # the rest are older than what we are reading
            continue
        seen.add(identity)
        opened.append(file)
    return opened


def _identity(file) -> tuple[int, int]:
    status = os.fstat(file.fileno())
    return status.st_dev, status.st_ino


def _rotated(file, path: str) -> bool:
    """Does `path` now name another file than the one we have open?"""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return True  # being rotated this very moment
    return (status.st_dev, status.st_ino) != _identity(file)


def _whole_lines(file):
    """(stream, bytes) of each whole line from where `file` is; a line still being written is left for later."""
    while True:
        line = file.readline()  # one entry: at most 64 KiB of output (6 times that as JSON, for binary)
        if not line.endswith(b"\n"):
            file.seek(-len(line), os.SEEK_CUR)
            return
        try:
            entry = jsoncore.loads(line)
        except ValueError:
            continue  # half a line a killed writer left, then a new start: skipped
        yield entry["stream"], entry["log"].encode("utf-8", "surrogateescape")


def read_all(path: str) -> bytes:
    """The whole log as bytes (the Python API's `logs`; the CLI streams instead)."""
    return b"".join(data for _stream, data in entries(path))
