"""Notebook 01 -- isolation, the eight aspects (seed section 1, 什么是docker)."""

# %% [markdown]
# # 01 · Isolation, one aspect at a time
#
# **Goal:** switch each of the eight kinds of isolation on and off and see the difference on the real
# kernel; then watch a memory limit kill a container.
# **Difficulty:** intermediate · **Time:** 40 minutes · run every cell top to bottom, as root.
#
# The study notes (section 1, *什么是docker*): *docker使用的是linux namespace和cgroups*, and
# *docker容器隔离包含8个方面* — container isolation has eight aspects:
#
# | # | English | 中文 (the notes' words) | isolates | minidocker option |
# |---|---|---|---|---|
# | 1 | PID namespace | pid命名空间：进程标识符和能力 | process IDs (and, with capabilities, what root may do) | `pid="host"` |
# | 2 | UTS namespace | UTS命名空间：主机名和域名 | host name and domain name | `uts="host"` |
# | 3 | mount namespace | MNT命名空间：文件系统访问和结构 | the mount table | always private |
# | 4 | IPC namespace | IPC命名空间：通过共享内存的进程间通信 | shared memory, semaphores, message queues | `ipc="host"` |
# | 5 | network namespace | NET命名空间：网络访问和结构 | interfaces, addresses, ports, routes | `network="host"` |
# | 6 | user namespace | USR命名空间：用户名和标识 | user and group IDs | `userns="remap"` |
# | 7 | chroot / pivot_root | chroot()：控制文件系统根目录的位置 | where `/` is | `chroot=True` |
# | 8 | cgroups (control groups) | cgroups（笔记里的 croups）：资源保护 | how much memory, CPU, PIDs | `memory="32m"`, … |
#
# More words used below: capability 能力 · OOM killer 内存溢出终止 · mount 挂载 · bounding set 能力边界集.

# %%
import os
import subprocess
import tempfile
import threading
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from minidocker import api, capabilities
from minidocker.notebook import Lab

lab = Lab()
lab.require("ipcmk", "ipcrm", "ip", "gcc")  # host tools used below: a clear message now if one is missing

# %% [markdown]
# ## Namespaces on and off
#
# One container, six questions: which namespaces is it in (compared with this Jupyter kernel, a host
# process), and what does it see? Flip the toggles; every flip runs a real container.

# %%
LOOK = ("for n in pid uts mnt ipc net user; do readlink /proc/self/ns/$n; done; "
        "hostname; ps -o pid | tail -n +2 | wc -l; ip -o link | wc -l; id -u")


def isolation(pid="private", uts="private", ipc="private", network="none", userns="host"):
    """Run one container with these modes; compare its namespaces and its view with the host's."""
    lines = lab.run("sh", "-c", LOOK, pid=pid, uts=uts, ipc=ipc, network=network, userns=userns).lines()
    theirs = dict(zip(["pid", "uts", "mnt", "ipc", "net", "user"], lines[:6]))
    hostname, processes, interfaces, uid = lines[6:10]
    ours = lab.namespaces("self")
    with open("/proc/net/dev") as f:
        host_interfaces = len(f.readlines()) - 2  # two header lines
    host_processes = len([p for p in os.listdir("/proc") if p.isdigit()])
    seen = {"pid": f"{processes} processes (host: {host_processes})",
            "uts": f"hostname {hostname} (host: {os.uname().nodename})",
            "mnt": "its own mount table (always)", "ipc": "see section 4",
            "net": f"{interfaces} interfaces (host: {host_interfaces})", "user": f"uid {uid} (see section 6)"}
    return lab.table([{"namespace": ns, "host": ours[ns], "container": link,
                       "shared?": "shared" if ours[ns] == link else "OWN", "the container sees": seen[ns]}
                      for ns, link in theirs.items()])


isolation()  # Docker's defaults: everything private

# %% [markdown]
# Now the same with every namespace that Docker lets you share set to the host's
# (`docker run --pid host --uts host --ipc host --network host`):

