"""Notebook 00 -- containers vs virtual machines (seed: 需要回答的问题, "docker和虚拟化技术之间的区别")."""

# %% [markdown]
# # 00 · Containers are not virtual machines
#
# **Goal:** show, with evidence from the running kernel, what a container is and what it is not.
# **Difficulty:** beginner · **Time:** 15 minutes · run every cell top to bottom, as root.
#
# The study notes this course grew from ask first: *docker和虚拟化技术之间的区别* — how does Docker differ
# from virtualisation? Their answer: *虚拟化技术虚拟的是硬件* (a VM virtualises hardware), while
# *docker是通过linux的namespace和cgroup将不同的服务隔离起来* (Docker isolates services with the Linux
# kernel's namespaces and cgroups). Here we check that answer instead of believing it.
#
# | English | 中文 | in one line |
# |---|---|---|
# | virtualisation / virtual machine | 虚拟化 / 虚拟机 | a whole computer imitated in software, running its own kernel |
# | container | 容器 | ordinary host processes the kernel shows a different view of the world |
# | kernel | 内核 | the one program that owns the hardware; every process asks it for everything |
# | namespace | 命名空间 | what a process can *see* (its own PIDs, hostname, mounts, network, …) |
# | cgroup (control group) | 控制组（笔记里的 croups） | how much a process may *use* (memory, CPU, PIDs) — the notes' 资源保护 |
# | process | 进程 | a running program, with a PID |
# | isolation | 隔离 | keeping processes from seeing or disturbing each other |

# %%
import os
from minidocker.notebook import Lab

lab = Lab()  # a private state root and cgroup parent, removed again in the last cell
print("lab state in", lab.store.root)

# %% [markdown]
# ## 1. One kernel, inside and out
#
# A virtual machine boots a kernel of its own. A container does not: ask for the kernel's release on
# the host and inside a container.

# %%
inside = lab.run("uname", "-r")
print("host kernel:     ", os.uname().release)
print("container kernel:", inside.output.strip())
assert inside.output.strip() == os.uname().release  # the same kernel, not a copy of it

# %% [markdown]
# The container even sees the host's memory and CPUs: `/proc/meminfo` and the CPU count come from
# the one kernel. A memory *limit* (cgroup, notebook 01) caps what the container may use, but it does
# not give it a smaller virtual machine to look at.

# %%
limited = lab.run("sh", "-c", "grep MemTotal /proc/meminfo; nproc", memory="32m")
with open("/proc/meminfo") as f:
    host_total = f.readline()
print("host:                 ", host_total.strip(), "|", os.cpu_count(), "CPUs")
print("container (--memory 32m):", " | ".join(limited.lines()), "CPUs")

# %% [markdown]
# ## 2. The container's processes are host processes
#
# Start a container that just sleeps, in the background, and look at it *from the host*.

# %%
sleeper = lab.start("sleep", "300")
host_pid = lab.pid(sleeper)
with open(f"/proc/{host_pid}/cmdline", "rb") as f:
    print("host PID", host_pid, "runs", f.read().replace(b"\0", b" ").decode())
with open(f"/proc/{host_pid}/status") as f:
    print(next(line for line in f if line.startswith("NSpid")))

# %% [markdown]
# `NSpid` lists the process's PID in each PID namespace it belongs to: the host's number, then the
# container's. One process, two names — and inside the container it is PID 1:

# %%
print(lab.exec(sleeper, "ps"))

# %% [markdown]
# ## 3. Namespaces: the same kind of link, different targets
#
# Every process has links in `/proc/PID/ns/`. Two processes share a namespace exactly when their links
# point at the same identity. Compare the Jupyter kernel (a host process) with the container's PID 1:

# %%
host, container = lab.namespaces("self"), lab.namespaces(host_pid)
lab.table([{"namespace": ns, "host": host[ns], "container": container[ns],
            "shared?": "shared" if host[ns] == container[ns] else "own"} for ns in host])

# %% [markdown]
# pid, uts, mnt, ipc and net are the container's own; user and cgroup are shared (by default, as in
# Docker). Nothing here is emulated hardware: these are the same kernel objects any process has.
#
# ## 4. What minidocker asked the kernel for
#
# This is the `--explain` trace of the `start` above: every step the code really performed, written as
# a shell command you could paste into a root shell. The namespace, root-filesystem and cgroup steps:

# %%
lab.trace("unshare|mount -t overlay|pivot_root|cgroup.procs|tasks|hostname")

# %% [markdown]
# And the whole trace, exactly as `minidocker --explain run -d busybox sleep 300` prints it:

# %%
print(lab.trace())

# %% [markdown]
# No step boots anything. A container starts in a fraction of a second because it is a `fork` plus a
# few system calls; a VM starts a kernel. Stop the sleeper:

# %%
lab.remove(sleeper)
print(os.path.exists(f"/proc/{host_pid}"))  # gone from the host: it was a host process all along

# %% [markdown]
# ## The answer, with evidence
#
# | | virtual machine (虚拟机) | container (容器) |
# |---|---|---|
# | kernel | its own (boots one) | the host's (§1: same `uname -r`) |
# | processes | invisible to the host, inside the VM's memory | host processes with a second PID (§2: `NSpid`) |
# | isolation by | emulated hardware + hypervisor | namespaces (§3) and cgroups (notebook 01) |
# | memory/CPU seen | the virtual hardware's | the host's, capped by a cgroup (§1) |
# | start-up | boot a kernel | `fork` + a few system calls (§4) |
#
# Next: **01_isolation** switches each namespace on and off, one at a time.

# %%
print(lab.cleanup())
