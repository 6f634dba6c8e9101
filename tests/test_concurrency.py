"""Concurrency: many minidocker commands at once never duplicate, lose or corrupt a container.

Each command is a separate process, as when a class of students shares one
machine or a script runs `minidocker run ... &` twenty times.  What they share
is the state store; its lock (flock(2)) and atomic renames are what is tested.
Every command must either succeed or fail with one clear line.
"""

import json
import random
from concurrent.futures import ThreadPoolExecutor

PARALLEL = 20


def one_clear_line(result, code: int, *phrases: str) -> bool:
    lines = result.stderr.splitlines()
    return (result.returncode == code and len(lines) == 1 and lines[0].startswith("minidocker: ")
            and any(p in lines[0] for p in phrases) and "Traceback" not in result.stderr)


def all_records(md) -> list[dict]:
    ids = md.out("ps", "-aq", "--no-trunc").split()
    return json.loads(md.out("inspect", *ids)) if ids else []


def test_twenty_parallel_runs(md):
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda i: md("run", "--name", f"r{i}", "busybox", "sh", "-c", f"echo {i}"),
                                range(PARALLEL)))
    for i, result in enumerate(results):
        assert result.returncode == 0 and result.stdout == f"{i}\n", result.stderr
    records = all_records(md)
    assert len(records) == PARALLEL
    assert len({r["Id"] for r in records}) == PARALLEL  # no duplicate IDs ...
    assert sorted(r["Name"] for r in records) == sorted(f"/r{i}" for i in range(PARALLEL))  # ... or names
    for r in records:
        assert (r["State"]["Status"], r["State"]["ExitCode"]) == ("exited", 0)
        assert md.out("logs", r["Name"][1:]) == r["Name"][2:]  # each log holds its own output, whole
    with ThreadPoolExecutor(PARALLEL) as pool:
        removed = list(pool.map(lambda i: md("rm", f"r{i}"), range(PARALLEL)))
    assert all(r.returncode == 0 for r in removed)
    assert md.out("ps", "-aq") == ""


def test_parallel_creates_of_one_name_make_exactly_one_container(md):
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: md("create", "--name", "contested", "busybox", "true"), range(10)))
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1
    assert all(one_clear_line(r, 125, 'name "/contested" is already in use') for r in results if r.returncode)
    assert [r["Id"] for r in all_records(md)] == [winners[0].stdout.strip()]


def test_parallel_create_and_rm_of_the_same_and_different_names(md):
    rng = random.Random(5)
    shared = ["s0", "s1", "s2"]
    work = [(rng.choice(["create", "rm"]), rng.choice(shared + [f"own{i}"])) for i in range(60)]

    def act(item):
        verb, name = item
        if verb == "create":
            return item, md("create", "--name", name, "busybox", "true")
        return item, md("rm", "-f", name)

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(act, work))
    for (verb, name), result in outcomes:
        if result.returncode == 0:
            continue
        if verb == "create":
            assert one_clear_line(result, 125, "is already in use"), (verb, name, result.stderr)
        else:  # Docker's rm: 1, one line per container it could not remove
            assert one_clear_line(result, 1, "No such container"), (verb, name, result.stderr)
    records = all_records(md)  # every listed container can be inspected: none is half-made
    names = [r["Name"] for r in records]
    assert len(names) == len(set(names)) and len({r["Id"] for r in records}) == len(records)
    for r in records:
        assert md.out("rm", r["Id"]) == r["Id"]
    assert md.out("ps", "-aq") == ""


def test_parallel_starts_of_one_container_launch_it_once(md):
    md.out("create", "--name", "once", "busybox", "sleep", "30")
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: md("start", "once"), range(6)))
    for result in results:
        assert result.returncode == 0 or one_clear_line(result, 125, "already being started"), result.stderr
    assert len(md.cgroup("once").pids()) == 1  # one container process, not six
    md.out("rm", "-f", "once")


def test_the_store_lock_excludes_other_threads_of_one_process_too(tmp_path):
    """stop, kill and rm act on several containers in threads of one process, sharing one Store.
    Its lock must make another thread wait (a real flock(2) on a second descriptor), while the
    thread that holds it may take it again further down the same call."""
    import threading
    import time

    from minidocker.store import Store

    store = Store(str(tmp_path / "root"))
    held, order = threading.Event(), []

    def first():
        with store.lock():
            with store.lock():  # re-entered by the holder: no wait for ourselves
                held.set()
                time.sleep(0.3)
                order.append("first releases")

    def second():
        held.wait()
        with store.lock():
            order.append("second holds")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert order == ["first releases", "second holds"]


def test_system_prune_racing_runs_removes_none_of_them(md):
    """`run` is create then start: prune must not take the container in between, nor kill a running one."""
    import threading
    import time

    stop = threading.Event()
    prunes = []

    def prune_again_and_again():
        while not stop.is_set():
            prunes.append(md("system", "prune", "-f"))

    pruner = threading.Thread(target=prune_again_and_again)
    pruner.start()
    try:
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: md("run", "--rm", "busybox", "sh", "-c", f"echo {i}")
                                    if time.monotonic() < deadline else None, range(40)))
    finally:
        stop.set()
        pruner.join(60)
    ran = [r for r in results if r is not None]
    assert len(ran) >= 10 and len(prunes) >= 5
    failed = [(r.returncode, r.stderr) for r in ran if r.returncode != 0]
    assert not failed
    assert [r.stdout for r in results if r is not None] == [f"{i}\n" for i in range(len(ran))]
    assert all(p.returncode == 0 for p in prunes)
    assert md.out("ps", "-aq") == ""
