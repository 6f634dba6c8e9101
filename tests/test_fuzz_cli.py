"""Bad input, generated: hypothesis throws thousands of values at every parser minidocker has.

The contract (the developers' guide): a value is either accepted, or refused with
a MinidockerError -- one line, exit code 125 -- never a traceback.  Each value
parser is driven in-process (fast); the whole CLI in-process through cli.main with
its stdout/stderr captured (the same code the `minidocker` script runs); and a
smaller sample through the real `minidocker` executable.

The budgets below are the number of generated cases per property; together they
must reach the issue's 10,000 (test_budgets_add_up).  Each property counts the
cases it really ran, so a budget is a measured number, not a wish.
"""

import contextlib
import io
import json
import os
import string
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidocker import api, capabilities, cli, flags, images, jsoncore, spec, store as store_module
from minidocker.errors import MinidockerError

BUDGETS = {
    "memory": 1500, "cpus": 1000, "int": 800, "env": 1000, "env_file": 400, "names": 1000, "signals": 800,
    "capabilities": 800, "modes": 500, "durations": 500, "image_references": 600, "changes": 600,
    "formats": 400, "cli_in_process": 1200, "cli_subprocess": 60, "flags": 1500, "json_values": 800,
    "json_text": 800, "stored_names": 600,
}
TOTAL_REQUIRED = 10_000

# Text a user might type: anything, but weighted towards the characters parsers care about.
ANY_TEXT = st.text(max_size=40)
# (\udcff: how Python hands over a byte of argv that is not UTF-8, e.g. $'\xff' in a shell)
NEAR_MISS = st.text(alphabet=string.ascii_letters + string.digits + " .:-_=/\t\n\r\x00\x7f%+é٣\udcff", max_size=24)
USER_TEXT = st.one_of(ANY_TEXT, NEAR_MISS)


def run_property(strategy, check, budget: int) -> None:
    """Run check(value) on `budget` generated values; assert that many really ran."""
    ran = []

    @settings(max_examples=budget, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value):
        ran.append(1)
        check(value)

    prop()
    assert len(ran) >= budget, f"only {len(ran)} of {budget} cases ran"


def accepted_or_clear(parse, value):
    """parse(value) either returns, or raises MinidockerError with a one-line message and exit 125."""
    try:
        return parse(value)
    except MinidockerError as e:
        message = cli.one_line(e)
        assert e.exit_code == 125
        assert message and "\n" not in message and "Traceback" not in message
        return None


def test_budgets_add_up():
    assert sum(BUDGETS.values()) >= TOTAL_REQUIRED


def test_memory_sizes():
    sizes = st.one_of(USER_TEXT, st.from_regex(r"\A\s*[0-9]{1,30}(\.[0-9]{0,5})?\s*[bkmgBKMG]?[bB]?\s*\Z"))

    def check(value):
        size = accepted_or_clear(spec.parse_memory, value)
        if size is not None:
            assert isinstance(size, int) and spec.MIN_MEMORY <= size <= spec.MAX_MEMORY

    run_property(sizes, check, BUDGETS["memory"])


def test_cpu_quotas():
    values = st.one_of(USER_TEXT, st.floats().map(str), st.from_regex(r"\A[0-9]{0,3}\.?[0-9]{0,4}\Z"))

    def check(value):
        cpus = accepted_or_clear(spec.parse_cpus, value)
        if cpus is not None:
            assert 0.01 <= cpus <= os.cpu_count()

    run_property(values, check, BUDGETS["cpus"])


def test_whole_numbers_cpu_shares_and_pids_limit():
    values = st.one_of(USER_TEXT, st.integers().map(str), st.integers(-5, 300000).map(str))

    def check(value):
        shares = accepted_or_clear(lambda v: spec.parse_int(v, "--cpu-shares", 2, 262144), value)
        assert shares is None or 2 <= shares <= 262144
        accepted_or_clear(lambda v: spec.parse_int(v, "--pids-limit", -1), value)

    run_property(values, check, BUDGETS["int"])


def test_env_values():
    items = st.lists(st.one_of(USER_TEXT, st.tuples(NEAR_MISS, NEAR_MISS).map("=".join)), max_size=4)

    def check(values):
        env = accepted_or_clear(spec.parse_env, values)
        if env is not None:
            assert all("=" in e and e.partition("=")[0] for e in env)

    run_property(items, check, BUDGETS["env"])


