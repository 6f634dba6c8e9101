"""The explain trace: every kernel step, recorded by the code that performs it.

Each call in `minidocker.kernel` records itself here as the shell command a
learner could paste into a root shell to do the same thing by hand
(`unshare --uts`, `mount -t overlay ...`, `echo 33554432 > memory.limit_in_bytes`).
`--explain` prints these records, and the Python API hands the very same list
to the notebooks, so the story told can never drift from what the code did.

A container is set up by several processes (minidocker, then the forked
processes that become the container).  Each process records into its own list;
a forked process forwards its records to minidocker over a socket, and the
steps are merged by their CLOCK_MONOTONIC time stamp, which all processes share.
"""

import time


class Step:
    """command: a shell command with the same effect; why: one short reason, for the learner;
    actor: which process performed it ("minidocker" or "container"); at_ns: CLOCK_MONOTONIC,
    to merge steps from several processes.  (A plain class: collections.namedtuple would cost
    every container start ~3 ms to import.)"""

    __slots__ = ("command", "why", "actor", "at_ns")

    def __init__(self, command: str, why: str, actor: str, at_ns: int):
        self.command, self.why, self.actor, self.at_ns = command, why, actor, at_ns

    def as_list(self) -> list:
        """How a step travels between processes (as JSON); adopt() takes it back."""
        return [self.command, self.why, self.actor, self.at_ns]

    def __repr__(self) -> str:
        return f"Step({self.command!r}, {self.why!r}, {self.actor!r}, {self.at_ns})"

    def as_shell(self) -> str:
        return f"{self.command:<60}  # [{self.actor}] {self.why}" if self.why else self.command


_steps: list[Step] = []
_actor = "minidocker"
_forward = None  # in a forked process that sends its steps on: a function(step)


def record(command: str, why: str = "") -> None:
    """Note that this process just performed `command` (as a shell equivalent)."""
    step = Step(command, why, _actor, time.monotonic_ns())
    if _forward is not None:
        _forward(step)
    else:
        _steps.append(step)


def become(actor: str, forward=None) -> None:
    """In a forked process: label its steps and send them to minidocker."""
    global _actor, _forward
    _actor, _forward = actor, forward
    _steps.clear()


def adopt(step: list) -> None:
    """Keep a step that a forked process performed and sent over (Step.as_list's form)."""
    _steps.append(Step(*step))


def steps() -> list[Step]:
    """The steps recorded (or adopted) so far, in the order they happened."""
    return sorted(_steps, key=lambda s: s.at_ns)


def take() -> list[Step]:
    """Return and forget the steps recorded so far."""
    taken = steps()
    _steps.clear()
    return taken


def render(steps: list[Step], names: dict[str, str] | None = None) -> str:
    """The steps as a shell script a learner can read and paste.

    `names` ({"ID": "3f2a...", ...}) turns long values into shell variables,
    set at the top, so the script stays readable and still runs.
    """
    names = {k: v for k, v in (names or {}).items() if v}
    lines = [f"{name}={value}" for name, value in names.items()]
    for step in steps:
        line = step.as_shell()
        for name, value in names.items():
            line = line.replace(value, f"${name}")
        lines.append(line)
    return "\n".join(lines)