# %%
isolation(pid="host", uts="host", ipc="host", network="host")

# %% [markdown]
# Try mixtures (the widget needs a live kernel; each change runs a container):

# %%
modes = {"pid": ["private", "host"], "uts": ["private", "host"], "ipc": ["private", "host"],
         "network": ["none", "host"], "userns": ["host", "remap"]}
widgets.interact(isolation, **{name: widgets.ToggleButtons(options=choices, description=name)
                               for name, choices in modes.items()});

# %% [markdown]
# Which kernel steps made the namespaces? The explain trace of the last run — note how the
# `unshare` line changes with the toggles:

# %%
lab.trace("unshare|nsenter|hostname|ip link")

# %% [markdown]
# ## 1 · PID namespace: the container's processes
#
# Inside a private PID namespace the command is PID 1 and sees only its own processes; with
# `pid="host"` it sees all of the host's.

# %%
for mode in ("private", "host"):
    r = lab.run("sh", "-c", "echo I am PID $$; ps | wc -l", pid=mode)
    print(f"pid={mode:8}", " | ".join(r.lines()), "lines of ps")

# %% [markdown]
# ## 2 · UTS namespace: the host name
#
# A private UTS namespace gets its own host name (minidocker, like Docker, uses the short ID).

# %%
for mode in ("private", "host"):
    print(f"uts={mode:8}", lab.run("hostname", uts=mode).output.strip(), "   host:", os.uname().nodename)
lab.trace("hostname")

# %% [markdown]
# ## 3 · Mount namespace: the mount table
#
# Every container gets its own mount table: a mount made inside (here with `privileged=True`, since
# mounting needs CAP_SYS_ADMIN — see the security section) is invisible to the host.

# %%
r = lab.run("sh", "-c", "mount -t tmpfs scratch /tmp && grep -c . /proc/self/mounts && grep scratch /proc/self/mounts",
            privileged=True)
with open("/proc/self/mounts") as f:
    host_mounts = f.read()
print("container:", r.lines()[0], "mounts, including:", r.lines()[1])
print("host:     ", host_mounts.count("\n"), "mounts; 'scratch' among them?", "scratch /tmp" in host_mounts)

# %% [markdown]
# ## 4 · IPC namespace: shared memory
#
# The notes' section 6 (共享内存): *默认情况下docker为每个容器创建一个独立且唯一的IPC命名空间*, and
# *--ipc host* puts the container in the host's. Make a System V shared-memory segment on the host
# (`ipcmk`), then look for it from containers: `/proc/sysvipc/shm` lists the segments of the reader's
# IPC namespace.

# %%
made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True).stdout
shmid = made.split(":")[1].strip()
try:
    for mode in ("private", "host"):
        segments = lab.run("sh", "-c", "tail -n +2 /proc/sysvipc/shm", ipc=mode).output
        ids = [line.split()[1] for line in segments.splitlines()]
        print(f"ipc={mode:8} sees segments {ids}; the host's segment {shmid} visible: {shmid in ids}")
finally:
    subprocess.run(["ipcrm", "-m", shmid], check=True)

# %% [markdown]
# ## 5 · Network namespace: interfaces
#
# A private network namespace starts with only a loopback device (bridge networking comes in chapter 5).

# %%
for mode in ("none", "host"):
    print(f"network={mode}:\n", lab.run("ip", "-o", "link", network=mode).output)

# %% [markdown]
# ## 6 · User namespace: root inside, nobody special outside
#
# With `userns="remap"` the container's uid 0 is host uid 100000: root inside, an unprivileged user to
# the host. Look at the same process from both sides:

# %%
remapped = lab.start("sleep", "60", userns="remap")
pid = lab.pid(remapped)
print("inside: ", lab.exec(remapped, "id").strip())
with open(f"/proc/{pid}/status") as f:
    print("host:   ", next(line for line in f if line.startswith("Uid")).strip(), "(real, effective, saved, fs)")
