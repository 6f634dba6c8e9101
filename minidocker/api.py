"""The Python API: what the CLI, the notebooks and the exercises all call (chapter 2).

Each function is one Docker command.  The CLI (`minidocker.cli`) only parses
flags and prints; everything that happens is here, so a notebook that calls
``api.run(...)`` does exactly what ``minidocker run`` does -- and gets the
same explain trace back (:func:`last_trace`).

    from minidocker import api
    c = api.create("busybox", ["sh", "-c", "echo hi"], memory="32m")
    api.start(c)            # detached, like `docker start`
    api.wait(c)             # -> 0
    print(api.logs(c))      # b'hi\\n'
"""

import _signal as signal  # signal.py's C core: signal.py itself imports enum, ~6 ms of a container start
import os
import time

from minidocker import (capabilities, cgroups, images, kernel, logfile, rootfs, seccomp, spec,
                        store as store_module, supervisor, trace)
from minidocker.cgroups import devices
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.store import NEVER, Store, now


class Options:
    """`docker create` / `docker run` options, named as Docker names them; the defaults are below."""

    name: str | None = None
    cidfile: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    entrypoint: str | None = None
    tty: bool = False
    interactive: bool = False
    rm: bool = False
    init: bool = False
    memory: int | str | None = None
    cpus: float | str | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    pid: str = "private"  # or "host"
    uts: str = "private"
    ipc: str = "private"
    network: str = "none"  # "host"; bridge networking arrives in chapter 5
    userns: str = "host"  # or "remap": container root is host uid 100000
    cgroup_parent: str | None = None  # default: $MINIDOCKER_CGROUP_PARENT, else "minidocker"
    cap_add: tuple[str, ...] = ()  # capabilities beyond Docker's default set (see capabilities.py)
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False  # every capability and device, no masked paths, writable /sys
    devices: tuple[str, ...] = ()  # --device HOST[:CONTAINER[:PERMS]] (see cgroups/devices.py)
    security_opt: tuple[str, ...] = ()  # "no-new-privileges"
    chroot: bool = False  # change root with chroot(2) instead of pivot_root(2) (teaching mode)
    log_driver: str = "json-file"  # or "none": no log at all
    log_opt: tuple[str, ...] = ()  # "max-size=10m", "max-file=3": rotate the log (logfile.py)

    def __init__(self, **values):
        for key, value in values.items():
            if key not in Options.__annotations__:
                raise MinidockerError(f"unknown option: {key}")
            setattr(self, key, value)


def _store(store: Store | None) -> Store:
    return store or Store()


# -- create / start / run -----------------------------------------------------------------


