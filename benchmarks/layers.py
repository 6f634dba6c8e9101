"""How long does a 3-layer image take to store, and its first container to start? (chapter 7)

    sudo .venv/bin/python benchmarks/layers.py            # 5 rounds
    sudo .venv/bin/python benchmarks/layers.py --rounds 10

Each round, in a fresh private MINIDOCKER_ROOT:

1. three layer tars (busybox, ~20 MB of files, a small layer with whiteouts and an
   opaque directory) are registered with minidocker.layers.register_layer -- what
   `load`/`pull` do per layer: hash, unpack safely, write the tar-split record;
2. `minidocker run --rm IMAGE true` runs its first container, then a second one;
3. a container that changed 100 files is committed.

Baselines measured in the same round, for ratios that travel between machines:
``tar -xf`` of the same three tars into empty directories (the unavoidable unpacking)
and ``sha256sum`` of them.  Read the ratios: milliseconds vary with the machine.
"""

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
MINIDOCKER = os.path.join(os.path.dirname(sys.executable), "minidocker")

from minidocker import images, layers  # noqa: E402
from minidocker.store import Store  # noqa: E402


def make_tars(workdir: str, busybox_root: str) -> list[str]:
    """Three layer tars on disk: busybox's, a ~20 MB one, a small one with OCI whiteouts."""
    store = Store(busybox_root)
    busybox = images.get(store, "busybox")
    paths = [os.path.join(workdir, f"layer{i}.tar") for i in (1, 2, 3)]
    with open(paths[0], "wb") as f:
        layers.layer_tar(store, busybox.config["rootfs"]["diff_ids"][0], f)
    with tarfile.open(paths[1], "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("opt", "opt/app", "opt/app/lib"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for i in range(200):
            data = os.urandom(100_000)
            info = tarfile.TarInfo(f"opt/app/lib/part{i:03d}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(paths[2], "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("etc/.wh.group", b""), ("opt/app/lib/.wh..wh..opq", b""), ("opt/app/lib/new", b"x"),
                           ("etc/motd", b"three layers\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return paths


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def one_round(tars: list[str]) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix="minidocker-bench-layers-")
    os.chmod(root, 0o711)
    env = {**os.environ, "MINIDOCKER_ROOT": root, "MINIDOCKER_CGROUP_PARENT": "minidocker-bench"}
    try:
        store = Store(root)

        def register():
            diff_ids = []
            for path in tars:
                with open(path, "rb") as f:
                    diff_ids.append(layers.register_layer(store, f))
            images.add_image(store, {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "Env": [
                images.DEFAULT_PATH]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}, ["three:layers"])

        result = {"register 3 layers": timed(register)}

        def run():
            subprocess.run([MINIDOCKER, "run", "--rm", "three:layers", "true"], env=env, check=True)

        result["first run"] = timed(run)
        result["second run"] = timed(run)
        subprocess.run([MINIDOCKER, "run", "--name", "changer", "three:layers", "sh", "-c",
                        "for i in $(seq 100); do echo $i > /opt/f$i; done; rm /etc/passwd"], env=env, check=True)
        result["commit (100 files)"] = timed(lambda: subprocess.run([MINIDOCKER, "commit", "changer", "four"],
                                                                    env=env, check=True, capture_output=True))
        subprocess.run([MINIDOCKER, "rm", "changer"], env=env, check=True, capture_output=True)

        def untar():
            for path in tars:
                target = tempfile.mkdtemp(dir=root)
                subprocess.run(["tar", "-xf", path, "-C", target], check=True)

        result["baseline: tar -xf of the 3 tars"] = timed(untar)
        result["baseline: sha256sum of the 3 tars"] = timed(
            lambda: subprocess.run(["sha256sum", *tars], check=True, capture_output=True))
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    workdir = tempfile.mkdtemp(prefix="minidocker-bench-tars-")
    try:
        tars = make_tars(workdir, os.path.join(workdir, "busybox-root"))
        sizes = [os.path.getsize(t) / 1e6 for t in tars]
        print(f"layer tars: {', '.join(f'{s:.1f} MB' for s in sizes)}; {rounds} rounds, median ms")
        results = [one_round(tars) for _ in range(rounds)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    untar = medians["baseline: tar -xf of the 3 tars"]
    print("| step | median ms | / tar -xf |\n|---|---:|---:|")
    for key, value in medians.items():
        print(f"| {key} | {value:.0f} | {value / untar:.2f}× |")


if __name__ == "__main__":
    main()