def test_env_files(tmp_path):
    contents = st.one_of(st.binary(max_size=200), st.lists(USER_TEXT, max_size=6).map(lambda ls: "\n".join(ls).encode(
        "utf-8", "surrogatepass")))
    path = tmp_path / "env.list"

    def check(content):
        path.write_bytes(content)
        accepted_or_clear(lambda p: spec.parse_env([], [p]), str(path))

    run_property(contents, check, BUDGETS["env_file"])
    accepted_or_clear(lambda p: spec.parse_env([], [p]), str(tmp_path / "missing"))
    accepted_or_clear(lambda p: spec.parse_env([], [p]), str(tmp_path))  # a directory


def test_container_names(tmp_path):
    store = store_module.Store(str(tmp_path / "root"))

    def check(name):
        accepted_or_clear(lambda n: api._host_config(api.Options(name=n), store), name)
        accepted_or_clear(store.resolve, name)  # as a reference: found or "No such container"

    run_property(st.one_of(USER_TEXT, st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}\Z")), check,
                 BUDGETS["names"])


def test_signals():
    values = st.one_of(USER_TEXT, st.sampled_from(["KILL", "sigterm", "SIGHUP", "9", "0", "-1", "65", "999999999999"]),
                       st.integers().map(str))

    def check(value):
        signum = accepted_or_clear(api._parse_signal, value)
        assert signum is None or 1 <= signum <= 64

    run_property(values, check, BUDGETS["signals"])


def test_capability_names():
    names = st.one_of(USER_TEXT, st.sampled_from(capabilities.NAMES + ["ALL", "all", "cap_chown", "CAP_"]))

    def check(name):
        accepted_or_clear(lambda n: capabilities.resolve([n], [n], False), name)

    run_property(names, check, BUDGETS["capabilities"])


def test_namespace_modes_and_security_opts(tmp_path):
    store = store_module.Store(str(tmp_path / "root"))
    modes = st.one_of(USER_TEXT, st.sampled_from(["host", "private", "none", "remap", "no-new-privileges:true"]))
    flag = st.sampled_from(["pid", "uts", "ipc", "network", "userns", "security_opt", "cgroup_parent", "hostname"])

    def check(pair):
        key, value = pair
        if key == "userns" and value == "remap":
            return  # its checks walk the real filesystem; tested in test_isolation
        value = (value,) if key == "security_opt" else value
        accepted_or_clear(lambda v: api._host_config(api.Options(**{key: v}), store), value)

    run_property(st.tuples(flag, modes), check, BUDGETS["modes"])


def test_durations_stop_timeout():
    values = st.one_of(USER_TEXT, st.floats().map(str), st.integers().map(str))

    def check(value):
        seconds = accepted_or_clear(spec.parse_seconds, value)
        assert seconds is None or 0 <= seconds < float("inf")

    run_property(values, check, BUDGETS["durations"])


def test_image_references():
    refs = st.one_of(USER_TEXT, st.from_regex(r"\A[a-z0-9./:@_-]{1,40}\Z"))

    def check(ref):
        accepted_or_clear(images.normalize, ref)

    run_property(refs, check, BUDGETS["image_references"])


def test_stored_names_are_found_as_parsing_would_find_them():
    """images.get looks a name up as the store files it before parsing it: 'busybox' as
    'busybox:latest'.  That shortcut may only ever find what the full parse finds."""
    stored = ["busybox:latest", "me/app:v1", "localhost:5000/app:latest", "ghcr.io/x/y:latest",
              "alpine@sha256:" + "a" * 64]
    near = st.sampled_from(stored).flatmap(lambda key: st.sampled_from(
        [key, key.removesuffix(":latest"), key.upper(), "library/" + key, "docker.io/" + key, key + ":latest"]))
    names = st.one_of(USER_TEXT, st.from_regex(r"\A[a-z0-9./:@_-]{1,40}\Z"), near)

    def check(name):
        for key in (name, f"{name}:latest"):
            if key in stored:
                assert images.normalize(name) == key
                break

    run_property(names, check, BUDGETS["stored_names"])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def test_jsoncore_writes_and_reads_what_json_does():
    """jsoncore drives json's C core directly: its text must be json.dumps's, byte for byte."""
    def check(value):
        for sort_keys in (False, True):
            for separators in ((", ", ": "), (",", ":")):
                assert jsoncore.dumps(value, sort_keys, separators) == \
                    json.dumps(value, sort_keys=sort_keys, separators=separators)
        assert jsoncore.loads(json.dumps(value)) == value

    run_property(JSON_VALUES, check, BUDGETS["json_values"])


