"""Run minidocker with one of its functions replaced by a learner's (the graded exercises).

    python -m minidocker.exercise --solution exercises/01_isolation/solution.py \\
        --replace minidocker.rootfs:pivot_into -- run --rm busybox cat /proc/self/mountinfo

is ``minidocker run --rm busybox ...`` in every way but one: before any
container process is forked, ``minidocker.rootfs.pivot_into`` is set to the
``pivot_into`` defined in the learner's file.  minidocker's modules call each
other through module attributes (``rootfs.pivot_into(root)``), so from then
on minidocker really uses the learner's code -- in the container's own set-up
path, on the real kernel, in the forked processes too.

``minidocker grade`` writes a two-line ``bin/minidocker`` script that runs
this, and points the chapter's behaviour tests at it (``$MINIDOCKER_CLI``);
you can run that script yourself to try your solution by hand.
"""

import argparse
import functools
import importlib
import importlib.util
import os
import sys

from minidocker.errors import MinidockerError


def load_function(solution: str, name: str):
    """The function called `name` in the Python file `solution`."""
    spec = importlib.util.spec_from_file_location("learner_solution", solution)
    if spec is None or not os.path.isfile(solution):
        raise MinidockerError(f"exercise: no solution file {solution}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a syntax error, a bad import: the learner needs the line, not our traceback
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) else ""
        raise MinidockerError(f"exercise: {solution} does not load{where}: {type(e).__name__}: {e}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise MinidockerError(f"exercise: {solution} defines no function {name}()")
    return function


def plug_in(target: str, solution: str) -> None:
    """Replace `module:function` (e.g. minidocker.rootfs:pivot_into) by the same-named one in `solution`."""
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        raise MinidockerError(f"exercise: {module_name} has no function {name}")
    learner = load_function(solution, name)

    @functools.wraps(learner)
    def learners_function(*args, **kwargs):
        try:
            return learner(*args, **kwargs)
        except (MinidockerError, OSError):  # what minidocker's own function may raise: reported as usual
            raise
        except Exception as e:  # NotImplementedError from the stub, a bug: one line that names the culprit
            raise MinidockerError(f"your {name}() raised {type(e).__name__}: {e}") from None

    setattr(module, name, learners_function)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidocker.exercise",
                                     description="minidocker, with one function replaced by yours")
    parser.add_argument("--solution", required=True, help="the Python file holding your function")
    parser.add_argument("--replace", required=True, help="module:function of minidocker to replace")
    parser.add_argument("cli_args", nargs=argparse.REMAINDER, help="-- then minidocker's usual arguments")
    args = parser.parse_args(argv)
    cli_args = args.cli_args[1:] if args.cli_args[:1] == ["--"] else args.cli_args
    try:
        plug_in(args.replace, args.solution)
    except MinidockerError as e:
        print(f"minidocker: {e}", file=sys.stderr)
        return e.exit_code
    from minidocker import cli

    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main())
