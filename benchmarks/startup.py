"""How long does it take to start a container that does nothing?

Every case below runs ``/bin/true`` from the same busybox root filesystem,
inside fresh pid, mount, uts, ipc and network namespaces, and we time the
whole command from the outside (fork, exec, set-up, the container, tear-down):

  floor       unshare + chroot: the namespaces alone, no runtime at all
  runc        the OCI runtime Docker uses (Go)
  crun        a smaller OCI runtime (C)
  minidocker  this project (Python): image store, overlay rootfs, cgroup, ...
  interpreter ``python -c pass`` -- what minidocker pays before its first line

Absolute milliseconds depend on the machine, its load and its kernel, so do
not compare them across machines.  The point is the *ratio* column: all cases
are measured in the same run on the same machine, so "minidocker / runc" says
how much dearer minidocker is than a real runtime, and "minidocker / floor"
how much of its time is runtime work rather than kernel work.

Run as root:  sudo .venv/bin/python benchmarks/startup.py [--runs N] [--write-results]
"""

import argparse
import ctypes
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context

HERE = os.path.dirname(os.path.abspath(__file__))
MINIDOCKER = os.path.join(os.path.dirname(sys.executable), "minidocker")
WARMUPS = 2
ID_PREFIX = f"mdbench-{os.getpid()}-"  # container ids for runc/crun; unique to this run
NAMESPACES = ["--pid", "--fork", "--mount", "--uts", "--ipc", "--net"]
HYBRID_V2 = "/sys/fs/cgroup/unified"