def test_jsoncore_refuses_what_json_refuses():
    """Any text (and near-JSON: documents with a character dropped, doubled or changed) is read as
    json.loads reads it, or refused with a ValueError where json.loads refuses it."""
    def damaged(args):
        value, where, how = args
        text = json.dumps(value)
        i = where % (len(text) + 1)
        return [text[:i] + text[i + 1:], text[:i] + text[i:i + 1] * 2 + text[i + 1:],
                text[:i] + how + text[i:], f" {text}\n", text + how][where % 5]

    near_json = st.tuples(JSON_VALUES, st.integers(0, 200),
                          st.sampled_from(list(',:"[]{}\\ 0e-.ntfx\x00'))).map(damaged)

    def check(text):
        try:
            expected = json.loads(text)
        except ValueError:
            with pytest.raises(ValueError):
                jsoncore.loads(text)
            return
        assert json.dumps(jsoncore.loads(text)) == json.dumps(expected)  # (dumps: NaN is never == NaN)

    run_property(st.one_of(USER_TEXT, near_json), check, BUDGETS["json_text"])


def test_jsoncore_refuses_bad_text_in_a_process_that_never_imported_json():
    """A `minidocker` process imports no json.  Python 3.11's C scanner can only raise its error
    once json.decoder is imported (before, it fails with a SystemError): jsoncore must still
    refuse bad text with a ValueError there."""
    program = ("import sys\n"
               "from minidocker import jsoncore\n"
               "assert 'json' not in sys.modules\n"
               "for text in ['{\"Id\": ', '', '{}x', '[1,]', '\"a\\x01\"']:\n"
               "    try:\n"
               "        jsoncore.loads(text)\n"
               "    except ValueError:\n"
               "        continue\n"
               "    raise SystemExit(f'accepted {text!r}')\n")
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-S", "-c", program], cwd=repository, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_commit_changes():
    instruction = st.sampled_from(["CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "VOLUME",
                                   "RUN", "cmd", ""])
    changes = st.lists(st.tuples(instruction, USER_TEXT).map(" ".join), max_size=3)

    def check(values):
        accepted_or_clear(lambda v: images.apply_changes({}, v), values)

    run_property(changes, check, BUDGETS["changes"])


def test_inspect_formats():
    record = {"Id": "a" * 64, "State": {"Pid": 0, "Running": False}, "Config": {"Env": ["A=1"]}, "Name": "/x"}
    templates = st.one_of(USER_TEXT, st.from_regex(r"\A\{\{\s*(json )?\.[A-Za-z.]{0,20}\s*\}\}\Z"))

    def check(template):
        accepted_or_clear(lambda t: cli.render_format(t, record), template)

    run_property(templates, check, BUDGETS["formats"])


# -- the whole command line ---------------------------------------------------------------------

FLAG_WORDS = ["--name", "--cidfile", "-e", "--env", "--env-file", "-w", "-u", "-h", "--hostname", "--entrypoint",
              "-t", "-i", "--rm", "--init", "-m", "--memory", "--cpus", "-c", "--cpu-shares", "--pids-limit", "--pid",
              "--uts", "--ipc", "--network", "--net", "--userns", "--chroot", "--cap-add", "--cap-drop",
              "--privileged", "--security-opt", "--cgroup-parent", "--log-opt", "--log-driver", "-d", "--detach",
              "-a", "-f", "-q", "--no-trunc", "-s", "--signal", "--time", "--format", "--explain", "--help", "-", "--", "-x", "--bogus"]
COMMANDS_IN_PROCESS = ["create", "inspect", "ps", "rm", "rename", "kill", "stop", "wait", "logs", "images",
                       "history", "tag", "rmi", "diff", "pause", "unpause", "nosuchcommand", ""]
FLAG_VALUES = ["busybox", "true", "32m", "0.5", "host", "KILL", "none", "max-size=1k", "max-file=2"]
WORD = st.one_of(st.sampled_from(FLAG_WORDS), st.sampled_from(FLAG_VALUES), NEAR_MISS)


