"""The cgroup v1 driver: one directory per controller hierarchy.

Chapter 1 (isolation: resource protection).  In cgroup v1 every controller is
its own filesystem -- ``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/pids``, ...
(some hosts mount two together, e.g. ``cpu,cpuacct``).  A container therefore
has a directory in each, and each directory holds the files of its controller
only.  The kernel starts every new directory unlimited; writing a number into a
file sets the limit.  Modelled on runc's libcontainer/cgroups/fs.

The freezer is a controller of its own here: writing FROZEN to
``freezer.state`` makes the kernel stop every task of the cgroup (and of the
cgroups below) at a safe point; the file reads FREEZING until the last one has
stopped, then FROZEN.  THAWED lets them all run again.

Every function takes the container's directory in the relevant hierarchy.
"""

import os
from minidocker import kernel

CFS_PERIOD_US = 100_000  # the scheduler's accounting period: 100 ms, Docker's default


def write_limits(dirs: dict[str, str], limits: "Limits") -> None:
    """Write each set limit into the directory of the controller it belongs to.

    `dirs` maps controller -> this container's directory in its v1 hierarchy.
    """
    if limits.memory is not None and "memory" in dirs:
        mib = limits.memory / (1 << 20)
        kernel.write(f"{dirs['memory']}/memory.limit_in_bytes", str(limits.memory),
                     why=f"cap the container's memory at {mib:g} MiB")
        # memsw = memory + swap.  Setting it to the same number forbids swap,
        # so hitting the limit means the OOM killer, not a slow crawl.  The file
        # only exists when the kernel accounts swap (swapaccount=1).
        memsw = f"{dirs['memory']}/memory.memsw.limit_in_bytes"
        if os.path.exists(memsw):
            kernel.write(memsw, str(limits.memory), why="allow no swap beyond the memory limit")
    if limits.cpus is not None and "cpu" in dirs:
        # CFS bandwidth control: in every period the group may run for `quota`
        # microseconds, summed over all CPUs -- 0.5 CPU = 50 ms per 100 ms.
        kernel.write(f"{dirs['cpu']}/cpu.cfs_period_us", str(CFS_PERIOD_US),
                     why="measure CPU time in periods of 100 ms")
        kernel.write(f"{dirs['cpu']}/cpu.cfs_quota_us", str(round(limits.cpus * CFS_PERIOD_US)),
                     why=f"let the container run {limits.cpus:g} CPUs' worth of each period")
    if limits.cpu_shares is not None and "cpu" in dirs:
        kernel.write(f"{dirs['cpu']}/cpu.shares", str(limits.cpu_shares),
                     why="weigh the container against others when CPUs are contended (1024 = normal)")
    if limits.pids is not None and "pids" in dirs:
        if limits.pids > 0:
            kernel.write(f"{dirs['pids']}/pids.max", str(limits.pids),
                         why=f"allow at most {limits.pids} processes (fork fails with EAGAIN beyond)")
        else:  # Docker reads --pids-limit 0 or -1 as "unlimited"
            kernel.write(f"{dirs['pids']}/pids.max", "max", why="put no cap on the number of processes")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def oom_kills(memory_dir: str) -> int | None:
    """How many processes the OOM killer killed here ("oom_kill N" in memory.oom_control)."""
    text = _read(f"{memory_dir}/memory.oom_control")
    if text is None:
        return None
    fields = dict(line.split() for line in text.splitlines() if line.strip())
    return int(fields.get("oom_kill", 0))


def cpu_usage_ns(cpuacct_dir: str) -> int | None:
    """CPU time used, in nanoseconds (cpuacct.usage)."""
    text = _read(f"{cpuacct_dir}/cpuacct.usage")
    return int(text) if text else None


def memory_usage(memory_dir: str) -> int | None:
    """Bytes charged now (memory.usage_in_bytes: page cache included, as docker stats shows)."""
    text = _read(f"{memory_dir}/memory.usage_in_bytes")
    return int(text) if text else None


def set_frozen(freezer_dir: str, frozen: bool) -> None:
    """Ask the kernel to freeze (FROZEN) or thaw (THAWED) every task; freezer_state() says when it is done."""
    if frozen:
        kernel.write(f"{freezer_dir}/freezer.state", "FROZEN",
                     why="freeze every process in the container (it reads FREEZING until all have stopped)")
    else:
        kernel.write(f"{freezer_dir}/freezer.state", "THAWED", why="let the container's processes run again")


def freezer_state(freezer_dir: str) -> str | None:
    """"frozen", "freezing" or "thawed", from freezer.state."""
    text = _read(f"{freezer_dir}/freezer.state")
    return text.strip().lower() if text else None


def set_devices(devices_dir: str, rules: list) -> None:
    """Allow only `rules` (see devices.py): "a" into devices.deny, then each rule into devices.allow.

    A new cgroup starts with its parent's list (the root's is "a *:* rwm"), and the
    kernel refuses a rule its parent does not grant: a child only ever narrows.
    """
    if any(rule.kind == "a" for rule in rules):
        kernel.write(f"{devices_dir}/devices.allow", "a", why="--privileged: the container may open every device")
        return
    kernel.write(f"{devices_dir}/devices.deny", "a",
                 why="deny every device: open(2) and mknod(2) of a node now fail with EPERM ...")
    for rule in rules:
        kernel.write(f"{devices_dir}/devices.allow", str(rule), why=f"... except {rule.what}")