def create(image: str, command: list[str] | None = None, options: Options | None = None,
           store: Store | None = None, starting: bool = False, **option_values) -> str:
    """docker create: write the container's record and files; start nothing. Returns the ID.

    `starting` (from run): this process starts the container next; until its start claims it,
    the record names this process as its creator, and prune leaves it alone.
    """
    store = _store(store)
    o = options or Options(**option_values)
    host_config = _host_config(o, store)  # every flag is checked before anything is written
    img = images.get(store, image)
    run_config = img.runtime_config
    command_line = spec.resolve_command(run_config.get("Entrypoint"), run_config.get("Cmd"),
                                        o.entrypoint, list(command or []))
    cidfile_fd = _claim_cidfile(o.cidfile)
    cid = store_module.new_id()
    container_dir = store.container_dir(cid)
    try:
        with store.lock():
            if o.name:
                store.check_name_free(o.name)
            name = o.name or _free_generated_name(store)  # a generated name is free by construction
            os.makedirs(container_dir, mode=0o711)
            config = {
                "Hostname": o.hostname or (os.uname().nodename if o.uts == "host" else cid[:12]),
                "User": o.user or run_config.get("User", ""),
                "Env": spec.merge_env(run_config.get("Env", []), list(o.env)),
                "Cmd": list(command) if command else run_config.get("Cmd"),
                "Entrypoint": [o.entrypoint] if o.entrypoint else run_config.get("Entrypoint"),
                "Image": image, "WorkingDir": o.workdir or run_config.get("WorkingDir", ""),
                "Tty": o.tty, "OpenStdin": o.interactive,
            }
            record = {
                "Id": cid, "Created": now(), "Path": command_line[0], "Args": command_line[1:],
                "Name": "/" + name, "Image": img.id, "Config": config, "HostConfig": host_config,
                "State": {"Status": "created", "Running": False, "Paused": False, "Pid": 0, "ExitCode": 0, "Error": "",
                          "OOMKilled": False, "StartedAt": NEVER, "FinishedAt": NEVER},
                "LogPath": f"{container_dir}/container.log" if logfile.readable(host_config) else "",
                "HostnamePath": f"{container_dir}/hostname", "HostsPath": f"{container_dir}/hosts",
                "ResolvConfPath": f"{container_dir}/resolv.conf",
                "GraphDriver": {"Name": "overlay", "Data": {
                    "LowerDir": ":".join(reversed(img.layer_dirs)), "UpperDir": f"{container_dir}/upper",
                    "WorkDir": f"{container_dir}/work", "MergedDir": f"{container_dir}/rootfs"}},
            }
            if starting:  # who is about to start it (see supervisor._claim, which takes these out)
                record["State"].update(CreatorPid=os.getpid(),
                                       CreatorStartTime=supervisor.process_start_time(os.getpid()))
            _make_container_files(container_dir, record)
            store.save(record)
    except BaseException:
        store.delete(cid)
        if cidfile_fd is not None:
            os.close(cidfile_fd)
            os.unlink(o.cidfile)
        raise
    if cidfile_fd is not None:
        os.write(cidfile_fd, cid.encode())
        os.close(cidfile_fd)
    return cid


def _host_config(o: Options, store: Store) -> dict:
    """Check the options that say how to run the container; return them as Docker's HostConfig."""
    memory = spec.parse_memory(o.memory) if isinstance(o.memory, str) else o.memory
    cpus = spec.parse_cpus(o.cpus) if isinstance(o.cpus, str) else o.cpus
    for flag, value in [("--pid", o.pid), ("--uts", o.uts), ("--ipc", o.ipc)]:
        spec.parse_mode(value, flag, ("private", "host"))
    spec.parse_mode(o.network, "--network", ("none", "host"))
    spec.parse_mode(o.userns, "--userns", ("host", "remap"))
    if o.hostname is not None:
        spec.parse_hostname(o.hostname)
    if o.hostname and o.uts == "host":
        raise MinidockerError("conflicting options: --hostname and --uts host")
    if o.name is not None:
        store_module.check_container_name(o.name)
    cgroup_parent = o.cgroup_parent or os.environ.get("MINIDOCKER_CGROUP_PARENT") or cgroups.PARENT
    if not store_module.valid_name(cgroup_parent):
        raise MinidockerError(f"invalid value {cgroup_parent!r} for --cgroup-parent: one name, [a-zA-Z0-9_.-]")
    capabilities.resolve(list(o.cap_add), list(o.cap_drop), o.privileged)  # unknown names fail here, early
    security_opt = [_security_opt(opt.removesuffix(":true")) for opt in o.security_opt]
    if o.userns == "remap":
        _check_searchable_by_remapped_root(store.root)
    device_mappings = [devices.parse_device_flag(value) for value in o.devices]
    for mapping in device_mappings:
        devices.host_devices(mapping)  # a host path that is no device fails here, before anything is stored
    return {
        "Memory": memory or 0, "NanoCpus": int((cpus or 0) * 1e9), "CpuShares": o.cpu_shares or 0,
        "PidsLimit": o.pids_limit or 0, "PidMode": o.pid, "UTSMode": o.uts, "IpcMode": o.ipc,
        "NetworkMode": o.network, "UsernsMode": o.userns, "AutoRemove": o.rm, "Init": o.init,
        "ChangeRoot": "chroot" if o.chroot else "pivot_root", "CgroupParent": cgroup_parent,
        "CapAdd": list(o.cap_add), "CapDrop": list(o.cap_drop), "Privileged": o.privileged,
        "SecurityOpt": security_opt, "Devices": device_mappings,
        "LogConfig": logfile.log_config(o.log_driver, list(o.log_opt)),
    }


