"""The command line: flags in, text out; everything else is minidocker.api.

Exit codes follow Docker: 125 for minidocker's own errors (bad flag, unknown
image, conflict), 126 when the command cannot be executed, 127 when it does
not exist, otherwise the container's own exit code.  Every error is one line
on stderr -- never a traceback.

Each command is two small functions, ``<name>_flags(parser)`` (declare its
flags) and ``<name>_command(args, store)`` (do it), and one row in
:data:`COMMANDS`.  Only the flags of the command being run are declared, with
minidocker.flags (Docker's grammar; cheaper than argparse to import and use).
"""

import os
import sys

from minidocker import flags
from minidocker.errors import MinidockerError


# -- run, create, start ------------------------------------------------------------------


def container_flags(p: flags.Parser) -> None:
    """The flags of `create` (and of `run`, which adds -d): how the container is made."""
    p.add_argument("--name", help="a name to use instead of the ID")
    p.add_argument("--cidfile", help="write the container ID to this file (which must not exist)")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE, or KEY to pass on our own")
    p.add_argument("--env-file", action="append", default=[], help="a file of KEY=VALUE lines")
    p.add_argument("-w", "--workdir", help="the directory the command starts in")
    p.add_argument("-u", "--user", help="name|uid[:group|gid] from the image's /etc/passwd")
    p.add_argument("-h", "--hostname", help="the hostname in its UTS namespace (default: short ID)")
    p.add_argument("--entrypoint", help="replace the image's ENTRYPOINT (and drop its CMD)")
    p.add_argument("-t", "--tty", action="store_true", help="give it a terminal")
    p.add_argument("-i", "--interactive", action="store_true", help="pass our stdin on")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--init", action="store_true", help="run minidocker's own PID 1 (reaps zombies, forwards signals)")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 32m (the OOM killer enforces it)")
    p.add_argument("--cpus", help="CPU time limit, e.g. 0.5 = half of one CPU")
    p.add_argument("-c", "--cpu-shares", help="relative CPU weight under contention (default 1024)")
    p.add_argument("--pids-limit", help="most processes at once (fork fails beyond)")
    p.add_argument("--pid", default="private", help="'host' to share the host's PID namespace")
    p.add_argument("--uts", default="private", help="'host' to share the host's hostname")
    p.add_argument("--ipc", default="private", help="'host' to share the host's IPC namespace")
    p.add_argument("--network", "--net", default="none", help="none or host")
    p.add_argument("--userns", default="host", help="'remap': container root is an unprivileged host uid")
    p.add_argument("--chroot", action="store_true", help="chroot(2) instead of pivot_root(2), to show why not")
    p.add_argument("--cap-add", action="append", default=[], help="keep this capability too (e.g. NET_ADMIN)")
    p.add_argument("--cap-drop", action="append", default=[], help="drop this capability (ALL: every one)")
    p.add_argument("--privileged", action="store_true", help="every capability and device, nothing masked")
    p.add_argument("--device", action="append", default=[], help="HOST[:CONTAINER[:PERMS]]: a host device, e.g. "
                   "/dev/fuse or /dev/loop0:/dev/xvdc:r")
    p.add_argument("--security-opt", action="append", default=[],
                   help="no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json")
    p.add_argument("--cgroup-parent", help="put the container's cgroup under this one (default: minidocker)")
    p.add_argument("--log-driver", default="json-file", help="json-file, or none: keep no log")
    p.add_argument("--log-opt", action="append", default=[], help="max-size=10m, max-file=3: rotate the log")
    p.add_argument("image")
    p.add_argument("command", nargs=flags.REST)  # flags end at the image: the rest is the container's


