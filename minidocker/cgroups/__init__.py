"""Control groups: how much of the machine a container may use.

Chapter 1 (isolation).  Namespaces decide what a process can *see*; cgroups
decide how much it can *use* -- the seed's "resource protection".  A cgroup is
a directory in a special filesystem.  Put a process in it by writing its PID to
``cgroup.procs``; limit the group by writing numbers into the controller files
next to it (``memory.max``, ``pids.max``, ...).  The kernel then charges every
page and every fork of those processes, and their children, to the group.

The filesystem comes in two versions, and a host may mount either or both:

* **v1** (:mod:`.v1`): one hierarchy per controller, each its own mount
  (``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/pids``, ...), so a container
  is one directory in *each* of them.
* **v2** (:mod:`.v2`): a single unified tree (``/sys/fs/cgroup``) where a
  container is one directory and its ``cgroup.controllers`` lists the
  controllers it got.
* **hybrid**: both at once -- controllers in v1, plus a cgroup2 mount that
  systemd uses to track processes.  A controller lives in exactly one of them.

So we never assume a layout: :func:`detect` reads ``/proc/self/mountinfo`` and
learns, for each controller, which hierarchy holds it.  The split into a v1 and
a v2 driver follows runc's libcontainer (``cgroups/fs`` and ``cgroups/fs2``).
Every container's cgroup is ``<hierarchy root>/minidocker/<container id>``.

The freezer (``docker pause``) stops every process of a cgroup where it stands
and lets them go on later, none the wiser: v1 has it as a controller of its own
(``freezer.state``), v2 builds it into every cgroup (``cgroup.freeze``).
"""

import _signal as signal  # signal.py's C core: signal.py itself imports enum, ~6 ms of a container start
import errno
import os
import time

from minidocker import kernel
from minidocker.cgroups import v1, v2
from minidocker.errors import MinidockerError

PARENT = "minidocker"
DRIVERS = {"v1": v1, "v2": v2}

# The controllers a container's cgroup is made in; cpuacct is v1's usage meter
# (v2 reports CPU usage in every cgroup's cpu.stat, no controller needed),
# freezer is v1's pause button (v2 has cgroup.freeze in every cgroup instead),
# and devices v1's device allow-list (v2 attaches an eBPF program instead: see devices.py).
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")
FREEZE_TIMEOUT = 5  # seconds a freeze or thaw may take before we give up

# Superblock options of a v1 mount that are not controller names.
NOT_CONTROLLERS = {"rw", "ro", "none", "all", "xattr", "noprefix", "clone_children",
                   "cpuset_v2_mode", "favordynmods"}


class Limits:
    """What `docker run` lets you cap.  None means "no limit".

    memory: --memory, bytes (swap beyond it is disabled too); cpus: --cpus, how many CPUs' worth
    of time per period; cpu_shares: --cpu-shares, relative weight under contention; pids:
    --pids-limit, most processes+threads at once.
    """

    def __init__(self, memory: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
                 pids: int | None = None):
        self.memory, self.cpus, self.cpu_shares, self.pids = memory, cpus, cpu_shares, pids

    def needs(self) -> dict[str, str]:
        """{controller: the docker flag that needs it} for each limit that is set."""
        wanted = {}
        for value, controller, flag in [(self.memory, "memory", "--memory"),
                                        (self.cpus, "cpu", "--cpus"),
                                        (self.cpu_shares, "cpu", "--cpu-shares"),
                                        (self.pids, "pids", "--pids-limit")]:
            if value is not None:
                wanted.setdefault(controller, flag)
        return wanted