def _security_opt(opt: str) -> str:
    """--security-opt: no-new-privileges, seccomp=unconfined, or seccomp=FILE (kept as the profile's JSON)."""
    if opt.startswith("seccomp=") and opt != "seccomp=unconfined":
        return seccomp.read_profile_option(opt.removeprefix("seccomp="))
    if opt not in ("no-new-privileges", "seccomp=unconfined"):
        raise MinidockerError(f"invalid --security-opt: {opt!r}: expected no-new-privileges, seccomp=unconfined "
                              f"or seccomp=PROFILE.json")
    return opt


def _check_searchable_by_remapped_root(path: str) -> None:
    """Container root (host uid 100000) must be able to walk down to its layers, as Docker's 0711 dirs allow."""
    while path != "/":
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            raise MinidockerError(f"--userns remap: {path} is not searchable by others, so the remapped root "
                                  f"cannot reach the container's files (chmod o+x {path}, or use another "
                                  f"MINIDOCKER_ROOT)")


def _claim_cidfile(path: str | None) -> int | None:
    """--cidfile: created exclusively, so two containers can never claim the same file."""
    if path is None:
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise Conflict(f"Container ID file found, make sure the other container isn't running or delete {path}") \
            from None
    except OSError as e:
        raise MinidockerError(f"cannot create cidfile {path}: {e.strerror}") from None


def _free_generated_name(store: Store) -> str:
    taken = {r["Name"] for r in store.records()}
    for _ in range(100):
        name = store_module.generate_name()
        if "/" + name not in taken:
            return name
    return f"{store_module.generate_name()}_{os.getpid()}"


def _make_container_files(container_dir: str, record: dict) -> None:
    owner = 100000 if record["HostConfig"]["UsernsMode"] == "remap" else 0
    for d in ("upper", "work", "rootfs"):
        os.makedirs(f"{container_dir}/{d}", mode=0o755)
        os.chown(f"{container_dir}/{d}", owner, owner)
    rootfs.write_etc_files(container_dir, record["Config"]["Hostname"], record["HostConfig"]["NetworkMode"])
    for name in rootfs.ETC_FILES:  # container root may edit them, as in Docker
        os.chown(f"{container_dir}/{name}", owner, owner)
    if record["LogPath"]:  # (--log-driver none has none)
        open(record["LogPath"], "ab").close()


def start(ref: str, attach: bool = False, on_ready=None, store: Store | None = None) -> int | None:
    """docker start: run a created (or exited) container. Detached unless attach=True (then returns its exit code)."""
    store = _store(store)
    cid = store.resolve(ref)
    record = store.load(cid)
    if record["State"]["Running"]:
        if supervisor.supervisor_alive(record):
            return None
        _mark_lost(store, cid)  # "running" by a supervisor that was killed: clean up, then start afresh
    trace.take()
    if attach:
        return supervisor.supervise(store, cid, attach=True, on_ready=on_ready)
    supervisor.spawn_detached(store, cid)
    return None


def run(image: str, command: list[str] | None = None, options: Options | None = None, detach: bool = False,
        on_ready=None, store: Store | None = None, **option_values) -> tuple[str, int | None]:
    """docker run = create + start. Returns (container ID, exit code or None when detached)."""
    store = _store(store)
    trace.take()
    cid = create(image, command, options, store=store, starting=True, **option_values)
    o = options or Options(**option_values)
    try:
        if detach:
            supervisor.spawn_detached(store, cid)
            return cid, None
        return cid, supervisor.supervise(store, cid, attach=True, on_ready=on_ready)
    except BaseException:
        if o.rm:
            store.delete(cid)
        raise