def _options(args):
    from minidocker import api, spec

    return api.Options(
        name=args.name, cidfile=args.cidfile, env=spec.parse_env(args.env, args.env_file), workdir=args.workdir,
        user=args.user, hostname=args.hostname, entrypoint=args.entrypoint, tty=args.tty,
        interactive=args.interactive, rm=args.rm, init=args.init,
        memory=spec.parse_memory(args.memory) if args.memory is not None else None,
        cpus=spec.parse_cpus(args.cpus) if args.cpus is not None else None,
        cpu_shares=spec.parse_int(args.cpu_shares, "--cpu-shares", 2, 262144) if args.cpu_shares else None,
        pids_limit=spec.parse_int(args.pids_limit, "--pids-limit", -1) if args.pids_limit else None,
        pid=args.pid, uts=args.uts, ipc=args.ipc, network=args.network, userns=args.userns, chroot=args.chroot,
        cgroup_parent=args.cgroup_parent, cap_add=args.cap_add, cap_drop=args.cap_drop,
        privileged=args.privileged, security_opt=args.security_opt, devices=args.device,
        log_driver=args.log_driver, log_opt=args.log_opt)


def create_command(args, store):
    from minidocker import api

    print(api.create(args.image, args.command, _options(args), store=store))


def run_flags(p):
    container_flags(p)
    p.add_argument("-d", "--detach", action="store_true")


def run_command(args, store):
    from minidocker import api

    explain = _explainer(args, store)
    cid, code = api.run(args.image, args.command, _options(args), detach=args.detach, on_ready=explain,
                        store=store)
    if args.detach:
        if explain:
            explain()
        print(cid)
    return code


def start_flags(p):
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")


def start_command(args, store):
    from minidocker import api

    explain = _explainer(args, store)
    code = None
    for ref in args.containers:
        code = api.start(ref, attach=args.attach, on_ready=explain, store=store)
        if not args.attach:
            if explain:
                explain()
            print(ref)
    return code


def exec_flags(p):
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--privileged", action="store_true", help="give the command every capability")
    p.add_argument("container")
    p.add_argument("exec_command", nargs=flags.REST)


def exec_command(args, store):
    from minidocker import enter, spec

    return enter.exec_in(store, args.container, args.exec_command, tty=args.tty, interactive=args.interactive,
                         env=spec.parse_env(args.env), workdir=args.workdir, user=args.user,
                         privileged=args.privileged, on_ready=_explainer(args, store))


# -- stop, kill, rm, wait: one line per container, go on after a failure -------------------


def stop_flags(p):
    p.add_argument("-t", "--time", default="10", help="seconds to wait before SIGKILL")
    p.add_argument("containers", nargs="+")


def kill_flags(p):
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")


def rm_flags(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+")


def wait_flags(p):
    p.add_argument("containers", nargs="+")


def stop_command(args, store):
    from minidocker import api, spec

    timeout = spec.parse_seconds(args.time)  # a bad -t is the command's error (125), not each container's

    def stop(ref):
        api.stop(ref, timeout=timeout, store=store)
        return ref

    return _each_container(args, store, stop)


def kill_command(args, store):
    from minidocker import api

    def kill(ref):
        api.kill(ref, args.signal, store=store)
        return ref

    return _each_container(args, store, kill)


def rm_command(args, store):
    from minidocker import api

    def remove(ref):
        api.remove(ref, force=args.force, store=store)
        return ref

    return _each_container(args, store, remove)


def pause_flags(p):
    p.add_argument("containers", nargs="+")


def pause_command(args, store):
    from minidocker import api

    def pause(ref):
        api.pause(ref, store=store)
        return ref

    return _each_container(args, store, pause) and 125  # a failure is minidocker's error, as for exec: 125


def unpause_command(args, store):
    from minidocker import api

    def unpause(ref):
        api.unpause(ref, store=store)
        return ref

    return _each_container(args, store, unpause) and 125


def wait_command(args, store):
    from minidocker import api

    return _each_container(args, store, lambda ref: api.wait(ref, store=store), at_once=False)


def _each_container(args, store, action, at_once: bool = True) -> int | None:
    """Print action(ref) for each container; like Docker, report each failure and go on with the rest.

    Like Docker's CLI, stop/kill/rm act on all the containers at once (threads that mostly wait for
    supervisors), so `rm -f` of a hundred does not wait for each exit in turn; output stays in order.
    """
    def outcome(ref):
        try:
            return action(ref), None
        except MinidockerError as e:
            return None, e

    if at_once and len(args.containers) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(args.containers), 16)) as pool:
            outcomes = list(pool.map(outcome, args.containers))
    else:
        outcomes = map(outcome, args.containers)
    failed = False
    for result, error in outcomes:
        if error:
            print(f"minidocker: {one_line(error)}", file=sys.stderr)
            failed = True
        else:
            print(result)
    explain = _explainer(args, store)
    if explain:
        explain()
    return 1 if failed else None