with open(f"/proc/{pid}/uid_map") as f:
    print("uid_map (inside, outside, count):", f.read().split())
lab.trace("unshare --user|uid_map|gid_map")

# %%
lab.remove(remapped)

# %% [markdown]
# ## 7 · chroot() vs pivot_root: where `/` is
#
# The notes list *chroot()：控制文件系统根目录的位置*. Docker does not actually use chroot(2): a root
# process can climb out of a chroot. `minidocker/demos/chroot_breakout.c` is the classic escape; it
# reports whether a file that exists only on the host is visible. We copy it into each container's
# writable layer (no volumes yet) and run it under `chroot=True` and under the default, pivot_root.
# (It needs `gcc` and `libc6-dev`; scripts/setup installs them. If they are absent, the next cell says so.)

# %%
from minidocker.demos import breakout_binary

binary = breakout_binary()
marker_dir = tempfile.mkdtemp(prefix="only-on-the-host-")
marker = os.path.join(marker_dir, "marker")
open(marker, "w").close()
escapes = {}
try:
    for chroot in (True, False):
        cid = lab.create("/breakout", marker, chroot=chroot)
        lab.copy_in(cid, binary, "/breakout")
        lab.start_created(cid)
        escapes[chroot] = lab.trace("chroot|pivot_root|umount")
        print("chroot " if chroot else "pivot_root", "->", lab.finish(cid).output.strip())
finally:
    os.unlink(marker)
    os.rmdir(marker_dir)

# %% [markdown]
# With chroot the host's mounts are still there above the new `/`, so `chdir("..")` enough times
# reaches the host's root. pivot_root swaps the root *mount* and then the host's tree is unmounted —
# there is no "above" left. The two traces:

# %%
display(escapes[True], escapes[False])

# %% [markdown]
# ## 8 · cgroups: a memory limit, watched until the OOM kill
#
# Namespaces decide what a container *sees*; cgroups decide how much it may *use* (the notes'
# *资源保护*). The container below (an `awk` program) keeps one more 1 MiB string every 0.2 seconds;
# we read its cgroup's memory counter from the host until the kernel's OOM killer ends it.

# %%
GROW = 'BEGIN { while (1) { heap[n++] = sprintf("%1048576s", "x"); system("sleep 0.2") } }'


def draw(ax, samples, limit_mib, title):
    ax.clear()
    ax.axhline(limit_mib, color="red", linestyle="--", label=f"--memory {limit_mib}m")
    ax.plot([t for t, _ in samples], [mib for _, mib in samples], marker=".", label="memory charged to the cgroup")
    ax.set(xlabel="seconds", ylabel="MiB", ylim=(0, limit_mib * 1.15), title=title)
    ax.legend(loc="upper left")


def watch_until_oom(limit_mib=32, period=0.1):
    """Start the growing container with a memory limit; plot its cgroup's usage live until it dies."""
    cid = lab.start("awk", GROW, memory=f"{limit_mib}m")
    steps = lab.trace("memory|cgroup.procs|tasks")
    cgroup, started = lab.cgroup(cid), time.monotonic()
    samples = []  # (seconds, MiB)

    def sample():  # in a thread of its own, so a slow redraw never delays a reading
        while api.inspect(cid, store=lab.store)["State"]["Running"] and time.monotonic() - started < 120:
            used = cgroup.memory_usage()
            if used is not None:
                samples.append((time.monotonic() - started, used / 2**20))
            time.sleep(period)

    sampler = threading.Thread(target=sample)
    sampler.start()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    handle = display(fig, display_id=True)
    while sampler.is_alive():
        draw(ax, samples, limit_mib, "growing until the limit")
        handle.update(fig)
        time.sleep(0.3)
    result = lab.finish(cid)
    state = result.record["State"]
    draw(ax, samples, limit_mib, f"OOM-killed after {samples[-1][0] if samples else 0:.1f} s: "
                                 f"exit code {result.exit_code}, OOMKilled={state['OOMKilled']}")
    handle.update(fig)
    plt.close(fig)
    return state["OOMKilled"], result.exit_code, steps


