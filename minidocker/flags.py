"""Docker's command-line grammar, in a few lines: what cli.py declares its flags with.

Why not argparse: starting a container fast is a feature (runc is the yardstick), and argparse
costs a `minidocker run` ~5 ms before anything happens -- importing it (with gettext and locale),
then building a parser that translates every help string.  It is also not Docker's grammar.
Docker's CLI (cobra over spf13/pflag) never guesses an abbreviation (argparse takes `--na` for
`--name`), accepts `--rm=false`, lets `-e=X`, `-eX` and `-it` through, and for run/create/exec
stops reading flags at the first positional word: everything after the image belongs to the
container's command, `-l` or `--rm` included.  This module does that, imports almost nothing,
and words its errors as Docker does.

    p = Parser("minidocker rm", "remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+")
    p.parse_args(["c1", "-f"])   # namespace(help=False, force=True, containers=['c1'])
"""

from types import SimpleNamespace

from minidocker.errors import MinidockerError

REST = "..."  # nargs: this word and every word after it, flags included (flag parsing stops here)


class Help(Exception):
    """--help was given: the exception carries the text to print (then exit 0)."""


class _Flag:
    def __init__(self, names, action=None, default=None, help="", type=None):
        self.longs = [n[2:] for n in names if n.startswith("--")]  # --network, --net
        self.long = self.longs[0]
        self.short = next((n[1:] for n in names if not n.startswith("--")), "")
        self.dest = self.long.replace("-", "_")
        if action == "store_true":
            self.kind = "bool"
        elif action == "append":
            self.kind = "list"
        else:
            self.kind = "float" if type is float else "string"
        if self.kind == "list":
            default = []
        elif self.kind == "bool" and default is None:
            default = False
        self.default = default
        self.help = help or ""


class _Positional:
    def __init__(self, dest, nargs=None, choices=None, metavar=None):
        self.dest, self.nargs, self.choices = dest, nargs, choices
        name = metavar or ("|".join(choices) if choices else dest.upper())
        single = name.removesuffix("S")  # CONTAINERS: CONTAINER [CONTAINER...]
        self.usage = {None: name, "?": f"[{name}]", "*": f"[{single}...]", "+": f"{single} [{single}...]",
                      REST: metavar or "[COMMAND] [ARG...]"}[nargs]