class Layout:
    """Which cgroup hierarchies this host has mounted, and which controllers each holds."""

    def __init__(self, version: str, v1_mounts: dict[str, str], v2_mount: str | None,
                 v2_controllers: set[str]):
        self.version = version  # "v1", "v2" or "hybrid" (both kinds mounted)
        self.v1_mounts = v1_mounts  # controller -> mountpoint of the v1 hierarchy holding it
        self.v2_mount = v2_mount  # mountpoint of the unified hierarchy, if mounted
        self.v2_controllers = v2_controllers  # what its root's cgroup.controllers lists

    def hierarchy(self, controller: str) -> tuple[str, str] | None:
        """("v1"|"v2", mountpoint) of the hierarchy holding `controller`, or None."""
        if controller in self.v1_mounts:
            return "v1", self.v1_mounts[controller]
        if self.v2_mount and controller in self.v2_controllers:
            return "v2", self.v2_mount
        return None

    def __repr__(self) -> str:
        return f"<Layout {self.version} v1={self.v1_mounts} v2={self.v2_mount} {sorted(self.v2_controllers)}>"


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal (\\040)."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def detect(mountinfo: str | None = None) -> Layout:
    """Find the cgroup hierarchies in mountinfo text (default: /proc/self/mountinfo).

    A line reads ``36 25 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory``:
    the mountpoint is the 5th field; after the lone "-" come the filesystem type,
    the source, and the superblock options, which for v1 name its controllers.
    """
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    v1_mounted = False  # even a v1 hierarchy with no controller (name=systemd) counts
    v1_mounts: dict[str, str] = {}
    v2_mount = None
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue
        before, after = line.split(" - ", 1)
        mountpoint = _unescape(before.split()[4])
        fstype, _source, options = (after.split() + ["", ""])[:3]
        if fstype == "cgroup":
            v1_mounted = True
            for option in options.split(","):
                if option not in NOT_CONTROLLERS and "=" not in option:  # nor name=..., release_agent=...
                    v1_mounts.setdefault(option, mountpoint)  # a hierarchy mounted twice: first wins
        elif fstype == "cgroup2" and v2_mount is None:
            v2_mount = mountpoint
    if not v1_mounted and not v2_mount:
        raise MinidockerError("no cgroup filesystem is mounted on this host (see /proc/self/mountinfo)")
    v2_controllers = set()
    if v2_mount:
        try:
            with open(os.path.join(v2_mount, "cgroup.controllers")) as f:
                v2_controllers = set(f.read().split())
        except OSError:
            pass  # an unreadable cgroup2 mount can still track processes
    version = "hybrid" if v1_mounted and v2_mount else "v1" if v1_mounted else "v2"
    return Layout(version, v1_mounts, v2_mount, v2_controllers)