oom_killed, exit_code, limit_steps = watch_until_oom(32)
assert oom_killed and exit_code == 137  # 128 + SIGKILL: the kernel's OOM killer
limit_steps

# %% [markdown]
# The trace shows the whole mechanism: a directory under `/sys/fs/cgroup`, a number written into its
# limit file (and, on cgroup v1, a second one so that swap cannot stretch it), then the container's
# first process moved in. On v2 minidocker writes its PID into `cgroup.procs`. On v1 the process moves
# itself: it writes 0 into `tasks`, which moves just the calling thread (its only one). Moving a whole
# process makes the kernel hold up every fork on the machine and wait about 10 ms first; one thread
# needs no such lock. Nothing warned the program: at the limit the kernel found no memory to reclaim
# and sent SIGKILL, hence exit code 137 = 128 + 9.
#
# Pick another limit and press the button (needs a live kernel):

# %%
widgets.interact_manual(watch_until_oom, limit_mib=widgets.IntSlider(value=48, min=16, max=96, step=8,
                                                                      description="limit MiB"),
                        period=widgets.fixed(0.1));

# %% [markdown]
# ## Security defaults: what root inside may do
#
# The notes put *能力* (capabilities) next to the PID namespace: root in a container is still root of
# the same kernel, so Docker also takes power away. minidocker does the same by default:
#
# **Capabilities.** The bounding set keeps Docker's 14 default capabilities out of the kernel's 41:

# %%
def bounding_set(**options):
    status = lab.run("cat", "/proc/self/status", **options).output
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd")), 16)
    return [name for number, name in enumerate(capabilities.NAMES) if mask >> number & 1]


kept = bounding_set()
print(len(kept), "kept:", ", ".join(kept))
print("dropped include:", ", ".join(n for n in ("SYS_ADMIN", "NET_ADMIN", "SYS_MODULE", "SYS_TIME") if n not in kept))
lab.trace("capsh")

# %% [markdown]
# **A default container cannot mount, nor make network devices;** `cap_add=("NET_ADMIN",)` allows the
# network case and nothing more:

# %%
cases = [("mount a tmpfs", ["mount", "-t", "tmpfs", "none", "/tmp"], {}),
         ("create a veth pair", ["ip", "link", "add", "v0", "type", "veth"], {}),
         ("create a veth pair", ["ip", "link", "add", "v0", "type", "veth"], {"cap_add": ("NET_ADMIN",)}),
         ("mount a tmpfs", ["mount", "-t", "tmpfs", "none", "/tmp"], {"cap_add": ("NET_ADMIN",)})]
lab.table([{"try": what, "options": options or "defaults", "exit code": (r := lab.run(*cmd, **options)).exit_code,
            "says": r.output.strip() or "(ok)"} for what, cmd, options in cases])

# %% [markdown]
# **no_new_privs** is off by default (as in Docker) and on with `--security-opt no-new-privileges`;
# once set, no setuid program can raise privileges again:

# %%
for options in ({}, {"security_opt": ("no-new-privileges",)}):
    print(options or "defaults", "->", lab.run("grep", "NoNewPrivs", "/proc/self/status", **options).output.strip())
lab.trace("no-new-privs")

# %% [markdown]
# **Masked /proc paths and a read-only /sys.** Files that leak host information are covered by
# `/dev/null` or an empty tmpfs, and `/sys` is mounted read-only:

# %%
from minidocker.rootfs import MASKED_PATHS

masked = [path for path in MASKED_PATHS if os.path.isfile(path)]  # those this host has
inside = lab.run("sh", "-c", "for f in " + " ".join(masked) + "; do head -c 65536 $f | wc -c; done; "
                             "touch /sys/kernel/x 2>&1; grep ' /sys ' /proc/self/mounts").lines()