class Parser:
    """One command's flags and positional arguments, declared with an argparse-like add_argument."""

    def __init__(self, prog: str, summary: str = "", short_help: bool = True, epilog: str = ""):
        self.prog, self.summary, self.epilog = prog, summary, epilog
        self.flags: list[_Flag] = []
        self.positionals: list[_Positional] = []
        self.add_argument("--help", action="store_true", help="print this help")
        self.short_help = short_help  # -h means --help, unless a flag of the command takes -h

    def add_argument(self, *names, action=None, default=None, help="", type=None, nargs=None, choices=None,
                     metavar=None):
        if names[0].startswith("-"):
            self.flags.append(_Flag(names, action, default, help, type))
        else:
            self.positionals.append(_Positional(names[0], nargs, choices, metavar))

    def fail(self, message: str):
        raise MinidockerError(f"{message} (see '{self.prog} --help')")

    def parse_args(self, argv: list[str], namespace=None) -> SimpleNamespace:
        args = namespace or SimpleNamespace()
        for flag in self.flags:
            setattr(args, flag.dest, list(flag.default) if flag.kind == "list" else flag.default)
        by_long = {name: f for f in self.flags for name in f.longs}
        by_short = {f.short: f for f in self.flags if f.short}
        if self.short_help:
            by_short.setdefault("h", by_long["help"])
        stop_at_first_word = any(p.nargs == REST for p in self.positionals)
        words, i = [], 0
        while i < len(argv):
            word, i = argv[i], i + 1
            if word == "--":  # the end of the flags
                words += argv[i:]
                break
            if word.startswith("--"):
                name, has_value, value = word[2:].partition("=")
                if not name or name[0] in "-=":
                    self.fail(f"bad flag syntax: {word}")
                flag = by_long.get(name) or self.fail(f"unknown flag: --{name}")
                if not has_value and flag.kind != "bool":
                    if i == len(argv):
                        self.fail(f"flag needs an argument: {word}")
                    value, i = argv[i], i + 1
                self._set(args, flag, value if has_value or flag.kind != "bool" else "true")
            elif word.startswith("-") and word != "-":
                letters = word[1:]  # -it, -dit, -eFOO=1, -e=FOO=1, -ite FOO=1
                while letters:
                    letter, rest = letters[0], letters[1:]
                    flag = by_short.get(letter) or self.fail(f"unknown shorthand flag: '{letter}' in -{letters}")
                    if len(rest) > 1 and rest[0] == "=":
                        value, rest = rest[1:], ""
                    elif flag.kind == "bool":
                        value = "true"
                    elif rest:
                        value, rest = rest, ""
                    elif i < len(argv):
                        value, i = argv[i], i + 1
                    else:
                        self.fail(f"flag needs an argument: '{letter}' in -{letters}")
                    self._set(args, flag, value)
                    letters = rest
            else:
                words.append(word)
                if stop_at_first_word:  # run IMAGE ...: the rest is the container's command
                    words += argv[i:]
                    break
        if args.help:
            raise Help(self.help_text())
        self._assign(args, words)
        return args

    def _set(self, args, flag: _Flag, value: str) -> None:
        if flag.kind == "bool":
            if value not in _TRUE + _FALSE:
                self._invalid(flag, value, "ParseBool")
            value = value in _TRUE
        elif flag.kind == "float":
            try:
                value = float(value)
            except ValueError:
                self._invalid(flag, value, "ParseFloat")
        if flag.kind == "list":
            getattr(args, flag.dest).append(value)
        else:
            setattr(args, flag.dest, value)

    def _invalid(self, flag: _Flag, value: str, go_function: str):
        name = f"-{flag.short}, --{flag.long}" if flag.short else f"--{flag.long}"
        self.fail(f"invalid argument {_quote(value)} for {_quote(name)} flag: "
                  f"strconv.{go_function}: parsing {_quote(value)}: invalid syntax")

    def _assign(self, args, words: list[str]) -> None:
        """Hand the positional words out, after checking their number as cobra does."""
        least = sum(1 for p in self.positionals if p.nargs in (None, "+"))
        most = least + sum(1 for p in self.positionals if p.nargs == "?")
        if any(p.nargs in ("*", "+", REST) for p in self.positionals):
            most = None
        plural = "s" if least != 1 else ""
        if most == 0 and words:
            self.fail(f'"{self.prog}" accepts no arguments.')
        if least == most and len(words) != least:
            self.fail(f'"{self.prog}" requires exactly {least} argument{plural}.')
        if len(words) < least:
            self.fail(f'"{self.prog}" requires at least {least} argument{plural}.')
        if most is not None and len(words) > most:
            self.fail(f'"{self.prog}" requires at least {least} and at most {most} arguments.')
        for p in self.positionals:
            if p.nargs in (None, "?"):
                value = words.pop(0) if words else None
                if p.choices and value is not None and value not in p.choices:
                    self.fail(f"unknown command: {_quote(value)} for {_quote(self.prog)}")
            else:
                value, words = words, []
            setattr(args, p.dest, value)

    def help_text(self) -> str:
        usage = " ".join([self.prog, "[OPTIONS]"] + [p.usage for p in self.positionals])
        rows = []
        for f in self.flags[1:]:  # --help itself goes without saying, as in Docker
            names = (f"-{f.short}, " if f.short else "    ") + f"--{f.long}"
            metavar = "" if f.kind == "bool" else f" {f.kind}"
            if not f.default or f.kind == "list":
                default = ""
            elif f.kind == "string":
                default = _quote(f.default)  # (default "none")
            else:
                default = str(f.default).lower()  # (default true), (default 60)
            rows.append((names + metavar, f.help + (f" (default {default})" if default else "")))
        width = max((len(left) for left, _ in rows), default=0) + 3
        options = "".join(f"  {left:<{width}}{right}".rstrip() + "\n" for left, right in rows)
        return f"\nUsage:  {usage}\n\n{self.summary}\n" + (f"\nOptions:\n{options}" if rows else "") + self.epilog


_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # what Go's strconv.ParseBool accepts
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _quote(text: str) -> str:
    """Go's %q, near enough: in double quotes, with backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
