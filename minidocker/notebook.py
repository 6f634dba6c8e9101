"""The notebooks' helper: a private lab where cells stay short (every chapter's notebook).

A notebook cell should show one idea, not twenty lines of set-up, so the
notebooks in ``notebooks/`` share this small class::

    from minidocker.notebook import Lab
    lab = Lab()                                    # a private MINIDOCKER_ROOT and cgroup parent
    r = lab.run("hostname", uts="host")           # create + start + wait + logs + rm
    r.output, r.exit_code
    lab.trace("unshare|sethostname")              # the steps that run really performed
    lab.cleanup()                                  # last cell: nothing left behind

It only calls the Python API (:mod:`minidocker.api`), the one the CLI calls,
and every narrative of kernel steps comes from the explain trace
(:mod:`minidocker.trace`), never from text written beside it.

Containers are always started *detached* (``run -d``, then ``wait``, then
``logs``): an attached run would make the Jupyter kernel itself the
container's supervisor, a child subreaper that reaps -- and waits on -- the
kernel's own children.
"""

import atexit
import html
import os
import re
import shutil
import tempfile
from typing import NamedTuple

from minidocker import api, cgroups, images, kernel, trace
from minidocker.store import Store

NAMESPACES = ("pid", "uts", "mnt", "ipc", "net", "user", "cgroup")

# Host programs a notebook may use, and the Debian package that has each (scripts/setup installs them).
PACKAGES = {"ip": "iproute2", "ipcmk": "util-linux", "ipcrm": "util-linux", "gcc": "gcc", "busybox": "busybox-static"}


class NotRoot(RuntimeError):
    pass


def require_root() -> None:
    """Containers are made from kernel features only root may use: say so in one line."""
    if os.geteuid() != 0:
        raise NotRoot("these notebooks create real containers, which needs root: start the lab with "
                      "`sudo scripts/lab` (or `vagrant up` and open http://localhost:8888)")


class Result(NamedTuple):
    """What one finished container left: its ID, exit code, output, record and kernel steps."""

    id: str
    exit_code: int
    output: str
    record: dict
    steps: list

    def lines(self) -> list[str]:
        return self.output.splitlines()


class Trace(list):
    """Explain-trace steps that Jupyter shows as a table (and `print` as the --explain script)."""

    def __init__(self, steps, names: dict[str, str]):
        super().__init__(steps)
        self.names = {k: v for k, v in names.items() if v}

    def __str__(self) -> str:
        return trace.render(list(self), self.names)

    __repr__ = __str__  # what a notebook shows when it cannot show HTML

    def _short(self, text: str) -> str:
        for name, value in self.names.items():
            text = text.replace(value, f"${name}")
        return text

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{i}</td><td>{html.escape(s.actor)}</td>"
                       f"<td style='text-align:left'><code>{html.escape(self._short(s.command))}</code></td>"
                       f"<td style='text-align:left'>{html.escape(s.why)}</td></tr>"
                       for i, s in enumerate(self, 1))
        legend = ", ".join(f"<code>${k}</code> = <code>{html.escape(v)}</code>" for k, v in self.names.items())
        return (f"<table><thead><tr><th>#</th><th>who</th><th>shell equivalent</th><th>why</th></tr></thead>"
                f"<tbody>{rows}</tbody></table><small>{len(self)} steps. {legend}</small>")