def readable(path):  # at most 64 KiB: /proc/kcore, where a host has it, is as big as the address space
    with open(path, "rb") as f:
        return len(f.read(65536))


sizes = [{"file": path, "bytes readable on the host (up to 64 KiB)": readable(path), "inside": size}
         for path, size in zip(masked, inside)]
print("\n".join(inside[len(masked):]))
display(lab.table(sizes), lab.trace("masked|tunables|sysfs"))

# %% [markdown]
# **seccomp.** Capabilities decide what root *may do*; a seccomp filter decides which system calls a
# process may make at all. The kernel keyring, for one, is not namespaced: without a filter, any
# container could reach the host's keys. minidocker installs Docker's default profile
# (`minidocker/seccomp.py`: an allow-list; everything else fails with EPERM). The calls it refuses,
# and why:

# %%
from minidocker import seccomp
from minidocker.demos import probe_binary

lab.table([{"system calls": names, "refused because": why} for names, why in seccomp.DENIED_WHY.items()])

# %% [markdown]
# Ask the kernel, not the table: `syscall_probe` (a small C program, `minidocker/demos/syscall_probe.c`)
# makes each call with harmless arguments, in a default container and in one with
# `security_opt=("seccomp=unconfined",)`:


# %%
def probe(*calls, **options):
    """{call: 'ok' or the errno} from syscall_probe, copied into a created container's layer and run."""
    cid = lab.create("/probe", *calls, **options)
    lab.copy_in(cid, probe_binary(), "/probe")
    lab.start_created(cid)
    return dict(line.split(": ", 1) for line in lab.finish(cid).lines())


CALLS = ("keyctl", "bpf", "unshare-user", "kexec_load", "getpid")
filtered, unconfined = probe(*CALLS), probe(*CALLS, security_opt=("seccomp=unconfined",))
assert [filtered[c] for c in CALLS[:-1]] == ["EPERM"] * 4 and filtered["getpid"] == "ok"
assert unconfined["keyctl"] == "ok"  # root with Docker's capabilities: only the filter stood in the way
display(lab.table([{"call": c, "default": filtered[c], "seccomp=unconfined": unconfined[c]} for c in CALLS]),
        lab.trace("seccomp"))

# %% [markdown]
# **Devices.** A device node is only a name for a driver of the *host's* kernel, and container root
# may make any name (CAP_MKNOD): `mknod /tmp/disk b 8 0` is the host's first disk. What stops it is
# the devices cgroup (`minidocker/cgroups/devices.py`): before every open(2) of a device node the kernel
# asks the opener's cgroup. Docker's allow-list, and then the kernel's answers next to the model's:

# %%
from minidocker.cgroups import devices

lab.table([{"rule (devices.allow)": str(rule), "for": rule.what} for rule in devices.DEFAULT_RULES])

# %%
NODES = {"/dev/null": ("c", 1, 3), "/dev/kvm": ("c", 10, 232), "loop0 (a disk)": ("b", 7, 0),
         "tty1 (a console)": ("c", 4, 1)}
script = "; ".join(f"mknod /tmp/n{i} {kind} {major} {minor} && ((exec 3<>/tmp/n{i}) 2>/dev/null && echo opened "
                   f"|| echo refused)" for i, (kind, major, minor) in enumerate(NODES.values()))
kernel_says = lab.run("sh", "-c", script).lines()
model_says = ["opened" if devices.allowed(devices.DEFAULT_RULES, kind, major, minor, "rw") else "refused"
              for kind, major, minor in NODES.values()]
assert kernel_says == model_says  # ask the kernel, not the model: they agree
lab.table([{"node": name, "type major:minor": f"{kind} {major}:{minor}", "the model": m, "the kernel": k}
           for (name, (kind, major, minor)), m, k in zip(NODES.items(), model_says, kernel_says)])

