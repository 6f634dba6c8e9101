"""minidocker beside the real thing: one command, every case, ratios measured in the same run.

    sudo benchmarks/run                       # set-up (once), then every case; rewrites RESULTS.md
    sudo benchmarks/run --runs 40 --only P1   # more runs, one case
    sudo benchmarks/run --count 20 --only P4  # fewer containers

The engines (each skipped with a note if it cannot be made to work here):

  floor       unshare + chroot into the busybox rootfs: the kernel's own cost, no runtime
  runc, crun  `<runtime> run` on an OCI bundle of the same rootfs (runc is what Docker uses)
  docker      a PRIVATE dockerd (own data-root, exec-root, pidfile, socket; no bridge, no iptables)
  podman      a PRIVATE podman (own --root/--runroot/--tmpdir and containers.conf)
  minidocker  this project, with a private MINIDOCKER_ROOT

Everything lives in one temporary directory; afterwards no daemon, mount,
cgroup or process of ours is left (checked, and reported if not).

A case is one row of CASES at the bottom: a name, what it measures, and a
function(bench) that returns its Markdown section.  A later chapter (bridge
networking, build cache, layer unpack, compose) adds its case by adding a row.
"""

import argparse
import ctypes
import glob
import json
import os
import platform
import random
import resource
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
PROJECT = os.path.dirname(HERE)
MINIDOCKER = os.path.join(os.path.dirname(sys.executable), "minidocker")
PREFIX = f"mdbench-{os.getpid()}"  # names of everything we make: container ids, cgroups, images
IMAGE = "mdbench/busybox"
HYBRID_V2 = "/sys/fs/cgroup/unified"
NO_INPUT = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}


def sh(cmd, env=None, cwd=None, input_file=None) -> str:
    """Run a set-up command; its stdout, or an error naming it."""
    result = subprocess.run(cmd, env=env, cwd=cwd, stdin=input_file or subprocess.DEVNULL,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()[-400:]}")
    return result.stdout


def time_command(cmd, env=None) -> float:
    """Wall-clock milliseconds of one command, from fork to its exit (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, **NO_INPUT)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.decode().strip()[-400:]}")
    return elapsed


# -- crun on a cgroup "hybrid" host -------------------------------------------------------------
# crun refuses a host whose cgroup2 mount holds a controller ("cgroups in hybrid mode not supported").
# We time it from a helper process whose private mount namespace lacks that mount; the host is untouched.

def _hide_cgroup_v2():
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_private, mnt_detach = 0x20000, 0x4000, 0x40000, 2
    if (libc.unshare(clone_newns) != 0
            or libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0
            or libc.umount2(HYBRID_V2.encode(), mnt_detach) != 0):
        raise OSError(ctypes.get_errno(), "cannot hide " + HYBRID_V2)


def cgroup_v2_holds_controllers() -> str:
    path = os.path.join(HYBRID_V2, "cgroup.controllers")
    return open(path).read().strip() if os.path.exists(path) else ""


# -- what a runtime might leave behind ------------------------------------------------------------

def our_cgroups() -> list[str]:
    """Cgroup directories named after this run (docker/podman/minidocker parents), deepest first."""
    found = [p for p in glob.glob("/sys/fs/cgroup/**/", recursive=True) if PREFIX in p]
    return sorted((p.rstrip("/") for p in found), key=lambda p: -p.count("/"))


def our_mounts(base) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if base in line.split()[4]]


def our_processes(base) -> list[int]:
    """Processes whose command line names our temp dir or prefix (daemons, shims, conmon, supervisors)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if int(pid) != os.getpid() and (base in cmdline or PREFIX in cmdline):
            pids.append(int(pid))
    return pids


def memory_of(pid) -> tuple[int, int]:
    """(Rss, Pss) in kB from /proc/PID/smaps_rollup: Pss divides each shared page among its sharers."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    return values["Rss"], values["Pss"]


def reap_orphans():
    """We are a child subreaper: daemons' orphans (exited shims) come back to us; collect them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- the engines ----------------------------------------------------------------------------------