def last_trace() -> list[trace.Step]:
    """The kernel steps of the last create/start/run/exec (or save/load/pull/push): what --explain prints."""
    return trace.steps()


# -- stop / kill / wait / rm -----------------------------------------------------------------


def _running_pid(store: Store, cid: str) -> int:
    record = store.load(cid)
    if record["State"]["Running"] and not supervisor.supervisor_alive(record):
        _mark_lost(store, cid)  # its PID may belong to some other process by now: never signal it
        record = store.load(cid)
    if not record["State"]["Running"]:
        raise MinidockerError(f"Container {cid[:12]} is not running")
    return record["State"]["Pid"]


def kill(ref: str, sig: int | str = signal.SIGKILL, store: Store | None = None) -> str:
    """docker kill: send a signal to the container's PID 1 (a paused container is thawed to act on it)."""
    store = _store(store)
    cid = store.resolve(ref)
    signum = _parse_signal(sig)
    pid = _running_pid(store, cid)
    record = store.load(cid)
    try:
        kernel.kill(pid, signum, why="signal the container's PID 1")
    except ProcessLookupError:
        pass
    if record["State"].get("Paused"):
        _unfreeze(store, record, gone_is_fine=True)  # a frozen process only acts on its signals once it runs
    return cid


# -- pause / unpause: the cgroup freezer ---------------------------------------------------------------


def pause(ref: str, store: Store | None = None) -> str:
    """docker pause: freeze every process of the container where it stands (cgroup freezer)."""
    store = _store(store)
    trace.take()
    cid = store.resolve(ref)
    _running_pid(store, cid)  # "is not running"
    record = store.load(cid)
    if record["State"].get("Paused"):
        raise Conflict(f"Container {cid[:12]} is already paused")
    supervisor.cgroup_of(record).freeze()
    store.update(cid, lambda r: r["State"].update(Paused=True, Status="paused"))
    return cid


def unpause(ref: str, store: Store | None = None) -> str:
    """docker unpause: let a paused container's processes run on."""
    store = _store(store)
    trace.take()
    cid = store.resolve(ref)
    record = store.load(cid)
    if not record["State"].get("Paused"):
        raise Conflict(f"Container {cid[:12]} is not paused")
    _unfreeze(store, record)
    return cid


def _unfreeze(store: Store, record: dict, gone_is_fine: bool = False) -> None:
    """Thaw the container's cgroup and record it.  gone_is_fine: after a kill, it may have exited (and gone) already."""
    group = supervisor.cgroup_of(record)
    if gone_is_fine:
        group.thaw_if_frozen()
    else:
        group.thaw()

    def thawed(r):
        r["State"]["Paused"] = False
        if r["State"]["Running"]:
            r["State"]["Status"] = "running"

    try:
        store.update(record["Id"], thawed)
    except NotFound:
        if not gone_is_fine:
            raise  # (--rm removes a container the moment it exits)


def _parse_signal(sig: int | str) -> int:
    """'KILL', 'SIGTERM', 'hup', '9' -> a signal number from 1 to SIGRTMAX, as Docker accepts."""
    if isinstance(sig, int):
        number = sig
    else:
        name = sig.upper().removeprefix("SIG")
        if name.isascii() and name.isdigit():
            number = int(name)
        else:
            from signal import Signals  # the names are an enum; only `kill -s NAME` pays for importing it

            try:
                return Signals["SIG" + name]
            except KeyError:
                raise MinidockerError(f"invalid signal: {sig!r}") from None
    if not 1 <= number <= signal.SIGRTMAX:
        raise MinidockerError(f"invalid signal: {sig!r} (signals are numbered 1 to {int(signal.SIGRTMAX)})")
    return number