# %% [markdown]
# ## `exec` is confined too, and `--privileged` lifts all of it
#
# `minidocker exec` does not start a container: a process joins the namespaces and the cgroup of a
# running one (`minidocker/enter.py`). It comes from the host, where root holds every capability, so
# minidocker confines it exactly as the container's own first process (`minidocker/confinement.py`).
# `exec --privileged` gives that one process every capability, and a `privileged=True` container gives
# them to all, with no seccomp filter, nothing masked, and a writable /sys:


# %%
def confinement_of(status: str) -> dict:
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    effective = int(fields["CapEff"], 16)
    return {"capabilities (CapEff)": bin(effective).count("1"), "CapEff": fields["CapEff"],
            "CapBnd": fields["CapBnd"], "CapInh": fields["CapInh"], "CapAmb": fields["CapAmb"],
            "Seccomp": fields["Seccomp"], "NoNewPrivs": fields["NoNewPrivs"]}


plain, privileged = lab.start("sleep", "300"), lab.start("sleep", "300", privileged=True)
rows = {"PID 1 of a default container": confinement_of(lab.exec(plain, "cat", "/proc/1/status")),
        "exec into it": confinement_of(lab.exec(plain, "cat", "/proc/self/status")),
        "exec --privileged into it": confinement_of(lab.exec(plain, "cat", "/proc/self/status", privileged=True)),
        "PID 1 of a privileged container": confinement_of(lab.exec(privileged, "cat", "/proc/1/status"))}
docker_default = f"{capabilities.mask_of(capabilities.DEFAULT):016x}"
assert rows["exec into it"] == rows["PID 1 of a default container"]  # the same confinement, both ways in
assert rows["exec into it"]["CapEff"] == docker_default and rows["exec into it"]["Seccomp"] == "2"
assert rows["PID 1 of a privileged container"]["Seccomp"] == "0"
assert rows["exec --privileged into it"]["capabilities (CapEff)"] > len(capabilities.DEFAULT)
display(lab.table([{"process": who, **sets} for who, sets in rows.items()]))

# %% [markdown]
# What the last row's container may do that a default one may not, asked of each:

# %%
TRIES = {"mount a tmpfs": "mount -t tmpfs none /tmp",
         "/sys writable": "grep -q ' /sys sysfs rw' /proc/mounts",
         "/proc/sys writable": "! grep -q ' /proc/sys proc ro' /proc/mounts",
         f"{masked[0]} unmasked": f"! grep -q ' {masked[0]} ' /proc/mounts"}  # a masked file this host has
answers = {who: {what: lab.exec(cid, "sh", "-c", f"if {check} 2>/dev/null; then echo yes; else echo no; fi").strip()
                 for what, check in TRIES.items()}
           for who, cid in (("default", plain), ("privileged", privileged))}
assert set(answers["default"].values()) == {"no"} and set(answers["privileged"].values()) == {"yes"}
lab.table([{"may it": what, "default": answers["default"][what], "privileged=True": answers["privileged"][what]}
           for what in TRIES])

# %%
for cid in (plain, privileged):
    lab.remove(cid)

# %% [markdown]
# ## What you saw
#
# | aspect (方面) | switched with | evidence |
# |---|---|---|
# | pid | `pid=` | PID 1 inside; a handful of processes vs all of the host's |
# | uts | `uts=` | the short ID as host name |
# | mnt | always private | a tmpfs mounted inside, absent on the host |
# | ipc | `ipc=` | the host's shm segment visible only with `ipc="host"` |
# | net | `network=` | only `lo` vs the host's interfaces |
# | user | `userns=` | uid 0 inside is uid 100000 outside |
# | chroot vs pivot_root | `chroot=` | ESCAPED vs CONTAINED |
# | cgroups | `memory=` | exit code 137, OOMKilled |
#
# Next: **02_create_and_run**.

# %%
print(lab.cleanup())
