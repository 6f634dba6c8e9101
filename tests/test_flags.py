"""minidocker.flags: Docker's command-line grammar (spf13/pflag under cobra), no kernel needed.

Each case is what `docker` itself does with the same words; the parser is driven through
cli.parse_args, so the flags are the ones the real commands declare.
"""

import os
import subprocess
import sys

import pytest

from minidocker import cli, flags
from minidocker.errors import MinidockerError


def parse(*words):
    return cli.parse_args(list(words))


def refused(*words) -> str:
    with pytest.raises(MinidockerError) as caught:
        parse(*words)
    assert caught.value.exit_code == 125
    return cli.one_line(caught.value)


def test_long_flags_with_a_space_or_an_equals_sign():
    args = parse("run", "--name", "web", "--cidfile=/tmp/x.cid", "busybox")
    assert (args.name, args.cidfile, args.image, args.command) == ("web", "/tmp/x.cid", "busybox", [])
    assert parse("run", "--name", "--rm", "busybox").name == "--rm"  # a flag's value may start with -


def test_no_abbreviations():
    assert refused("run", "--na", "web", "busybox") == "unknown flag: --na (see 'minidocker run --help')"


def test_booleans_take_go_spellings_after_an_equals_sign():
    assert parse("run", "--rm", "busybox").rm is True
    for word, value in [("false", False), ("0", False), ("F", False), ("true", True), ("1", True), ("T", True)]:
        assert parse("run", f"--rm={word}", "busybox").rm is value
    assert refused("run", "--rm=maybe", "busybox") == (
        'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax'
        " (see 'minidocker run --help')")
    args = parse("run", "--rm", "false", "x")  # without "=", the next word is the image, not the flag's value
    assert (args.rm, args.image, args.command) == (True, "false", ["x"])


def test_shorthands_alone_grouped_and_with_their_value():
    args = parse("run", "-it", "-dit", "-e", "A=1", "-eB=2", "-e=C=3", "-iteD=4", "-ite", "E=5", "busybox")
    assert args.interactive and args.tty and args.detach
    assert args.env == ["A=1", "B=2", "C=3", "D=4", "E=5"]
    assert parse("run", "-t=false", "busybox").tty is False
    assert parse("run", "-h", "box", "busybox").hostname == "box"  # run's -h is --hostname


def test_run_and_exec_stop_reading_flags_at_the_first_positional():
    args = parse("run", "busybox", "ls", "-l", "--rm")
    assert (args.image, args.command, args.rm) == ("busybox", ["ls", "-l", "--rm"], False)
    args = parse("exec", "-i", "c1", "sh", "-c", "echo --help", "--", "-e")
    assert (args.container, args.exec_command, args.interactive, args.env) == (
        "c1", ["sh", "-c", "echo --help", "--", "-e"], True, [])
    assert parse("run", "busybox", "--help").command == ["--help"]


def test_other_commands_take_flags_after_positionals():
    args = parse("rm", "c1", "-f", "c2")
    assert (args.containers, args.force) == (["c1", "c2"], True)
    assert parse("stop", "c1", "-t", "3").time == "3"


def test_double_dash_ends_the_flags():
    assert parse("rm", "--", "-f").containers == ["-f"]
    assert parse("rm", "-f", "--", "-x", "y").containers == ["-x", "y"]
    args = parse("run", "--", "busybox", "-x")
    assert (args.image, args.command) == ("busybox", ["-x"])
    assert parse("rm", "-").containers == ["-"]  # "-" alone is a word (stdin), not a flag


def test_commit_pause_is_a_boolean_so_the_container_can_follow_it():
    args = parse("commit", "-p", "c1", "repo:1")
    assert (args.pause, args.container, args.repository) == (True, "c1", "repo:1")
    assert parse("commit", "c1").pause is True
    assert parse("commit", "--pause=false", "c1").pause is False
    assert parse("commit", "-p=0", "c1").pause is False


