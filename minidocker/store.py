"""The state store: where containers and images live on disk (chapter 2).

Docker keeps each container as a directory named by its 64-hex-digit ID
holding a JSON record (what `docker inspect` prints) and the files bind-mounted
into it.  minidocker does the same under ``$MINIDOCKER_ROOT``
(default /var/lib/minidocker)::

    lock                       flock(2)ed while a command changes shared state
    containers/<id>/config.json   the record: Config, HostConfig, State, ...
    containers/<id>/{hostname,hosts,resolv.conf,container.log}
    containers/<id>/{upper,work,rootfs}   overlayfs dirs (see rootfs.py)
    images/...                 see images.py

Every write is atomic (write a temporary file, then rename(2) over the old
one), and changes that read-modify-write go under the lock, so two commands
running at once can never leave a half-written or lost record.
"""

import _thread  # get_ident(): which thread holds the lock (threading itself is not needed)
import fcntl
import os

from minidocker import jsoncore
from minidocker.errors import Conflict, MinidockerError, NotFound, NotRoot

DEFAULT_ROOT = "/var/lib/minidocker"
REMAPPED_ROOT_GID = 100000  # --userns remap: container root's group on the host (launch.USERNS_BASE)


def atomic_write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"  # unique even between threads of one process
    with open(tmp, "w") as f:
        jsoncore.dump(obj, f)
        f.write("\n")
    os.replace(tmp, path)