def install_runtimes(notes):
    """Return the OCI runtimes we can use, installing missing ones with apt-get."""
    missing = [name for name in ("runc", "crun") if not shutil.which(name)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...")
        subprocess.run(["apt-get", "update"])
        subprocess.run(["apt-get", "install", "-y", *missing])
    for name in missing:
        if not shutil.which(name):
            notes.append(f"{name}: could not be installed, case skipped")
            print(f"NOTE: {notes[-1]}")
    return [name for name in ("runc", "crun") if shutil.which(name)]


def run_quietly(cmd, env=None, cwd=None):
    result = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")


def measure(commands, env=None):
    """Time each command (wall clock, ms); the first WARMUPS are thrown away."""
    samples = []
    for cmd in commands:
        start = time.perf_counter()
        run_quietly(cmd, env=env)
        samples.append((time.perf_counter() - start) * 1000)
    return samples[WARMUPS:]


def hide_cgroup_v2():
    """Move this process into a private mount namespace without the cgroup2 mount,
    so crun sees a plain cgroup v1 host.  The host's own mounts are untouched."""
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_private, mnt_detach = 0x20000, 0x4000, 0x40000, 2
    if (libc.unshare(clone_newns) != 0
            or libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0
            or libc.umount2(HYBRID_V2.encode(), mnt_detach) != 0):
        raise OSError(ctypes.get_errno(), "cannot hide " + HYBRID_V2)


def measure_without_cgroup_v2(commands):
    with ProcessPoolExecutor(1, mp_context=get_context("fork"), initializer=hide_cgroup_v2) as helper:
        return helper.submit(measure, commands).result()


def cgroup_v2_holds_controllers():
    path = os.path.join(HYBRID_V2, "cgroup.controllers")
    return os.path.exists(path) and open(path).read().strip() != ""


def busybox_layer(root):
    """Build the busybox image in `root` and return its (only) layer directory."""
    run_quietly([MINIDOCKER, "run", "--rm", "busybox", "true"], env={**os.environ, "MINIDOCKER_ROOT": root})
    layers = os.path.join(root, "images", "layers")
    found = [os.path.join(layers, d) for d in os.listdir(layers)
             if not d.startswith(".") and not d.endswith("-uid") and os.path.isdir(os.path.join(layers, d))]
    if len(found) != 1:
        raise RuntimeError(f"expected one layer in {layers}, found {found}")
    return found[0]


def make_bundle(layer, bundle, runtime):
    """An OCI bundle: a copy of the busybox layer plus runc's default config.json."""
    os.mkdir(bundle)
    subprocess.run(["cp", "-a", layer, os.path.join(bundle, "rootfs")], check=True)
    run_quietly([runtime, "spec"], cwd=bundle)
    config_path = os.path.join(bundle, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"]["readonly"] = True  # namespaces stay as runc spec made them: pid, net, ipc, uts, mount
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)


def remove_leftover_containers(runtime):
    listing = subprocess.run([runtime, "list", "-q"], capture_output=True, text=True).stdout.split()
    for cid in listing:
        if cid.startswith(ID_PREFIX):
            subprocess.run([runtime, "delete", "-f", cid], capture_output=True)


def traces(paths):
    """Mounts and cgroups that a container runtime might leave behind."""
    with open("/proc/self/mountinfo") as f:
        mounts = {line.strip() for line in f
                  if "minidocker" in line or "overlay" in line or any(p in line for p in paths)}
    cgroups = {p for p in glob.glob("/sys/fs/cgroup/*/*") + glob.glob("/sys/fs/cgroup/*/*/*")
               if os.path.isdir(p) and ("minidocker" in p.lower() or ID_PREFIX in p)}
    return mounts | cgroups


def table(results):
    md = statistics.median(results["minidocker"])
    lines = ["| case | median ms | p90 ms | minidocker / case |", "|---|---:|---:|---:|"]
    for case, samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
        lines.append(f"| {case} | {median:.1f} | {p90:.1f} | {md / median:.2f}× |")
    return "\n".join(lines)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    versions = [subprocess.run([r, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
                for r in ("runc", "crun") if shutil.which(r)]
    return [f"kernel: {platform.release()}", f"CPU: {cpu}", f"nproc: {len(os.sched_getaffinity(0))}",
            f"python: {platform.python_version()}", *versions]


def write_results(text_table, runs, notes):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"# Startup benchmark: latest results\n", f"{now}, `benchmarks/startup.py --runs {runs}` "
            f"(median and p90 of {runs} runs after {WARMUPS} warm-ups, wall clock per `/bin/true` container).\n",
            "Machine:\n", *[f"- {line}" for line in machine()], "", text_table, ""]
    if notes:
        body += ["Notes:\n", *[f"- {note}" for note in notes], ""]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(body))


def time_runtimes(runtimes, bundle, ids, results, notes):
    for runtime in runtimes:
        print(f"timing {runtime} ...")
        commands = [[runtime, "run", "--bundle", bundle, cid] for cid in ids]
        try:
            if runtime == "crun" and cgroup_v2_holds_controllers():
                notes.append(f"crun rejects hybrid hosts whose cgroup2 mount holds a controller (here: "
                             f"{open(HYBRID_V2 + '/cgroup.controllers').read().strip()}), so it was timed from "
                             f"a helper process whose private mount namespace lacks {HYBRID_V2}")
                print(f"NOTE: {notes[-1]}")
                results[runtime] = measure_without_cgroup_v2(commands)
            else:
                results[runtime] = measure(commands)
        except Exception as error:
            notes.append(f"{runtime} failed, case skipped: {error}")
            print(f"NOTE: {notes[-1]}")
        finally:
            remove_leftover_containers(runtime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write-results", action="store_true", help="also write benchmarks/RESULTS.md")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists(MINIDOCKER):
        sys.exit(f"run as root, with the interpreter of the venv that holds {MINIDOCKER}")

    notes, results = [], {}
    runtimes = install_runtimes(notes)
    base = tempfile.mkdtemp(prefix="minidocker-bench-")
    before = traces([base, ID_PREFIX])
    root, bundle = os.path.join(base, "root"), os.path.join(base, "bundle")
    ids = [f"{ID_PREFIX}{i}" for i in range(WARMUPS + args.runs)]
    try:
        print("building the busybox image and the OCI bundle ...")
        make_bundle(busybox_layer(root), bundle, runtimes[0] if runtimes else "runc")
        print("timing floor ...")
        floor = ["unshare", *NAMESPACES, "chroot", os.path.join(bundle, "rootfs"), "/bin/true"]
        results["floor"] = measure([floor] * len(ids))
        time_runtimes(runtimes, bundle, ids, results, notes)
        print("timing minidocker ...")
        minidocker = [MINIDOCKER, "run", "--rm", "busybox", "true"]
        results["minidocker"] = measure([minidocker] * len(ids), env={**os.environ, "MINIDOCKER_ROOT": root})
        print("timing the interpreter floor ...")
        results["interpreter (python -c pass)"] = measure([[sys.executable, "-c", "pass"]] * len(ids))
        if os.listdir(os.path.join(root, "containers")):
            notes.append("minidocker run --rm left container directories behind")
    finally:
        new = traces([base, ID_PREFIX]) - before
        ours = {t for t in new if base in t or ID_PREFIX in t}
        if ours:  # never rm -r through a mount that is still there
            print("WARNING: left behind, temp dir kept:", *sorted(ours), sep="\n  ")
        else:
            shutil.rmtree(base, ignore_errors=True)
        for t in sorted(new - ours):
            print(f"note: new since start, maybe another process's: {t}")

    text_table = table(results)
    print(f"\n{args.runs} runs each after {WARMUPS} warm-ups:\n\n{text_table}\n")
    for note in notes:
        print(f"note: {note}")
    if args.write_results:
        write_results(text_table, args.runs, notes)
        print(f"wrote {os.path.join(HERE, 'RESULTS.md')}")
    print("NOT clean, see the warning above" if ours else "clean: no mounts, cgroups or containers of ours left")
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main())