# -- look at containers and images ---------------------------------------------------------


def ps_flags(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


def ps_command(args, store):
    from minidocker import api

    _print_ps(api.containers(all=args.all, store=store), args.quiet, args.no_trunc)


def logs_flags(p):
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("container")


def logs_command(args, store):
    from minidocker import api

    for stream, data in api.follow_logs(args.container, follow=args.follow, store=store):
        out = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
        out.write(data)
        out.flush()


def inspect_flags(p):
    p.add_argument("-f", "--format")
    p.add_argument("containers", nargs="+")


def inspect_command(args, store):
    import json  # indented output: the json module itself, not jsoncore.py (inspect is not on a container's path)

    from minidocker import api

    records = [api.inspect(ref, store=store) for ref in args.containers]
    if args.format:
        for record in records:
            print(render_format(args.format, record))
    else:
        print(json.dumps(records, indent=4))


def rename_flags(p):
    p.add_argument("container")
    p.add_argument("new_name")


def rename_command(args, store):
    from minidocker import api

    api.rename(args.container, args.new_name, store=store)


def system_flags(p):
    p.add_argument("action", choices=["prune"])
    p.add_argument("-f", "--force", action="store_true")


def system_command(args, store):
    from minidocker import api

    removed = api.prune(store=store)
    print("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in removed) if removed else "Nothing to prune")


# -- images and the union filesystem (chapter 7) -------------------------------------------------


def commit_flags(p):
    p.add_argument("-m", "--message", default="")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="freeze the container while its files are copied (--pause=false: don't)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")


def commit_command(args, store):
    from minidocker import api

    print(api.commit(args.container, args.repository, args.message, args.change, pause=args.pause, store=store))
    _explain_now(args, store)


def diff_flags(p):
    p.add_argument("container")


def diff_command(args, store):
    from minidocker import api

    for kind, path in api.diff(args.container, store=store):
        print(f"{kind} {path}")


def history_flags(p):
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("image")


def history_command(args, store):
    from minidocker import api

    print(f"{'IMAGE':<14} {'CREATED':<24} {'CREATED BY':<46} {'SIZE':<9} COMMENT")
    for row in api.history(args.image, store=store):
        created_by = row["created_by"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        image_id = row.get("id", "<missing>")
        print(f"{image_id if args.no_trunc else image_id.removeprefix('sha256:')[:12]:<14} "
              f"{_ago(row['created']) + ' ago' if row['created'] else '':<24} {created_by:<46} "
              f"{_human_size(row['size']):<9} {row['comment']}")


def images_flags(p):
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


def images_command(args, store):
    from minidocker import api

    _print_images(api.image_list(store=store), store, args.quiet, args.no_trunc)


def tag_flags(p):
    p.add_argument("source")
    p.add_argument("target")


def tag_command(args, store):
    from minidocker import api

    api.tag(args.source, args.target, store=store)


def rmi_flags(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")


def rmi_command(args, store):
    from minidocker import api

    failed = False
    for ref in args.images:
        try:
            print("\n".join(api.rmi(ref, force=args.force, store=store)))
        except MinidockerError as e:  # like Docker: report each failure, go on with the rest
            print(f"minidocker: {one_line(e)}", file=sys.stderr)
            failed = True
    return 1 if failed else None


def image_flags(p):
    p.add_argument("action", choices=["prune", "ls"])
    p.add_argument("-a", "--all", action="store_true", help="prune: every unused image, not only untagged ones")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")


def image_command(args, store):
    from minidocker import api

    if args.action == "ls":
        return images_command(args, store)
    report = api.image_prune(all=args.all, store=store)
    print("Deleted Images:\n" + "\n".join(report) if report else "Total reclaimed space: 0B")


def export_flags(p):
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("container")


def export_command(args, store):
    from minidocker import api

    if args.output:
        with open(args.output, "wb") as out:
            api.export(args.container, out, store=store)
    else:
        if sys.stdout.isatty():
            raise MinidockerError("cowardly refusing to write a tar to a terminal: use -o FILE or a pipe")
        api.export(args.container, sys.stdout.buffer, store=store)
        sys.stdout.buffer.flush()
    _explain_now(args, store)


def import_flags(p):
    p.add_argument("-m", "--message", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("file", help="a tar file, or - for stdin")
    p.add_argument("repository", nargs="?")


def import_command(args, store):
    from minidocker import api

    source = sys.stdin.buffer if args.file == "-" else args.file
    print(api.import_image(source, args.repository, args.message, args.change, store=store))
    _explain_now(args, store)


def _explain_now(args, store) -> None:
    explain = _explainer(args, store)
    if explain:
        explain()


def _human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{size}B"


def _print_images(image_list, store, quiet: bool, no_trunc: bool) -> None:
    from minidocker import images

    if quiet:
        for image in image_list:
            print(image.id if no_trunc else image.id[7:19])
        return
    print(f"{'REPOSITORY':<24} {'TAG':<12} {'IMAGE ID':<14} {'CREATED':<24} SIZE")
    for image in sorted(image_list, key=lambda i: i.config.get("created", ""), reverse=True):
        size = sum(images.layer_size(store, d) for d in image.config["rootfs"]["diff_ids"])
        created = _ago(image.config["created"]) + " ago" if image.config.get("created") else ""
        for tag in image.tags or ["<none>:<none>"]:
            repo, _, version = tag.rpartition(":")
            print(f"{repo:<24} {version:<12} {image.id if no_trunc else image.id[7:19]:<14} {created:<24} "
                  f"{_human_size(size)}")


# -- graded exercises (exercises/) -------------------------------------------------------------


def grade_flags(p):
    p.add_argument("exercises", nargs="*", help="e.g. 01_isolation or 01 (default: every exercise)")
    p.add_argument("--solution", help="your solution file (one exercise; default exercises/NN_name/solution.py)")
    p.add_argument("-o", "--output", default="grade-results", help="where results.json and junit.xml go")
    p.add_argument("--timeout", type=float, default=60, help="seconds one check may take")
    p.add_argument("--reference", action="store_true", help="grade minidocker's own functions (full marks)")
    p.add_argument("--reset-stub", action="store_true", help="rewrite solution.py as the generated stub")


def grade_command(args, store):
    from minidocker import grade

    if args.reset_stub and not args.exercises:  # it overwrites the learner's work: never all by default
        raise MinidockerError("--reset-stub overwrites your solution.py: name the exercise(s) to reset")
    exercises = grade.find(args.exercises)
    if args.reset_stub:
        for exercise in exercises:
            print(grade.reset_stub(exercise))
        return None
    if args.solution and len(exercises) != 1:
        raise MinidockerError("--solution needs exactly one exercise named")
    solutions = {exercises[0].name: args.solution} if args.solution else None
    report = grade.grade(exercises, solutions, args.output, args.timeout, reference=args.reference)
    print(grade.table(report))
    return 0 if report.passed else 1


def no_flags(p):
    pass


# -- save, load, pull, push (chapter 3: moving images) -------------------------------------


def save_flags(p):
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("images", nargs="+")


def save_command(args, store):
    import os

    from minidocker import api

    if args.output:
        tmp = f"{args.output}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                api.save(args.images, f, store=store)
            os.replace(tmp, args.output)  # a failed save leaves no half-written file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    elif sys.stdout.isatty():
        raise MinidockerError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    else:
        api.save(args.images, sys.stdout.buffer, store=store)
    _explain_now(args, store)


def load_flags(p):
    p.add_argument("-i", "--input", help="read this file or directory instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true")


def load_command(args, store):
    from minidocker import api

    for line in api.load(args.input or sys.stdin.buffer, store=store):
        if not args.quiet:
            print(line)
    _explain_now(args, store)


def pull_flags(p):
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the result")
    p.add_argument("image")


def pull_command(args, store):
    _transfer(args, store)


def push_command(args, store):
    _transfer(args, store)


def _transfer(args, store):
    """pull or push; a progress bar per layer when stderr is a terminal."""
    import io

    from minidocker import api

    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm as progress
    out = io.StringIO() if args.quiet else sys.stdout
    result = (api.pull if args.subcommand == "pull" else api.push)(args.image, progress, out, store=store)
    if args.quiet:
        print(result if args.subcommand == "pull" else args.image)
    _explain_now(args, store)


# The command table: name -> (one line of help, declare its flags, run it).  A new command is one
# more row here and its two functions above; `run it` returns the exit code (None means 0).
COMMANDS = {
    "run": ("create and start a container", run_flags, run_command),
    "create": ("create a container, start nothing", container_flags, create_command),
    "start": ("start created or stopped containers", start_flags, start_command),
    "stop": ("SIGTERM, then SIGKILL after -t seconds", stop_flags, stop_command),
    "kill": ("send a signal to a container's PID 1", kill_flags, kill_command),
    "rm": ("remove containers", rm_flags, rm_command),
    "ps": ("list containers", ps_flags, ps_command),
    "logs": ("print a container's output", logs_flags, logs_command),
    "inspect": ("print a container's record as JSON", inspect_flags, inspect_command),
    "wait": ("wait for containers to stop; print their exit codes", wait_flags, wait_command),
    "pause": ("freeze every process of containers (cgroup freezer)", pause_flags, pause_command),
    "unpause": ("let paused containers run on", pause_flags, unpause_command),
    "exec": ("run a command inside a running container", exec_flags, exec_command),
    "rename": ("rename a container", rename_flags, rename_command),
    "images": ("list images", images_flags, images_command),
    "commit": ("make an image from a container's changes", commit_flags, commit_command),
    "diff": ("files a container added (A), changed (C) or deleted (D)", diff_flags, diff_command),
    "history": ("the steps (and layers) an image was made of", history_flags, history_command),
    "tag": ("give an image another name", tag_flags, tag_command),
    "rmi": ("untag and remove images", rmi_flags, rmi_command),
    "image": ("image prune: remove unused images; image ls", image_flags, image_command),
    "export": ("a container's files, flattened, as a tar", export_flags, export_command),
    "import": ("make a one-layer image from a tar (- for stdin)", import_flags, import_command),
    "system": ("system prune: remove stopped containers and leftovers", system_flags, system_command),
    "save": ("write images to a tar (docker-archive), stdout by default", save_flags, save_command),
    "load": ("load images from a docker-archive or OCI layout (tar or directory)", load_flags, load_command),
    "pull": ("download an image from a registry", pull_flags, pull_command),
    "push": ("upload an image to a registry", pull_flags, push_command),
    "grade": ("grade your exercise solutions (exercises/): a score table, JUnit XML, results.json",
              grade_flags, grade_command),
}


def parse_args(argv: list[str]):
    """minidocker [--explain] COMMAND ...: the global flags, then the command's own; only the command in
    argv has its flags declared (declaring every command's would cost more than starting a container)."""
    top = flags.Parser("minidocker", "Docker, rebuilt from the Linux kernel up, to learn from.",
                       epilog="\nCommands:\n" + "".join(f"  {name:<9} {row[0]}\n" for name, row in COMMANDS.items())
                       + "\nRun 'minidocker COMMAND --help' for more information on a command.\n")
    top.add_argument("--explain", action="store_true",
                     help="print every kernel step as a shell command you could run yourself")
    top.add_argument("subcommand", nargs=flags.REST, metavar="COMMAND")  # flags before it are minidocker's
    args = top.parse_args(argv)
    if not args.subcommand:
        top.fail("a command is required")
    name, words = args.subcommand[0], args.subcommand[1:]
    if name not in COMMANDS:
        top.fail(f'unknown command: "{name}"')
    summary, declare_flags, _run = COMMANDS[name]
    parser = flags.Parser(f"minidocker {name}", summary, short_help=name not in _OWN_HELP)
    declare_flags(parser)
    args.subcommand = name
    return parser.parse_args(words, args)


_OWN_HELP = {"run", "create", "exec"}  # only --help, as in Docker: their -h is --hostname, or nothing


def _explainer(args, store):
    """--explain: print the steps so far to stderr, just before the container's command starts."""
    if not args.explain:
        return None

    def show(_pid=None):
        from minidocker import trace

        steps = trace.steps()
        ids = {w for s in steps for w in s.command.replace("/", " ").split() if len(w) == 64}
        names = {"MINIDOCKER_ROOT": store.root, **({"ID": ids.pop()} if len(ids) == 1 else {})}
        try:
            print(trace.render(steps, names), file=sys.stderr, flush=True)
        except OSError:  # nobody reads stderr any more (`2>&1 | head`): the container still runs
            pass

    return show


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        from minidocker.store import Store

        _summary, _declare_flags, run_it = COMMANDS[args.subcommand]
        return run_it(args, Store()) or 0
    except MinidockerError as e:
        if args is not None and args.explain:  # the steps that ran before it failed: where to look
            from minidocker import trace

            print(trace.render(trace.steps()), file=sys.stderr)
        print(f"minidocker: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except flags.Help as text:  # --help: print it, exit 0
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `--help | head`
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def one_line(error) -> str:
    """An error as exactly one line: control characters a user typed (a newline in a name...) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))


def render_format(template: str, record: dict) -> str:
    """The common cases of Docker's Go templates: {{.State.Status}}, {{json .Config}}."""
    import json
    import re

    def value(match):
        as_json, path = match[1], match[2]
        current = record
        for key in filter(None, path.split(".")):
            if not isinstance(current, dict) or key not in current:
                raise MinidockerError(f"template: no field {key!r} in {path!r}")
            current = current[key]
        if as_json:
            return json.dumps(current)
        if isinstance(current, bool):
            return str(current).lower()
        return "<nil>" if current is None else str(current) if not isinstance(current, (dict, list)) \
            else json.dumps(current)

    return re.sub(r"\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}", value, template)


def _ago(timestamp: str) -> str:
    import datetime

    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}"
    return "Less than a second" if seconds < 1 else f"{int(seconds)} seconds"


def _status(state: dict) -> str:
    if state["Running"]:
        return f"Up {_ago(state['StartedAt'])}" + (" (Paused)" if state.get("Paused") else "")
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {_ago(state['FinishedAt'])} ago"
    return "Created"


def _print_ps(records: list[dict], quiet: bool, no_trunc: bool) -> None:
    import json

    if quiet:
        for r in records:
            print(r["Id"] if no_trunc else r["Id"][:12])
        return
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for r in records:
        command = " ".join([r["Path"]] + r["Args"])
        if not no_trunc and len(command) > 20:
            command = command[:19] + "…"
        rows.append((r["Id"] if no_trunc else r["Id"][:12], r["Config"]["Image"],
                     json.dumps(command, ensure_ascii=False), _ago(r["Created"]) + " ago", _status(r["State"]),
                     r["Name"][1:]))
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(5)]
    for row in rows:
        print("".join(cell.ljust(width) for cell, width in zip(row, widths)) + row[5])


def entry_point() -> None:
    code = main()
    # Everything minidocker made is closed and recorded by now.  Skipping the interpreter's
    # tidy-up (freeing every module and object one by one) saves a short command ~5 ms.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # nobody reads our output any more (`| head`)
        pass
    os._exit(code)


if __name__ == "__main__":
    entry_point()
