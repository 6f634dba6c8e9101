"""JSON for minidocker's records and messages, through the C core of Python's json module.

Every container record, image index and message between minidocker's processes is JSON, as
Docker's are.  Why not plain `import json`: json's Python half compiles regular expressions when it
is imported, so it imports `re`, and `re` imports `enum`, `functools` and `collections`.  Together
that is ~8 ms of every `minidocker run`, a fifth of a whole `run --rm busybox true` here
(benchmarks/README.md).

json itself does its work in C, in the `_json` module: one scanner that reads a document and one
encoder that writes one.  This module calls those two directly, with json's defaults, so the text
it writes is byte for byte what ``json.dumps(obj, sort_keys=..., separators=...)`` writes.  Left out
is only what minidocker does not use: indentation, object hooks, custom encoders.  Text that is not
one JSON document is handed to json itself, which raises its usual error (a ValueError).

Commands off the container's path (inspect, save, pull) use the json module itself.
"""

import _json


class _Defaults:
    """The settings the C scanner reads, as json.JSONDecoder's defaults set them."""
    strict = True  # no raw control characters inside strings
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # 'NaN', 'Infinity', '-Infinity'


_scan = _json.make_scanner(_Defaults())
_WHITESPACE = " \t\n\r"


def loads(text: str | bytes):
    """Parse one JSON document; ValueError (as json.loads raises) if it is not one."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except Exception:  # noqa: BLE001 - the scanner's errors are only complete once json is imported
        end = None
    if end is None or text[end:].strip(_WHITESPACE):
        # Not one JSON document.  This is rare (minidocker's writes are atomic), so json itself may
        # now be imported, to raise exactly the error json.loads raises (a ValueError).
        import json

        return json.loads(text)
    return value


def _refuse(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj, sort_keys: bool = False, separators: tuple[str, str] = (", ", ": ")) -> str:
    """One line of JSON, non-ASCII escaped as \\uXXXX (json.dumps's defaults)."""
    item_separator, key_separator = separators
    encode = _json.make_encoder({}, _refuse, _json.encode_basestring_ascii, None,
                                key_separator, item_separator, sort_keys, False, True)
    return "".join(encode(obj, 0))


def load(f):
    return loads(f.read())


def dump(obj, f) -> None:
    f.write(dumps(obj))