def test_defaults_values_and_kinds():
    args = parse("grade", "--timeout", "2.5", "01")
    assert (args.timeout, args.exercises, args.output, args.reference) == (2.5, ["01"], "grade-results", False)
    assert parse("grade").timeout == 60 and parse("grade").exercises == []
    assert parse("run", "busybox").network == "none" and parse("run", "busybox").env == []
    assert parse("run", "--net=host", "busybox").network == "host"  # a second long name
    assert parse("--explain", "ps", "-aq").explain is True
    assert parse("ps").explain is False and parse("ps").subcommand == "ps"
    assert parse("image", "ls", "-q").action == "ls"


@pytest.mark.parametrize("words, message", [
    (["run", "--frobnicate", "busybox"], "unknown flag: --frobnicate"),
    (["run", "-z", "busybox"], "unknown shorthand flag: 'z' in -z"),
    (["run", "-itz", "busybox"], "unknown shorthand flag: 'z' in -z"),
    (["run", "busybox", "--name"], None),  # after the image: the container's, not an error
    (["run", "--name"], "flag needs an argument: --name"),
    (["run", "-e"], "flag needs an argument: 'e' in -e"),
    (["run", "-ie"], "flag needs an argument: 'e' in -e"),
    (["run"], '"minidocker run" requires at least 1 argument.'),
    (["rename", "a"], '"minidocker rename" requires exactly 2 arguments.'),
    (["logs"], '"minidocker logs" requires exactly 1 argument.'),
    (["ps", "x"], '"minidocker ps" accepts no arguments.'),
    (["commit", "a", "b", "c"], '"minidocker commit" requires at least 1 and at most 2 arguments.'),
    (["image", "frob"], 'unknown command: "frob" for "minidocker image"'),
    (["frob"], 'unknown command: "frob"'),
    (["--frob", "ps"], "unknown flag: --frob"),
    (["grade", "--timeout", "soon"],
     'invalid argument "soon" for "--timeout" flag: strconv.ParseFloat: parsing "soon": invalid syntax'),
    (["ps", "---a"], "bad flag syntax: ---a"),
    ([], "a command is required"),
])
def test_errors_read_as_docker_words_them(words, message):
    if message is None:
        assert parse(*words).command == ["--name"]
        return
    see = f"minidocker {words[0]}" if words and words[0] in cli.COMMANDS else "minidocker"  # whose flags failed
    assert refused(*words) == f"{message} (see '{see} --help')"


def test_help_is_text_to_print_not_an_error():
    with pytest.raises(flags.Help) as run_help:
        parse("run", "--help")
    text = str(run_help.value)
    assert "Usage:  minidocker run [OPTIONS] IMAGE [COMMAND] [ARG...]" in text
    assert "  -e, --env list " in text and "      --rm " in text and '(default "none")' in text
    with pytest.raises(flags.Help) as rm_help:
        parse("rm", "-h")  # -h is help where no flag of the command takes it
    assert "Usage:  minidocker rm [OPTIONS] CONTAINER [CONTAINER...]" in str(rm_help.value)
    with pytest.raises(flags.Help) as top_help:
        parse("--help")
    assert "Commands:" in str(top_help.value) and "  commit " in str(top_help.value)
    assert refused("exec", "-h", "c1").startswith("unknown shorthand flag: 'h' in -h")


def test_importing_the_cli_imports_neither_argparse_nor_gettext():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import sys; sys.path.insert(0, {root!r}); import minidocker.cli; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'argparse'" not in loaded and "'gettext'" not in loaded and "'minidocker.flags'" in loaded


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_has_help(command):
    with pytest.raises(flags.Help) as shown:
        parse(command, "--help")
    assert str(shown.value).startswith(f"\nUsage:  minidocker {command} [OPTIONS]")


def test_help_goes_to_stdout_with_exit_0_even_into_a_closed_pipe():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shown = subprocess.run([sys.executable, "-m", "minidocker", "rm", "--help"], cwd=root, capture_output=True,
                           text=True)
    assert (shown.returncode, shown.stderr) == (0, "") and shown.stdout.startswith("\nUsage:  minidocker rm")
    piped = subprocess.run(f"{sys.executable} -m minidocker --help | head -c 1", shell=True, cwd=root,
                           capture_output=True, text=True)
    assert piped.stderr == "", piped.stderr