def argv_strategy(commands):
    return st.tuples(st.sampled_from(commands), st.lists(WORD, max_size=7)).map(
        lambda t: ([t[0]] if t[0] else []) + t[1])


def safe(argv: list[str], tmp: str) -> list[str] | None:
    """Keep generated arguments from touching the host outside tmp (cidfile, env-file) or blocking."""
    for i, word in enumerate(argv):
        if word in ("--cidfile", "--env-file") and i + 1 < len(argv):
            argv[i + 1] = os.path.join(tmp, argv[i + 1].replace("/", "_").replace("\0", "") or "f")
        if word in ("--help",) or word.startswith("--help"):
            return None  # prints help and exits 0 through SystemExit: fine, but not what we test
    if argv[:1] in (["wait"], ["stop"]) or argv[:1] == ["logs"] and "-f" in argv:
        return argv if not any(w in argv for w in ("-f", "--follow")) else None
    return argv


@pytest.fixture
def in_process_root(md, monkeypatch):
    monkeypatch.setenv("MINIDOCKER_ROOT", md.root)
    monkeypatch.setenv("MINIDOCKER_CGROUP_PARENT", md.cgroup_parent)
    return md


def test_cli_in_process(in_process_root, tmp_path):
    """cli.main on generated argv: exit 0, or 125 (1 for stop/kill/rm/wait, as Docker) with one line."""
    store = store_module.Store(in_process_root.root)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def check(argv):
        argv = safe(list(argv), str(scratch))
        if argv is None or (argv[:1] == ["create"] and any(w in argv for w in ("--userns",))):
            return
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)  # --help too returns (0): nothing exits through SystemExit
        lines = err.getvalue().splitlines()
        if code == 0:
            assert "Traceback" not in err.getvalue()
        else:
            assert code in (1, 125), (argv, code, err.getvalue())
            assert lines and all(line.startswith("minidocker: ") for line in lines), (argv, err.getvalue())
            per_container = argv[:1] in (["rm"], ["kill"], ["stop"], ["wait"], ["rmi"], ["pause"], ["unpause"])
            assert len(lines) == 1 or per_container, (argv, err.getvalue())
        for cid in store.ids():  # created containers: removed again, so the store stays small
            store.delete(cid)

    run_property(argv_strategy(COMMANDS_IN_PROCESS), check, BUDGETS["cli_in_process"])


def test_cli_subprocess(md, tmp_path):
    """The real executable, a smaller sample: the same contract, from outside."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    commands = COMMANDS_IN_PROCESS + ["run", "start", "exec", "system", "commit", "export", "import"]

    def check(argv):
        argv = safe([w.replace("\0", "") for w in argv], str(scratch))  # execve(2) cannot pass a NUL
        if argv is None or argv[:1] in (["import"],) and "-" in argv:
            return
        if argv[:1] == ["run"]:
            argv = argv[:1] + ["--rm"] + [w for w in argv[1:] if w not in ("-d", "--detach", "-t", "-i", "--userns")]
        result = md(*argv, timeout=30)
        assert "Traceback" not in result.stderr, (argv, result.stderr)
        if result.returncode not in (0, 1, 125, 126, 127):  # 126/127: the command line ran a command
            assert argv[:1] == ["run"], (argv, result.returncode, result.stderr)

    run_property(argv_strategy(commands), check, BUDGETS["cli_subprocess"])


def test_flag_parser_alone():
    """Every command's flags and arguments (the parse only, no store): a namespace, help, or one line."""
    every_command = argv_strategy(list(cli.COMMANDS) + ["nosuchcommand", ""])
    grouped = st.sampled_from(["-it", "-dit", "-e=X", "-eX", "--rm=false", "--pause=maybe", "-p", "--timeout"])
    words = st.one_of(every_command, st.lists(st.one_of(WORD, grouped), max_size=8).map(lambda w: ["run"] + w))

    def check(argv):
        try:
            args = accepted_or_clear(cli.parse_args, argv)
        except flags.Help as text:
            assert str(text).startswith("\nUsage:  minidocker")
            return
        if args is not None:
            assert args.subcommand in cli.COMMANDS and isinstance(args.explain, bool)

    run_property(words, check, BUDGETS["flags"])