class Bench:
    """Every engine, set up privately under one temporary directory; `close()` takes it all down."""

    def __init__(self, args):
        self.args, self.notes = args, []
        self.base = tempfile.mkdtemp(prefix="mdbench-", dir=args.tmp)
        os.chmod(self.base, 0o711)  # minidocker's --userns remap and podman need to traverse it
        self.md_env = {**os.environ, "MINIDOCKER_ROOT": f"{self.base}/minidocker",
                       "MINIDOCKER_CGROUP_PARENT": f"{PREFIX}-minidocker"}
        self.docker = self.podman = self.crun_helper = None
        self.podman_env = None
        self.runtimes = [r for r in ("runc", "crun") if shutil.which(r)]
        self._dockerd = None

    def note(self, text):
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    # set-up -------------------------------------------------------------------------------
    def set_up(self):
        print("set-up: busybox image, rootfs, OCI bundle ...", flush=True)
        sh([sys.executable, "-m", "minidocker.images"], env=self.md_env)  # a store with the busybox image
        layers = f"{self.base}/minidocker/images/layers"
        found = [d for d in glob.glob(f"{layers}/*") if os.path.isdir(d) and not d.endswith("-uid")
                 and not os.path.basename(d).startswith(".")]
        if len(found) != 1:
            raise RuntimeError(f"expected one busybox layer in {layers}, found {found}")
        self.bundle = f"{self.base}/bundle"
        self.rootfs = f"{self.bundle}/rootfs"
        os.mkdir(self.bundle)
        sh(["cp", "-a", found[0], self.rootfs])
        self.rootfs_tar = f"{self.base}/rootfs.tar"
        sh(["tar", "-C", self.rootfs, "-cf", self.rootfs_tar, "."])
        self._make_bundle()
        if self.args.floor_only:
            self.runtimes = []
        if cgroup_v2_holds_controllers() and "crun" in self.runtimes:
            self.note(f"crun rejects hybrid cgroup hosts whose cgroup2 mount holds a controller (here: "
                      f"{cgroup_v2_holds_controllers()}), so crun is timed from a helper process whose private "
                      f"mount namespace lacks {HYBRID_V2}")
            self.crun_helper = ProcessPoolExecutor(1, mp_context=get_context("fork"), initializer=_hide_cgroup_v2)
        if not self.args.no_docker:
            self._try("docker", self._start_dockerd)
        if not self.args.no_podman:
            self._try("podman", self._start_podman)

    def _try(self, engine, start):
        if not shutil.which(engine):
            return self.note(f"{engine} is not installed (benchmarks/setup installs it): skipped")
        try:
            start()
        except Exception as error:  # noqa: BLE001 - a baseline we cannot start is a note, not a failure
            self.note(f"{engine} could not be started privately, skipped: {error}")
            setattr(self, engine, None)

    def _make_bundle(self):
        runtime = self.runtimes[0] if self.runtimes else None
        if runtime is None:
            return self.note("neither runc nor crun is installed: their cases are skipped")
        sh([runtime, "spec"], cwd=self.bundle)
        path = f"{self.bundle}/config.json"
        config = json.load(open(path))
        config["process"]["args"] = ["/bin/true"]
        config["process"]["terminal"] = False
        config["root"]["readonly"] = True  # runc spec's namespaces stay: pid, network, ipc, uts, mount
        config["linux"]["cgroupsPath"] = f"/{PREFIX}-oci/container"
        json.dump(config, open(path, "w"), indent=2)

    def _start_dockerd(self):
        d = f"{self.base}/docker"
        os.mkdir(d)
        with open(f"{d}/daemon.json", "w") as f:
            f.write("{}\n")  # not the host's /etc/docker/daemon.json
        socket = f"unix://{d}/docker.sock"
        log = open(f"{d}/dockerd.log", "w")
        self._dockerd = subprocess.Popen(
            ["dockerd", "--config-file", f"{d}/daemon.json", "--data-root", f"{d}/data", "--exec-root",
             f"{d}/exec", "--pidfile", f"{d}/docker.pid", "-H", socket, "--bridge=none", "--iptables=false",
             "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
             "--exec-opt", "native.cgroupdriver=cgroupfs", f"--cgroup-parent=/{PREFIX}-docker"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.docker = ["docker", "-H", socket]
        deadline = time.monotonic() + 30
        while subprocess.run(self.docker + ["version"], capture_output=True).returncode != 0:
            if self._dockerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not come up; see the end of its log: "
                                   f"{open(f'{d}/dockerd.log').read()[-300:]}")
            time.sleep(0.2)
        with open(self.rootfs_tar, "rb") as tar:
            sh(self.docker + ["import", "-", IMAGE], input_file=tar)
        self.docker_version = sh(["dockerd", "--version"]).strip()

    def _start_podman(self):
        p = f"{self.base}/podman"
        os.makedirs(f"{p}/tmp")
        limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], resource.getrlimit(resource.RLIMIT_NPROC)[1],
                    1048576)
        # Without CAP_SYS_RESOURCE, podman's default ulimits (1048576) exceed the hard limits: lower them.
        # runc, not crun: crun refuses hybrid cgroup hosts (see above).
        with open(f"{p}/containers.conf", "w") as f:
            f.write(f'[containers]\ndefault_ulimits = ["nofile={limit}:{limit}", "nproc={limit}:{limit}"]\n'
                    f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'tmp_dir = "{p}/tmp"\n')
        self.podman_env = {**os.environ, "CONTAINERS_CONF": f"{p}/containers.conf"}
        self.podman = ["podman", "--root", f"{p}/root", "--runroot", f"{p}/runroot", "--tmpdir", f"{p}/tmp",
                       "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]
        with open(self.rootfs_tar, "rb") as tar:
            sh(self.podman + ["import", "-", IMAGE], env=self.podman_env, input_file=tar)
        self.podman_version = sh(["podman", "--version"]).strip()

    # commands -------------------------------------------------------------------------------
    def docker_run(self, *argv):
        return self.docker + ["run", "--network", "none", *argv]

    def podman_run(self, *argv):
        return self.podman + ["run", "--network", "none", f"--cgroup-parent=/{PREFIX}-podman", *argv]

    def time_crun(self, cmd):
        if self.crun_helper:
            return self.crun_helper.submit(time_command, cmd).result()
        return time_command(cmd)

    # tear-down ---------------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Take everything down; return what is still left (should be nothing)."""
        if self.crun_helper:
            self.crun_helper.shutdown()
        for runtime in self.runtimes:
            state = f"{self.base}/{runtime}-state"
            if os.path.isdir(state):
                for cid in os.listdir(state):
                    subprocess.run([runtime, "--root", state, "delete", "-f", cid], capture_output=True)
        if self.podman:
            subprocess.run(self.podman + ["rm", "-af", "-t", "0"], env=self.podman_env, capture_output=True)
            subprocess.run(self.podman + ["system", "prune", "-f"], env=self.podman_env, capture_output=True)
        if self.docker and self._dockerd:
            listing = subprocess.run(self.docker + ["ps", "-aq"], capture_output=True, text=True).stdout.split()
            subprocess.run(self.docker + ["rm", "-f", *listing], capture_output=True)
        if self._dockerd:
            self._dockerd.terminate()  # dockerd stops its containerd, and unmounts its layers
            try:
                self._dockerd.wait(30)
            except subprocess.TimeoutExpired:
                self._dockerd.kill()
                self._dockerd.wait()
        sh([MINIDOCKER, "system", "prune", "-f"], env=self.md_env)
        deadline = time.monotonic() + 10
        while our_processes(self.base) and time.monotonic() < deadline:
            reap_orphans()
            time.sleep(0.1)
        reap_orphans()
        for mount in reversed(our_mounts(self.base)):  # e.g. podman's storage bind mount
            subprocess.run(["umount", "-l", mount], capture_output=True)
        for cgroup in our_cgroups():
            try:
                os.rmdir(cgroup)
            except OSError:
                pass
        left = ([f"process {pid}" for pid in our_processes(self.base)] + [f"mount {m}" for m in our_mounts(self.base)]
                + [f"cgroup {c}" for c in our_cgroups()])
        if not left:
            shutil.rmtree(self.base, ignore_errors=True)
        return left


# -- tables -------------------------------------------------------------------------------------

def p90(samples):
    return statistics.quantiles(samples, n=10, method="inclusive")[-1] if len(samples) > 1 else samples[0]


def ratio_table(results: dict[str, list[float]], subject="minidocker") -> str:
    """Median and p90 per engine, and the subject's median divided by each engine's."""
    mine = statistics.median(results[subject])
    lines = [f"| engine | median ms | p90 ms | {subject} / engine |", "|---|---:|---:|---:|"]
    for engine, samples in results.items():
        median = statistics.median(samples)
        lines.append(f"| {engine} | {median:.1f} | {p90(samples):.1f} | {mine / median:.2f}× |")
    return "\n".join(lines)


def verdict(results, baseline, target) -> str:
    if baseline not in results:
        return f"- minidocker / {baseline} ≤ {target}×: not measured ({baseline} unavailable)"
    ratio = statistics.median(results["minidocker"]) / statistics.median(results[baseline])
    return f"- minidocker / {baseline} = {ratio:.2f}× (target ≤ {target}×): {'met' if ratio <= target else 'NOT met'}"


# -- P1: start-to-exit of /bin/true ------------------------------------------------------------------

def p1_start_to_exit(bench: Bench) -> str:
    """Each engine runs /bin/true in fresh namespaces (network none) and removes the container."""
    runs, warmups = bench.args.runs, 2
    engines = {
        "floor": lambda i: time_command(["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net",
                                         "chroot", bench.rootfs, "/bin/true"]),
        "minidocker": lambda i: time_command([MINIDOCKER, "run", "--rm", "busybox", "true"], env=bench.md_env),
    }
    for runtime in bench.runtimes:
        state = f"{bench.base}/{runtime}-state"
        cmd = [runtime, "--root", state, "run", "--bundle", bench.bundle]
        timer = bench.time_crun if runtime == "crun" else time_command
        engines[runtime] = lambda i, cmd=cmd, timer=timer: timer(cmd + [f"{PREFIX}-{i}"])
    if bench.docker:
        engines["docker"] = lambda i: time_command(bench.docker_run("--rm", IMAGE, "/bin/true"))
    if bench.podman:
        engines["podman"] = lambda i: time_command(bench.podman_run("--rm", IMAGE, "/bin/true"), env=bench.podman_env)
    if bench.args.floor_only:
        engines = {name: engines[name] for name in ("floor", "minidocker")}
    for also in bench.args.also:  # another build of minidocker, e.g. before a change, in the same rounds
        name, launcher = also.split("=", 1)
        env = {**bench.md_env, "MINIDOCKER_ROOT": f"{bench.base}/minidocker-{name}"}
        engines[f"minidocker ({name})"] = lambda i, launcher=launcher, env=env: time_command(
            [launcher, "run", "--rm", "busybox", "true"], env=env)
    engines["interpreter (python -c pass)"] = lambda i: time_command([sys.executable, "-c", "pass"])

    results = {name: [] for name in engines}
    order = list(engines)
    shuffle = random.Random(1)
    print(f"P1: {warmups} warm-up + {runs} interleaved rounds over {', '.join(order)} ...", flush=True)
    for i in range(warmups + runs):
        shuffle.shuffle(order)  # interleaved, in a new order each round: load spikes hit every engine alike
        for name in list(order):
            try:
                elapsed = engines[name](i)
            except Exception as error:  # noqa: BLE001 - a failing baseline is dropped with a note
                bench.note(f"P1: {name} failed, dropped: {error}")
                order.remove(name)
                del results[name]
                continue
            if i >= warmups:
                results[name].append(elapsed)
    return "\n".join([
        f"Median and p90 of {runs} runs per engine (after {warmups} warm-up rounds), rounds interleaved; wall "
        f"clock from fork to exit of one `run --rm … /bin/true`, network none.\n",
        ratio_table(results), "",
        verdict(results, "runc", 1.0), verdict(results, "docker", 0.15),
        f"- minidocker's median minus the interpreter's start: "
        f"{statistics.median(results['minidocker']) - statistics.median(results['interpreter (python -c pass)']):.1f} ms",
        "", "Where minidocker's time goes (the same command in-process, between the explain trace's time stamps):\n",
        minidocker_phases(bench),
    ])


# Where minidocker's time goes: the CLI run in-process, its explain-trace steps carrying CLOCK_MONOTONIC
# time stamps from every process that took part.
PHASES = r"""
import time
start = time.monotonic_ns()
from minidocker import api, cli, supervisor, trace  # everything `minidocker run` imports
imported = time.monotonic_ns()
cli.main(["run", "--rm", "busybox", "true"])
done = time.monotonic_ns()
steps = trace.steps()
first_in_child = next(i for i, s in enumerate(steps) if s.actor == "container")
exec_step = next(i for i, s in enumerate(steps) if s.command.startswith("exec "))
after = steps[exec_step + 1] if exec_step + 1 < len(steps) else None
marks = [start, imported, steps[first_in_child - 1].at_ns, steps[first_in_child].at_ns, steps[exec_step].at_ns,
         after.at_ns if after else done, done]
import json  # only now, and only to report: `minidocker run` itself never imports json (or re, enum)
print(json.dumps([(b - a) / 1e6 for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = [
    "imports (ctypes, minidocker's modules, the C cores of json, signal and socket)",
    "parse flags, image lookup, container record and files, cgroup directories",
    "fork, unshare the namespaces",
    "fork PID 1: its mounts, pivot_root, capabilities (on cgroup v2 minidocker moves it into the cgroup "
    "meanwhile, and the first such move waits for an RCU grace period); go, exec",
    "/bin/true runs and exits; the kernel tears its namespaces down",
    "clean-up: exit status, cgroup rmdir, --rm removes the container directory",
]


def minidocker_phases(bench: Bench, rounds: int = 7) -> str:
    """A table of where `minidocker run --rm busybox true` spends its time (medians over `rounds`)."""
    interpreter = [time_command([sys.executable, "-S", "-c", "pass"]) for _ in range(rounds)]
    package = sh([sys.executable, "-c", "import minidocker, os; print(os.path.dirname(minidocker.__path__[0]))"])
    env = {**bench.md_env, "PYTHONPATH": package.strip()}  # the minidocker this interpreter runs
    samples = [json.loads(sh([sys.executable, "-S", "-c", PHASES], env=env)) for _ in range(rounds)]
    lines = ["| phase | median ms |", "|---|---:|",
             f"| interpreter start (`python -S -c pass`, wall clock) | {statistics.median(interpreter):.1f} |"]
    for i, name in enumerate(PHASE_NAMES):
        lines.append(f"| {name} | {statistics.median(s[i] for s in samples):.1f} |")
    return "\n".join(lines)


# -- P4: 100 detached sleepers -------------------------------------------------------------------------

def p4_many_detached(bench: Bench) -> str:
    count = bench.args.count
    rows = ["| engine | start all s | per container ms | per-container process | RSS MB each | PSS MB each "
            "| daemons RSS MB | rm -f all s |", "|---|---:|---:|---|---:|---:|---:|---:|"]
    engines = [("minidocker", [MINIDOCKER], bench.md_env, minidocker_supervisors, "shim (C, shim.c)")]
    if bench.docker:
        engines.append(("docker", bench.docker, None, docker_shims, "containerd-shim-runc-v2"))
    if bench.podman:
        engines.append(("podman", bench.podman, bench.podman_env, podman_conmons, "conmon"))
    for name, cli, env, find_helpers, helper_name in engines:
        print(f"P4: {name}: {count} detached sleep containers ...", flush=True)
        run = {"minidocker": [*cli, "run", "-d", "busybox", "sleep", "1000"],
               "docker": bench.docker_run("-d", IMAGE, "sleep", "1000") if bench.docker else None,
               "podman": bench.podman_run("-d", IMAGE, "sleep", "1000") if bench.podman else None}[name]
        start = time.perf_counter()
        ids = [subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip()
               for _ in range(count)]
        started = time.perf_counter() - start
        running = sh([*cli, "ps", "-q"], env=env).split()
        if len(running) != count:
            raise RuntimeError(f"{name}: {len(running)} of {count} containers running")
        helpers = find_helpers(bench)
        memory = [memory_of(pid) for pid in helpers]
        rss = statistics.mean(m[0] for m in memory) / 1024 if memory else float("nan")
        pss = statistics.mean(m[1] for m in memory) / 1024 if memory else float("nan")
        daemons = (sum(memory_of(pid)[0] for pid in docker_daemons(bench)) / 1024) if name == "docker" else 0
        start = time.perf_counter()
        sh([*cli, "rm", "-f", *(["-t", "0"] if name == "podman" else []), *ids], env=env)  # podman: no grace
        removed = time.perf_counter() - start
        rows.append(f"| {name} | {started:.1f} | {started / count * 1000:.0f} | {len(helpers)} × {helper_name} "
                    f"| {rss:.1f} | {pss:.1f} | {daemons:.0f} | {removed:.1f} |")
        if name == "minidocker":
            shim_rss = rss
    return "\n".join([
        f"{count} containers `run -d … sleep 1000`, one command after another; then the memory of the process "
        f"each engine keeps beside each container (mean over them; PSS shares each shared page among its "
        f"sharers, so it is what one more container really costs); then one `rm -f` of all.\n",
        *rows, "", f"- minidocker's shim: RSS {shim_rss:.1f} MB each (target ≤ 3 MB): "
                   f"{'met' if shim_rss <= 3 else 'NOT met'}"])


def minidocker_supervisors(bench):
    pids = []
    for path in glob.glob(f"{bench.base}/minidocker/containers/*/config.json"):
        pid = json.load(open(path))["State"].get("SupervisorPid")
        if pid:
            pids.append(pid)
    return pids


def _processes_named(executable, needle):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if cmdline and os.path.basename(cmdline[0]) == executable and needle in "\0".join(cmdline):
            found.append(int(pid))
    return found


def docker_shims(bench):
    return _processes_named("containerd-shim-runc-v2", f"{bench.base}/docker/")


def docker_daemons(bench):
    return _processes_named("dockerd", f"{bench.base}/docker/") + _processes_named("containerd", f"{bench.base}/docker/")


def podman_conmons(bench):
    return _processes_named("conmon", f"{bench.base}/podman/")


# The cases: name -> (what it measures, function).  A later chapter adds its row here.
CASES = {
    "P1": ("start-to-exit of /bin/true, network none", p1_start_to_exit),
    "P4": ("many detached `sleep` containers: start, memory beside each, remove", p4_many_detached),
}


# -- the report ------------------------------------------------------------------------------------------

def machine(bench) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    versions = [sh([r, "--version"]).splitlines()[0] for r in bench.runtimes]
    versions += [getattr(bench, f"{e}_version") for e in ("docker", "podman") if getattr(bench, e)]
    return [f"kernel: {platform.release()}", f"CPU: {cpu} × {os.cpu_count()}",
            f"load average at the start (1, 5, 15 min): {bench.load}", f"python: {platform.python_version()}",
            *versions]


def report(bench, sections, started_at) -> str:
    body = ["# Benchmarks: latest results\n",
            f"{started_at}, `sudo benchmarks/run {' '.join(sys.argv[1:])}`.  Compare the ratios, not the "
            f"milliseconds: every engine was measured in the same run, on this machine:\n",
            *[f"- {line}" for line in machine(bench)], ""]
    for name, text in sections.items():
        body += [f"## {name}: {CASES[name][0]}\n", text, ""]
    if bench.notes:
        body += ["## Notes\n", *[f"- {note}" for note in bench.notes], ""]
    return "\n".join(body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="P1: timed runs per engine (default 20)")
    parser.add_argument("--count", type=int, default=100, help="P4: containers per engine (default 100)")
    parser.add_argument("--only", help="comma-separated cases, e.g. P1")
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--no-podman", action="store_true")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=LAUNCHER",
                        help="P1: time another minidocker too, e.g. before=/work/main/.venv/bin/minidocker")
    parser.add_argument("--floor-only", action="store_true", help="P1 against the floor only (a quick self-test)")
    parser.add_argument("--tmp", help="where to make the temporary directory (default: $TMPDIR or /tmp)")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                        help="where to write the report ('-': do not write)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not os.path.exists(MINIDOCKER):
        sys.exit(f"run as root, with the interpreter of the venv that holds {MINIDOCKER}")
    wanted = args.only.split(",") if args.only else list(CASES)
    if args.floor_only:
        args.no_docker = args.no_podman = True
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: daemons' orphans come to us, to be reaped

    started_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    bench = Bench(args)
    bench.load = ", ".join(open("/proc/loadavg").read().split()[:3])
    sections, left = {}, []
    try:
        bench.set_up()
        for name in wanted:
            sections[name] = CASES[name][1](bench)
            print(f"\n## {name}: {CASES[name][0]}\n\n{sections[name]}\n", flush=True)
    finally:
        print("tear-down ...", flush=True)
        left = bench.close()
    text = report(bench, sections, started_at)
    if args.results != "-":
        with open(args.results, "w") as f:
            f.write(text)
        print(f"wrote {args.results}")
    if left:
        print("NOT clean, left behind (temp dir kept):", *left, sep="\n  ")
        return 1
    print("clean: no daemon, mount, cgroup or process of ours is left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