def stop(ref: str, timeout: float = 10, store: Store | None = None) -> str:
    """docker stop: SIGTERM, wait up to `timeout` seconds, then SIGKILL every process in its cgroup."""
    store = _store(store)
    cid = store.resolve(ref)
    if not store.load(cid)["State"]["Running"]:
        return cid
    try:
        kill(cid, signal.SIGTERM, store=store)
    except MinidockerError:
        return cid  # it stopped meanwhile
    if not _wait_exited(store, cid, timeout):
        supervisor.cgroup_of(store.load(cid)).kill_all(signal.SIGKILL)
        _wait_exited(store, cid, 10)
    return cid


def _wait_exited(store: Store, cid: str, timeout: float | None) -> bool:
    """Poll the record until the supervisor wrote that the container exited."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            record = store.load(cid)
        except MinidockerError:
            return True  # removed (--rm)
        if not record["State"]["Running"]:
            return True
        if not _supervisor_alive(record):
            _mark_lost(store, cid)
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _supervisor_alive(record: dict) -> bool:
    return supervisor.supervisor_alive(record)


def _mark_lost(store: Store, cid: str) -> None:
    """The supervisor died (killed with minidocker): stop what is left and record the loss."""
    try:
        record = store.load(cid)
    except NotFound:
        return  # removed meanwhile (--rm)
    group = supervisor.cgroup_of(record)
    group.kill_all()
    group.destroy()
    if not record["State"]["Running"] and not record["State"].get("SupervisorPid"):
        return  # nothing to correct in the record

    def lost(r):
        if r["State"]["Running"]:
            r["State"].update(Status="exited", Running=False, Paused=False, Pid=0, ExitCode=137, FinishedAt=now(),
                              Error="minidocker's supervisor died; the container was killed")
        r["State"]["SupervisorPid"] = 0

    store.update(cid, lost)


def wait(ref: str, store: Store | None = None) -> int:
    """docker wait: block until the container stops; return its exit code."""
    store = _store(store)
    cid = store.resolve(ref)
    _wait_exited(store, cid, None)
    try:
        return store.load(cid)["State"]["ExitCode"]
    except MinidockerError:
        return 0


def remove(ref: str, force: bool = False, store: Store | None = None) -> str:
    """docker rm: delete a stopped container (force: kill it first)."""
    store = _store(store)
    cid = store.resolve(ref)
    record = store.load(cid)
    if _supervisor_alive(record):  # running, or being started right now
        if not force:
            raise Conflict(f"You cannot remove a running container {cid}. Stop the container before "
                           f"attempting removal or force remove")
        _kill_until_supervisor_done(store, cid)
    else:  # also what a killed minidocker may have left: a cgroup, processes, a stale "running"
        _mark_lost(store, cid)
    store.delete(cid, missing_ok=force)  # (with -f, --rm may have removed it meanwhile)
    return cid


def _kill_until_supervisor_done(store: Store, cid: str, timeout: float = 10) -> None:
    """SIGKILL the container's cgroup until its supervisor has recorded the end (or died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = store.load(cid)
        except MinidockerError:
            return  # --rm removed it
        if not _supervisor_alive(record):
            break
        supervisor.cgroup_of(record).kill_all()  # again each round: a start in progress may add processes
        time.sleep(0.02)
    _mark_lost(store, cid)


def rename(ref: str, new_name: str, store: Store | None = None) -> None:
    store = _store(store)
    store_module.check_container_name(new_name)
    cid = store.resolve(ref)
    with store.lock():
        store.check_name_free(new_name)
        record = store.load(cid)
        record["Name"] = "/" + new_name
        store.save(record)


def prune(store: Store | None = None) -> list[str]:
    """docker container prune, plus cleaning what a killed minidocker left: stopped containers go."""
    store = _store(store)
    removed = []
    store.sweep_removed()  # deletions a killed minidocker left halfway
    with store.lock():  # create holds the lock until a record exists: a directory without one is debris
        for cid in store.ids():
            try:
                store.load(cid)
            except MinidockerError:  # no record (create was killed), or one damaged by hand
                store.delete(cid)
                removed.append(cid)
        # Under the lock too: a start claims its container under it (supervisor._claim), so what is
        # found stopped here stays stopped until it is gone.
        for record in store.records():
            if _supervisor_alive(record) or _creator_alive(record):
                continue  # running, being started right now, or created by a `run` about to start it
            _mark_lost(store, record["Id"])  # a cgroup or processes a killed minidocker left behind
            store.delete(record["Id"])
            removed.append(record["Id"])
    return removed


