"""The cgroup v2 driver: one unified tree, one directory per container.

Chapter 1 (isolation: resource protection).  In cgroup v2 there is a single
hierarchy; a container is one directory and every controller's files sit side
by side in it.  Two rules differ from v1:

* A controller reaches a child only if its parent lists it in
  ``cgroup.subtree_control`` ("+memory +cpu +pids"), all the way from the root.
* "No internal processes": a cgroup that hands controllers to its children may
  not hold processes itself -- so ``minidocker/`` only ever holds directories.

The file names also changed: ``memory.max`` instead of ``memory.limit_in_bytes``,
``cpu.max`` takes "quota period" in one write, ``cpu.weight`` (1..10000) replaces
``cpu.shares``.  Modelled on runc's libcontainer/cgroups/fs2.

The freezer needs no controller in v2: every cgroup but the root has
``cgroup.freeze``.  Writing 1 asks the kernel to stop its processes; once all
have stopped, ``cgroup.events`` reads "frozen 1".  Writing 0 lets them go on.
A frozen process still dies of SIGKILL.
"""

import os
from minidocker import kernel

CFS_PERIOD_US = 100_000  # 100 ms, Docker's default period


def enable_controllers(mountpoint: str, parent: str, controllers: list[str]) -> None:
    """Hand `controllers` down from the root to `parent`, so its children get their files."""
    wanted = " ".join(f"+{c}" for c in controllers)
    for path in (mountpoint, parent):
        kernel.write(f"{path}/cgroup.subtree_control", wanted,
                     why=f"hand the {', '.join(controllers)} controllers down to the cgroups below")


def shares_to_weight(shares: int) -> int:
    """runc's map from v1 cpu.shares (2..262144) onto v2 cpu.weight (1..10000)."""
    shares = min(max(shares, 2), 262_144)  # the range v1's kernel clamps shares to
    return 1 + ((shares - 2) * 9999) // 262_142


def write_limits(dirs: dict[str, str], limits: "Limits") -> None:
    """Write each set limit whose controller this hierarchy holds (`dirs`: controller -> dir)."""
    if limits.memory is not None and "memory" in dirs:
        path = dirs["memory"]
        kernel.write(f"{path}/memory.max", str(limits.memory),
                     why=f"cap the container's memory at {limits.memory / (1 << 20):g} MiB")
        if os.path.exists(f"{path}/memory.swap.max"):  # absent when swap is not accounted
            kernel.write(f"{path}/memory.swap.max", "0", why="allow no swap beyond the memory limit")
    if limits.cpus is not None and "cpu" in dirs:
        quota = round(limits.cpus * CFS_PERIOD_US)
        kernel.write(f"{dirs['cpu']}/cpu.max", f"{quota} {CFS_PERIOD_US}",
                     why=f"let the container run {limits.cpus:g} CPUs' worth of each 100 ms period")
    if limits.cpu_shares is not None and "cpu" in dirs:
        kernel.write(f"{dirs['cpu']}/cpu.weight", str(shares_to_weight(limits.cpu_shares)),
                     why=f"weigh the container like --cpu-shares {limits.cpu_shares} (100 = normal)")
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


def _keyed(path: str, key: str) -> int | None:
    """The number after `key` in a flat-keyed file such as memory.events or cpu.stat."""
    text = _read(path)
    if text is None:
        return None
    fields = dict(line.split() for line in text.splitlines() if line.strip())
    return int(fields.get(key, 0))


def oom_kills(path: str) -> int | None:
    """How many processes the OOM killer killed here ("oom_kill N" in memory.events)."""
    return _keyed(f"{path}/memory.events", "oom_kill")


def cpu_usage_ns(path: str) -> int | None:
    """CPU time used: cpu.stat counts microseconds, in every cgroup."""
    usec = _keyed(f"{path}/cpu.stat", "usage_usec")
    return None if usec is None else usec * 1000


def memory_usage(path: str) -> int | None:
    """Bytes charged now (memory.current)."""
    text = _read(f"{path}/memory.current")
    return int(text) if text else None


def kill(path: str) -> bool:
    """SIGKILL every process in the cgroup at once (cgroup.kill, Linux 5.14+).

    Unlike a loop over cgroup.procs this cannot miss a process forked mid-loop.
    Returns False when the kernel has no cgroup.kill or the cgroup is gone.
    """
    if not os.path.exists(f"{path}/cgroup.kill"):
        return False
    try:
        kernel.write(f"{path}/cgroup.kill", "1", why="SIGKILL every process in the container's cgroup")
    except OSError:
        return False
    return True



def set_frozen(path: str, frozen: bool) -> None:
    """Ask the kernel to freeze (1) or thaw (0) the cgroup; freezer_state() says when it is done."""
    if frozen:
        kernel.write(f"{path}/cgroup.freeze", "1",
                     why="freeze every process in the container (cgroup.events says 'frozen 1' once done)")
    else:
        kernel.write(f"{path}/cgroup.freeze", "0", why="let the container's processes run again")


def freezer_state(path: str) -> str | None:
    """"frozen", "freezing" or "thawed": what cgroup.events reports, and what cgroup.freeze asked for."""
    frozen = _keyed(f"{path}/cgroup.events", "frozen")
    if frozen is None:
        return None
    if frozen:
        return "frozen"
    return "freezing" if (_read(f"{path}/cgroup.freeze") or "").strip() == "1" else "thawed"


def set_devices(path: str, rules: list) -> None:
    """Allow only `rules` (see devices.py): attach the eBPF program devicefilter.py writes for them.

    With an allow-everything rule (--privileged) no program is needed: a cgroup with none
    lets every device through.  The program stays attached until the cgroup is removed.
    """
    if any(rule.kind == "a" for rule in rules):
        return
    from minidocker.cgroups import devicefilter  # (v2 only: struct and the assembler)

    program = devicefilter.assemble(rules)
    fd = kernel.bpf_load_device_program(
        devicefilter.encode(program),
        why=f"an eBPF program of {len(rules)} rules: deny every device but Docker's few (and --device ones)")
    try:
        kernel.bpf_attach_device_program(fd, path, why="the kernel runs it before each open(2) or mknod(2) of a "
                                                      "device node by a process in the container's cgroup")
    finally:
        os.close(fd)  # the attachment keeps the program alive