class Lab:
    """A private minidocker state root and cgroup parent for one notebook."""

    def __init__(self, image: str = "busybox"):
        require_root()
        # MINIDOCKER_LAB_ROOT lets the notebook tests put the lab where their leak check looks.
        self._made_root = "MINIDOCKER_LAB_ROOT" not in os.environ
        root = os.environ.get("MINIDOCKER_LAB_ROOT") or tempfile.mkdtemp(prefix="minidocker-lab-")
        os.chmod(root, 0o711)  # --userns remap's root must be able to walk through
        self.store = Store(root)
        self.cgroup_parent = os.environ.get("MINIDOCKER_CGROUP_PARENT") or f"minidocker-lab-{os.getpid()}"
        # `!minidocker ...` shell cells then use the same private root as the Python cells.
        self._saved_env = {k: os.environ.get(k) for k in ("MINIDOCKER_ROOT", "MINIDOCKER_CGROUP_PARENT")}
        os.environ["MINIDOCKER_ROOT"] = root
        os.environ["MINIDOCKER_CGROUP_PARENT"] = self.cgroup_parent
        self.image = image
        images.get(self.store, image)  # busybox is made from the host's busybox-static on first use
        self.last_steps: list = []
        self.last_id = ""
        self._cleaned = False
        atexit.register(self._cleanup_at_exit)  # a kernel restarted mid-notebook leaves nothing either

    def require(self, *programs: str) -> None:
        """Fail now, in one clear sentence, if a host program this notebook uses is missing."""
        missing = [p for p in programs if shutil.which(p) is None]
        if missing:
            packages = sorted({PACKAGES.get(p, p) for p in missing})
            raise RuntimeError(f"this notebook needs {', '.join(missing)}, which this machine lacks: "
                               f"run scripts/setup, or apt-get install {' '.join(packages)}")

    # -- containers ---------------------------------------------------------------------

    def start(self, *command: str, image: str | None = None, **options) -> str:
        """`minidocker run -d`: start a container in the background; returns its ID."""
        options.setdefault("cgroup_parent", self.cgroup_parent)
        cid, _ = api.run(image or self.image, list(command), detach=True, store=self.store, **options)
        self.last_steps, self.last_id = api.last_trace(), cid
        return cid

    def run(self, *command: str, **options) -> Result:
        """`minidocker run --rm`, the lab's way: start detached, wait, read the logs, remove."""
        return self.finish(self.start(*command, **options))

    def start_created(self, cid: str) -> None:
        """`minidocker start` of a created container, in the background."""
        api.start(cid, store=self.store)
        self.last_steps, self.last_id = api.last_trace(), cid

    def finish(self, cid: str) -> Result:
        """Wait for a started container, collect what it left, remove it."""
        steps = self.last_steps if cid == self.last_id else []
        code = api.wait(cid, store=self.store)
        output = api.logs(cid, store=self.store).decode(errors="replace")
        record = api.inspect(cid, store=self.store)
        api.remove(cid, force=True, store=self.store)
        return Result(cid, code, output, record, steps)

    def create(self, *command: str, image: str | None = None, **options) -> str:
        """`minidocker create`: the record and files, no process yet."""
        options.setdefault("cgroup_parent", self.cgroup_parent)
        trace.take()
        cid = api.create(image or self.image, list(command), store=self.store, **options)
        self.last_steps, self.last_id = api.last_trace(), cid
        return cid

    def pid(self, cid: str) -> int:
        """The container's PID 1, as the host numbers it."""
        return api.inspect(cid, store=self.store)["State"]["Pid"]

    def exec(self, cid: str, *command: str, privileged: bool = False) -> str:
        """`minidocker exec`, its output as text (via the CLI: exec is attached by nature)."""
        import subprocess
        import sys

        cli = os.path.join(os.path.dirname(sys.executable), "minidocker")  # the venv's, beside its python
        flags = ["--privileged"] if privileged else []
        done = subprocess.run([cli, "exec", *flags, cid, *command], capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    def cgroup(self, cid: str) -> cgroups.Cgroup:
        return cgroups.find(cid, parent=self.cgroup_parent)

    def copy_in(self, cid: str, host_path: str, container_path: str) -> None:
        """Put a host file into a created container's writable layer (its overlayfs upper dir)."""
        upper = api.inspect(cid, store=self.store)["GraphDriver"]["Data"]["UpperDir"]
        target = os.path.join(upper, container_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(host_path, target)

    def remove(self, cid: str) -> None:
        api.remove(cid, force=True, store=self.store)

    # -- looking -------------------------------------------------------------------------

    def trace(self, pattern: str | None = None, steps=None) -> Trace:
        """The explain trace of the last container started (only steps whose command or reason match
        `pattern`, a regular expression)."""
        steps = self.last_steps if steps is None else steps
        if pattern:
            steps = [s for s in steps if re.search(pattern, f"{s.command} # {s.why}")]
        return Trace(steps, {"ID": self.last_id, "MINIDOCKER_ROOT": self.store.root})

    @staticmethod
    def namespaces(pid: int | str = "self") -> dict[str, str]:
        """{'pid': 'pid:[4026531836]', ...}: the namespaces a process is in, as /proc/PID/ns shows them."""
        return {ns: kernel.namespace_id(pid, ns) for ns in NAMESPACES}

    @staticmethod
    def table(rows: list[dict]):
        """A list of dicts as an HTML table (no pandas needed)."""
        from IPython.display import HTML

        if not rows:
            return HTML("<i>(no rows)</i>")
        heads = list(rows[0])
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r.get(h, '')))}</td>"
                                        for h in heads) + "</tr>" for r in rows)
        return HTML("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads)
                    + f"</tr></thead><tbody>{body}</tbody></table>")

    # -- the end ------------------------------------------------------------------------

    def cleanup(self) -> str:
        """Remove every container of the lab, then the lab's state root: the notebook's last cell."""
        self._cleaned = True
        removed = api.prune(store=self.store)
        for record in api.containers(all=True, store=self.store):
            api.remove(record["Id"], force=True, store=self.store)
            removed.append(record["Id"])
        if self._made_root:
            shutil.rmtree(self.store.root)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return f"removed {len(removed)} container(s) and the lab's state in {self.store.root}"

    def _cleanup_at_exit(self) -> None:
        if not self._cleaned and os.path.isdir(self.store.root):
            try:
                self.cleanup()
            except Exception:  # noqa: BLE001 - exiting anyway; nothing better to do
                pass