def _creator_alive(record: dict) -> bool:
    """Is the command that created the container (`run`, between its create and its start) still running?"""
    state = record["State"]
    pid = state.get("CreatorPid")
    return bool(pid) and supervisor.process_start_time(pid) == state.get("CreatorStartTime")


# -- images and the union filesystem (chapter 7) ---------------------------------------------------


def _container_layers(store: Store, cid: str) -> tuple[dict, str, list[str]]:
    """A container's record, its writable layer (UPPER) and its image's layers, top-most first."""
    record = store.load(cid)
    lowers = list(reversed(images.get(store, record["Image"]).layer_dirs))
    return record, record["GraphDriver"]["Data"]["UpperDir"], lowers


def diff(ref: str, store: Store | None = None) -> list[tuple[str, str]]:
    """docker diff: what the container changed, [("A"|"C"|"D", "/path"), ...]."""
    from minidocker import union

    store = _store(store)
    _record, upper, lowers = _container_layers(store, store.resolve(ref))
    return union.changes(upper, lowers)


def commit(ref: str, repository: str | None = None, message: str = "", changes: list[str] = (),
           pause: bool = True, store: Store | None = None) -> str:
    """docker commit: the container's writable layer becomes a new layer on top of its image. Returns the image ID.

    pause (Docker's --pause, on by default) freezes a running container while its layer is copied,
    so that no file is caught half-written; one paused already stays paused.
    """
    import copy
    import tempfile

    from minidocker import launch, layers, union

    store = _store(store)
    trace.take()
    cid = store.resolve(ref)
    record, upper, lowers = _container_layers(store, cid)
    base = images.get(store, record["Image"])
    runtime = {**base.runtime_config, **{k: v for k, v in record["Config"].items()
                                         if k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User") and v}}
    runtime = images.apply_changes(runtime, list(changes))  # a bad --change fails before anything is stored
    if repository:
        images.tag_name(repository)
    shift = launch.USERNS_BASE if record["HostConfig"].get("UsernsMode") == "remap" else 0
    freeze = pause and record["State"]["Running"] and not record["State"].get("Paused") \
        and supervisor.supervisor_alive(record)
    cgroup = supervisor.cgroup_of(record)
    with tempfile.TemporaryFile(dir=os.path.join(store.images, "layers")) as spool:
        if freeze:
            cgroup.freeze()
        try:
            union.tar_upper(upper, lowers, spool, uid_shift=shift)
        finally:
            if freeze:
                cgroup.thaw()
        spool.seek(0)
        diff_id = layers.register_layer(store, spool)
    config = copy.deepcopy(base.config)
    config.update(created=now(), container=cid, config=runtime)
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append(
        {"created": config["created"], "created_by": " ".join([record["Path"]] + record["Args"]),
         **({"comment": message} if message else {})})
    return images.add_image(store, config, [repository] if repository else [])


def export(ref: str, out, store: Store | None = None) -> None:
    """docker export: the container's merged filesystem, flat, as one tar written to the binary stream `out`."""
    from minidocker import union

    store = _store(store)
    trace.take()
    cid = store.resolve(ref)
    _record, upper, lowers = _container_layers(store, cid)
    union.export_merged(list(reversed(lowers)), upper, os.path.join(store.container_dir(cid), "rootfs"), out)


def import_image(source, repository: str | None = None, message: str = "", changes: list[str] = (),
                 store: Store | None = None) -> str:
    """docker import: a tar (a path or a binary stream; gzip is fine) becomes a one-layer image. Returns its ID."""
    from minidocker import layers

    store = _store(store)
    trace.take()
    runtime = images.apply_changes({}, list(changes))
    if repository:
        images.tag_name(repository)
    if isinstance(source, str):
        try:
            stream = open(source, "rb")
        except OSError as e:
            raise MinidockerError(f"cannot read {source}: {e.strerror}") from None
        with stream:
            diff_id = layers.register_layer(store, stream)
    else:
        diff_id = layers.register_layer(store, source)
    created = now()
    config = {"architecture": "amd64", "os": "linux", "created": created, "config": runtime,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": created, "created_by": "minidocker import",
                           "comment": message or f"Imported from {source if isinstance(source, str) else '-'}"}]}
    return images.add_image(store, config, [repository] if repository else [])


