"""How long from an image archive to a running container? (`load`, then the first `run`)

A 3-layer image (busybox + two COPY layers, built by podman) is saved as a
docker-archive; then, into a fresh empty store each time, we time

  load        minidocker load -i three.tar     (verify, unpack each layer once)
  first run   minidocker run --rm three true   (overlay over the 3 layers, the container)

and, as the yardstick measured in the same run, podman doing the same with its
own fresh storage (`podman load`, `podman run --rm --network none`).  Read the
ratio column, not the milliseconds (see README.md).

Run as root:  sudo .venv/bin/python benchmarks/load_and_run.py [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MINIDOCKER = os.path.join(os.path.dirname(sys.executable), "minidocker")


def podman_env(base: str) -> tuple[list[str], dict]:
    """podman with private storage and config (rlimits within this machine's hard limits, runc, cgroupfs)."""
    runroot = tempfile.mkdtemp(prefix="mdpod-")  # podman wants a short run root
    with open(f"{base}/containers.conf", "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                f'tmp_dir = "{base}/tmp"\n')
    with open(f"{base}/storage.conf", "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\nrunroot = "{runroot}"\ngraphroot = "{base}/root"\n')
    env = {**os.environ, "CONTAINERS_CONF": f"{base}/containers.conf",
           "CONTAINERS_STORAGE_CONF": f"{base}/storage.conf", "TMPDIR": base}
    return ["podman", "--root", f"{base}/root", "--runroot", runroot, "--cgroup-manager", "cgroupfs"], env


def timed(cmd, env) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def make_archive(work: str) -> str:
    """busybox from minidocker, two COPY layers on top by podman, saved as a docker-archive."""
    env = {**os.environ, "MINIDOCKER_ROOT": f"{work}/md-template"}
    subprocess.run([MINIDOCKER, "save", "-o", f"{work}/bb.tar", "busybox"], env=env, check=True)
    os.makedirs(f"{work}/pod")
    podman, penv = podman_env(f"{work}/pod")
    subprocess.run([*podman, "load", "-i", f"{work}/bb.tar"], env=penv, check=True, capture_output=True)
    os.makedirs(f"{work}/context")
    for name in ("one", "two"):
        with open(f"{work}/context/{name}.txt", "w") as f:
            f.write(f"{name}\n" * 10000)
    with open(f"{work}/context/Containerfile", "w") as f:
        f.write("FROM localhost/busybox:latest\nCOPY one.txt /one.txt\nCOPY two.txt /two.txt\n")
    subprocess.run([*podman, "build", "-q", "-t", "three:1", f"{work}/context"], env=penv, check=True,
                   capture_output=True)
    subprocess.run([*podman, "save", "-o", f"{work}/three.tar", "three:1"], env=penv, check=True,
                   capture_output=True)
    reset(podman, penv)
    return f"{work}/three.tar"


def reset(podman, env):
    subprocess.run([*podman, "system", "reset", "--force"], env=env, capture_output=True)
    shutil.rmtree(podman[4], ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    work = tempfile.mkdtemp(prefix="md-loadrun-")
    times: dict[str, list[float]] = {k: [] for k in ("md load", "md first run", "podman load", "podman first run")}
    try:
        archive = make_archive(work)
        for n in range(runs):
            env = {**os.environ, "MINIDOCKER_ROOT": f"{work}/md-{n}"}
            times["md load"].append(timed([MINIDOCKER, "load", "-i", archive], env))
            times["md first run"].append(timed([MINIDOCKER, "run", "--rm", "localhost/three:1", "true"], env))
            shutil.rmtree(f"{work}/md-{n}")
            os.makedirs(f"{work}/p-{n}")
            podman, penv = podman_env(f"{work}/p-{n}")
            times["podman load"].append(timed([*podman, "load", "-i", archive], penv))
            times["podman first run"].append(timed([*podman, "run", "--rm", "--network", "none",
                                                    "localhost/three:1", "true"], penv))
            reset(podman, penv)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = "3 layers"
    print(f"median of {runs} runs, each into a fresh empty store ({size}):")
    print(f"{'step':<18} {'median ms':>10} {'minidocker / podman':>20}")
    for step in ("load", "first run"):
        md, pod = statistics.median(times[f"md {step}"]), statistics.median(times[f"podman {step}"])
        print(f"{'md ' + step:<18} {md:>10.1f} {md / pod:>19.2f}×")
        print(f"{'podman ' + step:<18} {pod:>10.1f}")


if __name__ == "__main__":
    main()