class Cgroup:
    """One container's cgroup: a directory in every hierarchy it needs."""

    def __init__(self, container_id: str, layout: Layout, parent: str = PARENT):
        self.container_id = container_id
        self.layout = layout
        # The directory (and its driver) that holds each controller we use.
        self.dirs: dict[str, tuple[str, str]] = {}
        for controller in CONTROLLERS:
            where = layout.hierarchy(controller)
            if where:
                version, mountpoint = where
                self.dirs[controller] = version, os.path.join(mountpoint, parent, container_id)
        # On a v2 host the unified tree is the only one: the container's directory there tracks its
        # processes even with no controller enabled.  A hybrid host's unified tree holds none of our
        # controllers: the container stays out of it, since only a whole process can join a v2
        # cgroup, and that costs the wait that move_self_v1() explains.  The price: there the
        # container stays in the unified cgroup of whoever ran minidocker, and systemd, which
        # tracks processes in that tree, counts it as part of that session or service (runc moves
        # it out, and waits).
        uses_v2 = layout.version == "v2" or any(version == "v2" for version, _ in self.dirs.values())
        self.v2_path = os.path.join(layout.v2_mount, parent, container_id) if uses_v2 else None
        self.paths: list[str] = []
        for path in [p for _, p in self.dirs.values()] + [self.v2_path]:
            if path and path not in self.paths:
                self.paths.append(path)

    def __repr__(self) -> str:
        return f"<Cgroup {self.container_id[:12]} {self.paths}>"

    def _make_dirs(self) -> None:
        for path in self.paths:
            for _attempt in range(50):
                try:
                    kernel.mkdir(path, why="a cgroup is a directory: make the container's one")
                    break
                except FileNotFoundError:
                    # Another container's destroy() removed the shared minidocker/
                    # between our mkdir of it and of our child: make it again.
                    continue
            else:
                raise MinidockerError(f"could not create cgroup {path}: its parent kept vanishing")
        if self.v2_path:
            wanted = [c for c in ("memory", "cpu", "pids") if c in self.layout.v2_controllers]
            if wanted:
                v2.enable_controllers(self.layout.v2_mount, os.path.dirname(self.v2_path), wanted)

    def _write_limits(self, limits: Limits) -> None:
        for version, driver in DRIVERS.items():
            dirs = {c: path for c, (v, path) in self.dirs.items() if v == version}
            if dirs:
                driver.write_limits(dirs, limits)

    def set_devices(self, rules: list) -> None:
        """Let the container's processes open only the devices `rules` allow (see devices.py).

        v1: the devices controller's files; v2: an eBPF program on the container's directory.
        """
        if "devices" in self.dirs:
            version, path = self.dirs["devices"]
            DRIVERS[version].set_devices(path, rules)
        elif self.v2_path:
            v2.set_devices(self.v2_path, rules)
        else:  # a hybrid host with no devices hierarchy: nothing would stop container root opening the host's disks
            raise MinidockerError("cgroup controller 'devices' is not available on this host (needed to confine "
                                  "which devices a container may open)")

    def join(self, pid: int = 0) -> None:
        """Move process `pid` (0: the caller, fresh from fork) into the container's cgroup everywhere."""
        if pid == 0 and len(os.listdir("/proc/self/task")) == 1:
            self.move_self_v1()
            self.move_v2(os.getpid())
        else:
            for path in self.paths:
                kernel.write(os.path.join(path, "cgroup.procs"), str(pid),
                             why=f"move process {pid or 'self'} into the container's cgroup")

    def move_self_v1(self) -> None:
        """The caller, a process with one thread, moves itself into each v1 hierarchy.

        Writing a PID to cgroup.procs moves a whole process: the kernel holds up
        every fork and exit on the machine meanwhile (a lock whose first taker
        waits for an RCU grace period, ~10 ms, until no CPU still reads the old
        membership).  v1 also lets one thread move: writing 0 to ``tasks`` moves
        the calling thread, which needs no such lock.  For a process with a
        single thread that is the whole process.
        """
        for version, path in dict.fromkeys(self.dirs.values()):
            if version == "v1":
                kernel.write(os.path.join(path, "tasks"), "0",
                             why="move this thread, the process's only one, into the container's cgroup")

    def move_v2(self, pid: int) -> None:
        """Move process `pid` into the v2 directory, if the container has one (v2 moves whole processes only)."""
        if self.v2_path:
            kernel.write(os.path.join(self.v2_path, "cgroup.procs"), str(pid),
                         why=f"move process {pid} into the container's cgroup")

    def pids(self) -> list[int]:
        """The processes in the cgroup (all hierarchies hold the same ones)."""
        for path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    return sorted({int(line) for line in f.read().split()})
            except OSError as e:
                # ENOENT: removed; ENODEV: removed between our open and read (its last process exited
                # and whoever waited for it ran rmdir).  Either way nobody is left in it.
                if e.errno not in (errno.ENOENT, errno.ENODEV):
                    raise
        return []

    def _read(self, where: tuple[str, str] | None, what: str):
        """Ask the driver of the directory `where` = (version, path) for a number."""
        if where is None:
            return None
        version, path = where
        return getattr(DRIVERS[version], what)(path)

    def oom_killed(self) -> bool:
        """Did the kernel's OOM killer kill a process here because of the memory limit?"""
        return bool(self._read(self.dirs.get("memory"), "oom_kills"))

    def cpu_usage_ns(self) -> int | None:
        """CPU time the processes used, in nanoseconds."""
        # v1 counts it in cpuacct; v2 in cpu.stat, which every v2 cgroup has.
        where = self.dirs.get("cpuacct") or (("v2", self.v2_path) if self.v2_path else None)
        return self._read(where, "cpu_usage_ns")

    def memory_usage(self) -> int | None:
        """Memory charged to the cgroup now, in bytes."""
        return self._read(self.dirs.get("memory"), "memory_usage")

    def _freezer(self) -> tuple[str, str] | None:
        """(version, directory) whose freezer we use: v1's freezer hierarchy, else the v2 directory."""
        return self.dirs.get("freezer") or (("v2", self.v2_path) if self.v2_path else None)

    def freezer_state(self) -> str | None:
        """"frozen", "freezing" or "thawed"; None when there is no freezer or no cgroup."""
        where = self._freezer()
        return self._read(where, "freezer_state") if where else None

    def freeze(self) -> None:
        """Stop every process in the cgroup where it stands (docker pause); returns once all are stopped."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Let the frozen processes run on (docker unpause); returns once the kernel says they do."""
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        where = self._freezer()
        if where is None:
            raise MinidockerError("the cgroup freezer is not available on this host (no freezer hierarchy, "
                                  "no cgroup v2)")
        version, path = where
        driver, wanted = DRIVERS[version], "frozen" if frozen else "thawed"
        try:
            driver.set_frozen(path, frozen)
            # The write only asks: the kernel stops (or wakes) each task in turn and says when all are done.
            deadline = time.monotonic() + FREEZE_TIMEOUT
            while (state := driver.freezer_state(path)) != wanted:
                if state is None:
                    raise MinidockerError(f"cgroup {path} is gone")
                if time.monotonic() > deadline:
                    if frozen:
                        driver.set_frozen(path, False)  # give up: leave it running, not half frozen
                    raise MinidockerError(f"the container's processes did not {'freeze' if frozen else 'thaw'} "
                                          f"within {FREEZE_TIMEOUT} s (the freezer says {state!r})")
                time.sleep(0.002)
        except OSError as e:
            raise MinidockerError(f"cannot {'freeze' if frozen else 'thaw'} cgroup {path}: {e.strerror}") from None

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to every process in the cgroup; quiet if they are already gone.

        A frozen cgroup is thawed after the signal, so that its processes can act on it (and die).
        """
        self._signal_all(sig)
        self.thaw_if_frozen()

    def thaw_if_frozen(self) -> None:
        """thaw(), if frozen (or freezing); quiet if the cgroup goes meanwhile (its last process died)."""
        if self.freezer_state() in (None, "thawed"):
            return
        try:
            self.thaw()
        except MinidockerError:
            if self.freezer_state() is not None:
                raise

    def _signal_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and self.v2_path and v2.kill(self.v2_path):
            return  # the kernel killed the whole group at once, forks and all
        signalled: set[int] = set()
        while True:  # a process may fork while we loop: go round until nobody new shows up
            fresh = [pid for pid in self.pids() if pid not in signalled]
            if not fresh:
                return
            for pid in fresh:
                try:
                    kernel.kill(pid, sig, why="signal every process in the container's cgroup")
                except ProcessLookupError:
                    pass
            signalled.update(fresh)
            if sig != signal.SIGKILL:
                return  # other signals may be caught; one round is what was asked

    def destroy(self) -> None:
        """Remove the cgroup's directories, then minidocker/ too if it is now empty."""
        for path in self.paths:
            deadline = time.monotonic() + 2
            while True:
                try:
                    kernel.rmdir(path, why="remove the container's cgroup (it must hold no process)")
                    break
                except FileNotFoundError:
                    break  # already gone
                except OSError as e:
                    # Killed tasks stay listed until they have fully exited.
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise MinidockerError(f"cannot remove cgroup {path}: {e.strerror} "
                                              f"(processes {self.pids()} are still in it)") from None
                    time.sleep(0.01)
        for parent in dict.fromkeys(os.path.dirname(p) for p in self.paths):
            try:
                kernel.rmdir(parent, why="remove the shared parent cgroup, now empty")
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOENT, errno.ENOTEMPTY):
                    raise  # EBUSY: another container still has its cgroup in there


def create(container_id: str, limits: Limits, layout: Layout | None = None, parent: str = PARENT,
           devices: list | None = None) -> Cgroup:
    """Make the container's cgroup (<hierarchy>/<parent>/<id>) and write its limits into it.

    `devices`: the device allow-list (devices.rules_for()), set before any process joins;
    None leaves the devices the parent cgroup allows.
    """
    layout = layout or detect()
    for controller, flag in limits.needs().items():
        if layout.hierarchy(controller) is None:
            raise MinidockerError(f"cgroup controller '{controller}' is not available on this host "
                                  f"(needed for {flag})")
    cgroup = Cgroup(container_id, layout, parent)
    try:
        cgroup._make_dirs()
        cgroup._write_limits(limits)
        if devices is not None:
            cgroup.set_devices(devices)
    except BaseException as e:
        cgroup.destroy()  # leave nothing half-made behind
        if isinstance(e, OSError):
            raise MinidockerError(f"cannot set up the container's cgroup: {e}") from e
        raise
    return cgroup


def find(container_id: str, layout: Layout | None = None, parent: str = PARENT) -> Cgroup:
    """The cgroup of an existing container (its directories may already be gone)."""
    return Cgroup(container_id, layout or detect(), parent)