def image_list(store: Store | None = None) -> list[images.Image]:
    return images.list_images(_store(store))


def tag(source: str, target: str, store: Store | None = None) -> str:
    return images.tag(_store(store), source, target)


def rmi(ref: str, force: bool = False, store: Store | None = None) -> list[str]:
    """docker rmi: untag; delete the image (and its layers no other image uses) once nothing refers to it."""
    return images.remove(_store(store), ref, force=force)


def image_prune(all: bool = False, store: Store | None = None) -> list[str]:
    return images.prune(_store(store), all=all)


def history(ref: str, store: Store | None = None) -> list[dict]:
    return images.history(images.get(_store(store), ref))


# -- look inside ---------------------------------------------------------------------------


def inspect(ref: str, store: Store | None = None) -> dict:
    store = _store(store)
    return store.load(store.resolve(ref))


def containers(all: bool = False, store: Store | None = None) -> list[dict]:
    """docker ps: records of running containers (all=True: every container), newest first."""
    records = _store(store).records()
    return sorted((r for r in records if all or r["State"]["Running"]), key=lambda r: r["Created"], reverse=True)


def logs(ref: str, store: Store | None = None) -> bytes:
    """Everything the container wrote to stdout and stderr so far (in memory: the CLI streams instead)."""
    return b"".join(data for _stream, data in follow_logs(ref, store=store))


def follow_logs(ref: str, follow: bool = False, store: Store | None = None):
    """Yield (stream, bytes) as the container wrote them, across the rotated files, one entry at a
    time; with follow, also what it writes next, until it stops."""
    store = _store(store)
    cid = store.resolve(ref)
    record = store.load(cid)
    if not logfile.readable(record["HostConfig"]):
        raise MinidockerError(logfile.NOT_READABLE)

    def running() -> bool:
        try:
            return store.load(cid)["State"]["Running"]
        except MinidockerError:
            return False  # removed meanwhile

    yield from logfile.entries(record["LogPath"], follow=follow, running=running)


# -- moving images: save / load / pull / push (chapter 3) --------------------------------------


def save(refs: list[str], out, store: Store | None = None) -> None:
    """Write images to the binary file `out` as a docker-archive tar (what `docker save` writes)."""
    from minidocker import archive

    trace.take()  # last_trace(): this command's steps only
    archive.save(_store(store), refs, out)


def load(source, store: Store | None = None) -> list[str]:
    """Load a docker-archive or OCI layout (a path: tar or directory; or a binary stream)."""
    from minidocker import archive

    trace.take()  # last_trace(): this command's steps only
    return archive.load(_store(store), source)


def pull(name: str, progress=None, out=None, store: Store | None = None) -> str:
    """Download an image from its registry (OCI distribution API); returns its ID."""
    import sys

    from minidocker import registry

    trace.take()  # last_trace(): this command's steps only
    return registry.pull(_store(store), name, progress=progress, out=out or sys.stdout)


def push(name: str, progress=None, out=None, store: Store | None = None) -> str:
    """Upload a local image to the registry its name says; returns the manifest digest."""
    import sys

    from minidocker import registry

    trace.take()  # last_trace(): this command's steps only
    return registry.push(_store(store), name, progress=progress, out=out or sys.stdout)
