"""Notebook 02 -- create and run (seed section 2, 消除源数据冲突; plus --entrypoint and 初始化进程 init)."""

# %% [markdown]
# # 02 · create, start, run — and who runs as PID 1
#
# **Goal:** tell `create` from `run`, avoid ID and name conflicts, predict which command a container
# runs (ENTRYPOINT + CMD), and see why a container wants an init process.
# **Difficulty:** beginner to intermediate · **Time:** 30 minutes · run every cell top to bottom, as root.
#
# The study notes, section 2: *docker create --cpid: 通过cpid文件创建container* and
# *`docker run`与`docker create`的区别*. (The flag is really `--cidfile`; the heading *消除源数据冲突*
# is about avoiding conflicts in container metadata — 元数据冲突.) The notes also ask about
# *docker run中--entrypoint的用法*, and list *初始化进程 init* with nothing under it: both are answered
# below by experiment.
#
# | English | 中文 | in one line |
# |---|---|---|
# | create / start / run | 创建 / 启动 / 运行 | write the record / start its process / both at once |
# | container ID file (`--cidfile`) | 容器ID文件（笔记写作 --cpid） | a file the new ID is written to, claimed exclusively |
# | name | 名称 | a unique, human name for a container |
# | conflict | 冲突 | a second claim on a name or cidfile: refused |
# | metadata | 元数据（笔记写作 源数据） | what `inspect` shows: Config, HostConfig, State |
# | entrypoint / CMD | 入口点 / 默认命令 | the fixed part / the replaceable part of the command |
# | init process (PID 1) | 初始化进程 | the process every orphan is handed to |
# | zombie / reap | 僵尸进程 / 回收 | a finished process nobody has waited for / waiting for it |

# %%
import os
import time

import ipywidgets as widgets

from minidocker import api, images
from minidocker.errors import MinidockerError
from minidocker.notebook import Lab

lab = Lab()

# %% [markdown]
# ## 1. create writes a record; start makes the process
#
# `create` only writes the container's record and files. Its explain trace is empty: it asked the
# kernel for nothing.

# %%
cid = lab.create("sh", "-c", "echo hello from $(hostname)")
record = api.inspect(cid, store=lab.store)
print("status:", record["State"]["Status"], "| PID:", record["State"]["Pid"], "| command:", record["Path"], record["Args"])
print("kernel steps during create:", len(lab.trace()))
print("files:", sorted(os.listdir(lab.store.container_dir(cid))))

# %% [markdown]
# `start` does all the kernel work — cgroup, namespaces, overlay, pivot_root — and `run` is exactly
# `create` followed by `start`:

# %%
lab.start_created(cid)
lab.trace("mkdir|unshare|mount -t overlay|pivot_root|exec")

# %%
result = lab.finish(cid)
print(result.output.strip(), "| exit code", result.exit_code, "| status then:", result.record["State"]["Status"])

# %% [markdown]
# The life of one container, step by step (`sleep` as PID 1 ignores SIGTERM, so `stop` waits its
# timeout and then kills: exit code 137):

# %%
states = []
cid = lab.create("sleep", "60")
states.append(("create", api.inspect(cid, store=lab.store)["State"]))
lab.start_created(cid)
states.append(("start", api.inspect(cid, store=lab.store)["State"]))
api.stop(cid, timeout=1, store=lab.store)
states.append(("stop -t 1", api.inspect(cid, store=lab.store)["State"]))
lab.remove(cid)
lab.table([{"after": step, "Status": s["Status"], "Running": s["Running"], "Pid": s["Pid"], "ExitCode": s["ExitCode"]}
           for step, s in states])

# %% [markdown]
# ## 2. --cidfile: the ID goes to a file, once
#
# Scripts need the new container's ID. `--cidfile` writes it to a file — created exclusively
# (`O_CREAT|O_EXCL`), so two containers can never claim the same file. The second `create` below is
# refused, and creates nothing:

# %%
cidfile = os.path.join(lab.store.root, "web.cid")
first = lab.create("true", cidfile=cidfile)
with open(cidfile) as f:
    print("cidfile holds:", f.read(), "== first:", f"{first}"[:12] + "…")
before = len(api.containers(all=True, store=lab.store))
try:
    lab.create("true", cidfile=cidfile)
except MinidockerError as e:
    print(f"second create refused (exit code {e.exit_code}): {e}")
print("containers before/after the refused create:", before, len(api.containers(all=True, store=lab.store)))

# %% [markdown]
# ## 3. Names: unique, or refused
#
# A name is the other handle on a container, and the other source of conflicts. Unnamed containers
# get a generated adjective_noun name.

# %%
lab.create("true", name="web")
try:
    lab.create("true", name="web")
except MinidockerError as e:
    print("refused:", e)
api.rename("web", "web-old", store=lab.store)
lab.create("true", name="web")  # the name is free again
lab.table([{"name": r["Name"], "id": r["Id"][:12], "status": r["State"]["Status"]}
           for r in api.containers(all=True, store=lab.store)])

# %% [markdown]
# ## 4. --entrypoint vs CMD: which command runs?
#
# The notes' answer to *--entrypoint的用法* was "default command to execute at runtime". Let's make it
# precise. An image stores an ENTRYPOINT (fixed part) and a CMD (default arguments). We make an image
# `greeter` from busybox's layer with both set, as a Dockerfile's
# `ENTRYPOINT ["echo", "greeter says:"]` and `CMD ["hello"]` would:

# %%
config = images.get(lab.store, "busybox").config
greeter = {**config, "config": {**config["config"], "Entrypoint": ["echo", "greeter says:"], "Cmd": ["hello"]}}
images.add_image(lab.store, greeter, ["greeter:latest"])
print("busybox:", images.get(lab.store, "busybox").runtime_config)
print("greeter:", images.get(lab.store, "greeter").runtime_config)

# %% [markdown]
# **Fill the table.** Before running the next cell, predict the "runs" column for each case. Then run
# it, and add your own cases to `CASES`: (image, `--entrypoint` or None, arguments after the image).

# %%
CASES = [
    ("busybox", None, []),
    ("busybox", None, ["echo", "hi"]),
    ("busybox", "echo", []),
    ("busybox", "echo", ["hi"]),
    ("greeter", None, []),
    ("greeter", None, ["bye"]),
    ("greeter", "hostname", []),
    ("greeter", "echo", ["only", "these"]),
]


def case(image, entrypoint, args):
    options = {"entrypoint": entrypoint} if entrypoint is not None else {}
    r = lab.run(*args, image=image, **options)
    return {"image": image, "--entrypoint": entrypoint or "", "arguments": " ".join(args),
            "runs": " ".join([r.record["Path"], *r.record["Args"]]), "output": r.output.strip() or "(nothing)"}


lab.table([case(*c) for c in CASES])

# %% [markdown]
# The rule (`minidocker/spec.py`, `resolve_command`): **command = ENTRYPOINT + CMD**; arguments after
# the image replace CMD; `--entrypoint` replaces ENTRYPOINT *and drops the image's CMD*.
# (`busybox` with no arguments runs `sh`, which finds no input and exits at once.)
#
# Try cases live (needs a live kernel):

# %%
widgets.interact_manual(lambda image, entrypoint, arguments: lab.table([case(image, entrypoint or None,
                                                                              arguments.split())]),
                        image=widgets.Dropdown(options=["busybox", "greeter"], value="greeter"),
                        entrypoint=widgets.Text(value="", placeholder="(none)"),
                        arguments=widgets.Text(value="world"));

# %% [markdown]
# **An entrypoint that checks the environment.** The notes (section 7) suggest an ENTRYPOINT script
# *检验容器环境变量是否配置正确* — one that checks the environment, then hands over to CMD with
# `exec "$@"`. We copy such a script into the container's writable layer and run it with and without
# the variable it wants:

# %%
check = os.path.join(lab.store.root, "check-env.sh")
with open(check, "w") as f:
    f.write('#!/bin/sh\n[ -n "$GREETING" ] || { echo "entrypoint: set GREETING (-e GREETING=...)" >&2; exit 64; }\n'
            'exec "$@"\n')
os.chmod(check, 0o755)
for env in ((), ("GREETING=hi",)):
    cid = lab.create("sh", "-c", 'echo "$GREETING from CMD"', entrypoint="/check-env.sh", env=env)
    lab.copy_in(cid, check, "/check-env.sh")
    lab.start_created(cid)
    r = lab.finish(cid)
    print(f"env={list(env)}: exit {r.exit_code}: {r.output.strip()}")

# %% [markdown]
# ## 5. The init process: who reaps the orphans?
#
# The notes end with a heading *初始化进程 init* and no text. Here is what it is about. When a process
# exits, it stays a **zombie** until its parent waits for it; when its parent is already gone, the
# kernel hands it to PID 1 of its PID namespace. A normal program running as PID 1 (here `sleep`)
# never waits for children it did not start, so zombies pile up. With `init=True` PID 1 is
# minidocker's tiny init (`minidocker/init.py`, what tini is for Docker), which reaps them.
#
# The command below leaves three orphans behind and then becomes `sleep 60`. We count zombies from the
# host, reading `/proc/*/stat` for zombie children of the container's PID 1.

# %%
ORPHANS = "for i in 1 2 3; do (sleep 0.2 &); done; exec sleep 60"


def zombies_in(cid):
    """Host PIDs of zombie processes whose parent is the container's PID 1."""
    pid1 = lab.pid(cid)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, parent = fields[0], int(fields[1])
        if state == "Z" and parent == pid1:
            found.append(int(pid))
    return found


rows = []
for init in (False, True):
    cid = lab.start("sh", "-c", ORPHANS, init=init)
    time.sleep(1)  # the orphans' sleep 0.2 has long finished
    rows.append({"init": init, "zombies seen from the host": len(zombies_in(cid)),
                 "ps inside (STAT Z = zombie)": lab.exec(cid, "ps", "-o", "pid,stat,comm").strip()})
    init_steps = lab.trace("execve|--init")
    lab.remove(cid)
lab.table(rows)

# %% [markdown]
# Without init, three `sleep` zombies hang under PID 1 until the container dies (each holds a PID: a
# busy server leaks them until `--pids-limit` or the PID space runs out). With init, PID 1 is
# `minidocker-init`, the command is PID 2, and the orphans were reaped. In the trace of the run with
# `init=True`, PID 1 forks just before the `exec`: the child (PID 2) performs that exec and PID 1
# stays behind, waiting (`minidocker/init.py`).

# %%
init_steps

# %% [markdown]
# ## What you saw
#
# | question | answer, by experiment |
# |---|---|
# | create vs run (区别) | create: a record, no kernel step; run = create + start |
# | --cidfile (笔记: --cpid) | the ID in a file claimed exclusively: a second claim is refused, nothing created |
# | names | unique; a second claim is refused; rename frees a name |
# | --entrypoint | command = ENTRYPOINT + CMD; args replace CMD; --entrypoint replaces ENTRYPOINT and drops CMD |
# | init (初始化进程) | PID 1 inherits orphans; only a PID 1 that waits (init=True) reaps them |

# %%
print(lab.cleanup())