class Store:
    def __init__(self, root: str | None = None):
        self.root = os.path.abspath(root or os.environ.get("MINIDOCKER_ROOT") or DEFAULT_ROOT)
        self.containers = os.path.join(self.root, "containers")
        self.images = os.path.join(self.root, "images")
        if os.geteuid() != 0:  # (as Docker's CLI without access to its daemon: one line, exit 1)
            raise NotRoot("permission denied: minidocker makes containers out of kernel features only root "
                          "may use (namespaces, cgroups, mounts): run it as root, e.g. with sudo")
        for d in (self.root, self.containers, self.images):
            os.makedirs(d, exist_ok=True)
            # Traversable by root and by a user namespace's remapped root (its group), by nobody else:
            # layers and containers' upper dirs may hold device nodes, which the devices cgroup
            # confines inside a container but nothing confines for a host user who can reach them.
            os.chown(d, 0, REMAPPED_ROOT_GID)
            os.chmod(d, 0o710)
        self._holder = None  # the thread that holds the lock, if one of ours does (see StoreLock)

    def lock(self) -> "StoreLock":
        """`with store.lock():` holds the store's flock(2) for the length of the block."""
        return StoreLock(self)

    # -- container records ------------------------------------------------------------

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def ids(self) -> list[str]:
        return [d for d in os.listdir(self.containers) if len(d) == 64 and not d.startswith(".")]

    def load(self, cid: str) -> dict:
        try:
            with open(os.path.join(self.container_dir(cid), "config.json")) as f:
                return jsoncore.load(f)
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid[:12]}") from None
        except ValueError:  # our writes are atomic: only something outside minidocker can do this
            raise MinidockerError(f"container {cid[:12]}: its record config.json is not valid JSON") from None

    def save(self, record: dict) -> None:
        atomic_write_json(os.path.join(self.container_dir(record["Id"]), "config.json"), record)

    def update(self, cid: str, change) -> dict:
        """Read, change and write a record under the lock; returns the new record."""
        with self.lock():
            record = self.load(cid)
            change(record)
            self.save(record)
            return record

    def delete(self, cid: str, missing_ok: bool = True) -> None:
        """Remove a container's directory: its record, logs and writable layer.

        First renamed out of sight in one step (rename(2) is atomic), then deleted: a
        minidocker killed halfway leaves a ``.removing-*`` directory that no command
        lists and `system prune` sweeps, never a container with half its files.
        """
        doomed = os.path.join(self.containers, f".removing-{cid}-{os.urandom(4).hex()}")
        try:
            os.rename(self.container_dir(cid), doomed)
        except FileNotFoundError:
            if missing_ok:
                return
            raise NotFound(f"No such container: {cid[:12]}") from None
        remove_tree(doomed)

    def sweep_removed(self) -> list[str]:
        """Finish deletions a killed minidocker left halfway (see delete)."""
        swept = [d for d in os.listdir(self.containers) if d.startswith(".removing-")]
        for d in swept:
            remove_tree(os.path.join(self.containers, d))
        return swept

    def records(self) -> list[dict]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except MinidockerError:
                continue  # removed meanwhile (or damaged by something else: prune removes it)
        return out

    def resolve(self, ref: str) -> str:
        """A full ID, a name, or a unique ID prefix -> the full ID (as Docker accepts)."""
        if not ref:
            raise MinidockerError("container name or ID must not be empty")
        ids = self.ids()
        if ref in ids:
            return ref
        for record in self.records():
            if record["Name"] == "/" + ref.lstrip("/"):
                return record["Id"]
        matches = [i for i in ids if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise MinidockerError(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def check_name_free(self, name: str) -> None:
        """Call under the lock; a name belongs to at most one container."""
        for record in self.records():
            if record["Name"] == "/" + name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{record["Id"]}". You have to remove (or rename) that container to be '
                               f"able to reuse that name.")


class StoreLock:
    """flock(2) on the store's lock file.  Taken again by the thread that holds it (further up the
    same call) it does nothing: a second flock(2) on a second file descriptor would wait for
    ourselves.  Another thread's flock(2) does wait, as another process's would: stop, kill and rm
    act on several containers in threads.  (A class, not @contextlib.contextmanager: importing
    contextlib costs a container start ~2 ms.)"""

    def __init__(self, store: Store):
        self.store = store
        self.fd = None

    def __enter__(self) -> None:
        if self.store._holder == _thread.get_ident():
            return
        fd = os.open(os.path.join(self.store.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.store._holder = _thread.get_ident()

    def __exit__(self, *_exception) -> None:
        if self.fd is not None:
            self.store._holder = None
            os.close(self.fd)
            self.fd = None


def remove_tree(path: str) -> None:
    """rm -rf, skipping what cannot be removed, like shutil.rmtree(path, ignore_errors=True) --
    without importing shutil (and with it bz2, lzma, fnmatch), which `run --rm` would pay every time."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def new_id() -> str:
    """64 hex digits from the kernel's random source, as Docker's IDs."""
    return os.urandom(32).hex()


_ADJECTIVES = ("admiring bold brave busy clever eager elastic focused gallant happy jolly keen "
               "loving modest nifty quirky relaxed serene sharp tender vibrant wise").split()
_SCIENTISTS = ("babbage curie darwin einstein feynman franklin galileo hopper kepler lamarr "
               "lovelace mccarthy newton noether pasteur ritchie shannon thompson torvalds turing").split()


def generate_name() -> str:
    """A Docker-style name such as 'focused_turing'."""
    adjective, scientist = os.urandom(2)  # two random bytes; the random module would cost 1 ms to import
    return f"{_ADJECTIVES[adjective % len(_ADJECTIVES)]}_{_SCIENTISTS[scientist % len(_SCIENTISTS)]}"


def valid_name(name: str) -> bool:
    """Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*"""
    return bool(name) and name[0].isascii() and name[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in name)


def check_container_name(name: str) -> None:
    """Refuse a name a container cannot be found by: bad characters, or 64 hex digits (read as a full ID)."""
    if not valid_name(name):
        raise MinidockerError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        raise MinidockerError(f"Invalid container name ({name}): 64 hex digits are read as a container ID")


def now() -> str:
    """An RFC 3339 time stamp in UTC, as Docker writes them: 2026-11-28T04:27:01.123456Z."""
    import time  # not datetime, which costs a container start 1.5 ms to import

    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds // 1000:06d}Z"


NEVER = "0001-01-01T00:00:00Z"
