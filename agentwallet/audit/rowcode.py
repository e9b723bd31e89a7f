"""Generated per-event row code: the sync's fast decoder.

For each event whose data is static (one-word types only), :func:`compile_row` writes a small
Python function from source text, once, that turns one log (its topics and data as the node's
hex text) into the index row: it slices topics and data words at fixed offsets, converts them
with ``int(..., 16)`` and string slicing, checksums addresses through a cache, puts each value
in its columns and writes the row's ``args`` JSON with its keys in their sorted order. Which
value feeds which column is asked of :func:`~agentwallet.audit.columns.event_columns` (the one
rule for both decoders) once, when the code is written, by running it over probes
(:func:`_baked_columns`); a value it compares with a constant (the zero agent of the owners'
payment) sends a row whose value equals that constant to event_columns itself. Anything not in its
canonical encoding (dirty padding, a value too wide for its type, a bool above 1) raises
:class:`Fallback`, and the caller asks eth_abi instead (:mod:`agentwallet.audit.rows`), so the
rows are those of :meth:`EventCodec.decode <agentwallet.audit.events.EventCodec.decode>`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import CodeType
from typing import Any

from agentwallet.audit.columns import event_columns
from agentwallet.audit.events import EventSpec, _checksum, _topic_plain
from agentwallet.audit.schema import DERIVED_ARGS, column_value

__all__ = ["Fallback", "RowCode", "compile_row", "json_value", "one_word"]

RowCode = Callable[[list[str], str, str, int, str, str, int, int], tuple[Any, ...]]
"""(topics, data, emitter, block number, block hash, tx hash, log index, block time) -> row"""

_ZERO24 = "0" * 24


class Fallback(Exception):
    """Not the canonical encoding: let eth_abi judge it (EventCodec.decode)."""


def one_word(typ: str) -> bool:
    """Whether ``typ`` is a static type of one ABI word the generated code reads itself."""
    if typ in ("address", "bool"):
        return True
    if typ.startswith(("uint", "int")):
        digits = typ[4:] if typ.startswith("uint") else typ[3:]
        return digits.isdigit()
    return typ.startswith("bytes") and typ[5:].isdigit()


def json_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'  # checksummed addresses and 0x-hex only: nothing to escape


def _word_code(typ: str, var: str, word: str) -> list[str]:
    """Statements that read one data word (the expression ``word``) into ``var``."""
    if typ == "address":
        return [
            f"w = {word}[24:]",
            f"if {word}[:24] != Z24: raise F",
            f"{var} = CSC.get(w) or CS(w)",
        ]
    if typ == "bool":
        return [f"{var} = int({word}, 16)", f"if {var} > 1: raise F", f"{var} = {var} == 1"]
    if typ.startswith("uint"):
        bits = int(typ[4:] or 256)
        check = [] if bits == 256 else [f"if {var} >> {bits}: raise F"]
        return [f"{var} = int({word}, 16)", *check]
    if typ.startswith("int"):
        bits = int(typ[3:] or 256)
        return [
            f"{var} = int({word}, 16)",
            f"if {var} >> 255: {var} -= {1 << 256}",
            f"if not {-(1 << (bits - 1))} <= {var} < {1 << (bits - 1)}: raise F",
        ]
    digits = 2 * int(typ[5:])  # bytesN
    if digits == 64:
        return [f'{var} = "0x" + {word}']
    return [
        f"w = {word}",
        f'if w[{digits}:] != "{"0" * (64 - digits)}": raise F',
        f'{var} = "0x" + w[:{digits}]',
    ]


def _topic_code(typ: str, var: str, topic: str, env: dict[str, Any]) -> str:
    """The statement that reads an indexed argument from its topic's hex text."""
    if typ == "address":
        return f"{var} = CSC.get({topic}[26:]) or CS({topic}[26:])"
    if typ.startswith("uint"):
        return f"{var} = int({topic}, 16)"
    reader = f"T_{var}"
    env[reader] = lambda text: _topic_plain(typ, bytes.fromhex(text[2:]))
    return f"{var} = {reader}({topic})"


def _json_code(key: str, var: str, typ: str) -> str:
    """An expression: ``"key":value`` as the row's args JSON writes it."""
    head = repr(f'"{key}":')
    if typ == "bool":
        return f"{head} + ('true' if {var} else 'false')"
    if typ.startswith(("uint", "int")):
        return f"{head} + str({var})"
    if typ == "address" or typ.startswith("bytes"):
        return f"{head} + '\"' + {var} + '\"'"
    return f"{head} + J({var})"


def compile_row(
    spec: EventSpec,
    chain_id: int,
    call_agent: Callable[[str], str | None],
    checksums: dict[str, str],
) -> RowCode | None:
    """The generated row function of ``spec``'s event, or None if its data is dynamic.
    ``checksums``: a cache of checksummed addresses by their 40 lowercase hex digits, shared
    by the decoder's functions."""
    inputs = spec.inputs
    if not all(indexed or one_word(typ) for _, typ, indexed in inputs):
        return None

    def checksum(digits: str) -> str:
        found = checksums.get(digits)
        if found is None:
            if len(checksums) > 100_000:
                checksums.clear()
            found = checksums[digits] = _checksum("0x" + digits)
        return found

    env: dict[str, Any] = {
        "F": Fallback,
        "Z24": _ZERO24,
        "CS": checksum,
        "CSC": checksums,
        "J": json_value,
        "COLUMNS": event_columns,
        "CALL_AGENT": call_agent,
        "CV": column_value,
        "SLOW_JSON": _slow_json,
    }
    variables = {name: f"a{i}" for i, (name, _, _) in enumerate(inputs)}
    types = {name: typ for name, typ, _ in inputs}
    # indexed arguments the generated code does not read itself: their JSON as eth_abi's
    json_types = {
        name: typ if not indexed or typ == "address" or typ.startswith("uint") else "other"
        for name, typ, indexed in inputs
    }
    topics = [name for name, _, indexed in inputs if indexed]
    words = [name for name, _, indexed in inputs if not indexed]
    body = [
        f"if len(t) != {len(topics) + 1} or len(d) != {2 + 64 * len(words)}: raise F",
    ]
    if words:
        body.append("d = d.lower()")
    for i, name in enumerate(topics):
        body.append(_topic_code(types[name], variables[name], f"t[{i + 1}]", env))
    for i, name in enumerate(words):
        body += _word_code(types[name], variables[name], f"d[{2 + 64 * i}:{66 + 64 * i}]")
    args = "{" + ", ".join(f"{name!r}: {variables[name]}" for name, _, _ in inputs) + "}"
    general_row = (
        f"({chain_id}, bn, li, bt, bh, tx, emitter, c[0], {spec.name!r}, c[1], c[2], c[3], "
        "c[4], c[5], c[6], None if c[7] is None else str(c[7]), c[8])"
    )
    derived = [(name, DERIVED_ARGS[name]) for name, _, _ in inputs if name in DERIVED_ARGS]

    def compared(name: str, position: int) -> str:
        """What column ``position`` holds when argument ``name`` needs no place in JSON."""
        v = variables[name]
        if json_types[name] == "other":
            return v if position != 15 else f"CV({position}, {v})"
        return f"str({v})" if position == 15 and types[name].startswith(("uint", "int")) else v

    baked = _baked_columns(spec, variables, types)
    if baked is None:  # event_columns does something the probe cannot follow: ask it per row
        body += [
            f"args = {args}",
            f"c = COLUMNS({spec.name!r}, args, emitter, CALL_AGENT)",
            f"row = {general_row}",
        ]
        checks = [(position, compared(name, position)) for name, position in derived]
        items = None
    else:
        columns, guards = baked
        if guards:  # a value event_columns treats specially (a payment by no agent)
            body += [
                f"if {' or '.join(guards)}:",
                f"    args = {args}",
                f"    c = COLUMNS({spec.name!r}, args, emitter, CALL_AGENT)",
                f"    return SLOW_JSON({general_row}, args)",
            ]
        items = (
            f"{chain_id}, bn, li, bt, bh, tx, emitter, {columns[0]}, {spec.name!r}, "
            + ", ".join(columns[1:])
        )
        at = {position: columns[position - 8] for position in range(9, 17)}
        checks = [
            (position, compared(name, position))
            for name, position in derived
            if at[position] != compared(name, position)
        ]
    if checks:
        if items is not None:
            body.append(f"row = ({items})")
            items = None
        # an argument whose column holds something else stays in JSON
        same = " and ".join(f"row[{position}] == {expr}" for position, expr in checks)
        body.append(f"if not ({same}): return SLOW_JSON(row, {args})")
    keys = sorted(name for name, _, _ in inputs if name not in DERIVED_ARGS)
    text = (
        "'{' + "
        + " + ',' + ".join(_json_code(k, variables[k], json_types[k]) for k in keys)
        + " + '}'"
        if keys
        else "'{}'"
    )
    # one tuple, unless the row was needed before its JSON
    body.append(f"return (*row, {text})" if items is None else f"return ({items}, {text})")
    source = "def row_code(t, d, emitter, bn, bh, tx, li, bt):\n" + "".join(
        f"    {line}\n" for line in body
    )
    exec(_compiled(source, spec.name), env)  # noqa: S102 - our text
    code: RowCode = env["row_code"]
    return code


@cache
def _compiled(source: str, name: str) -> CodeType:
    """The compiled source (compiling is ~1 ms an event: once a process, not once a sync)."""
    return compile(source, f"<row code of {name}>", "exec")


def _slow_json(row: tuple[Any, ...], args: dict[str, Any]) -> tuple[Any, ...]:
    """The row with the JSON of the arguments its columns do not hold (with the same value)."""
    keys = sorted(
        k
        for k, v in args.items()
        if k not in DERIVED_ARGS or row[DERIVED_ARGS[k]] != column_value(DERIVED_ARGS[k], v)
    )
    return (*row, "{" + ",".join(f'"{k}":{json_value(args[k])}' for k in keys) + "}")


class _Unfollowable(Exception):
    """event_columns did something with a value that the probe cannot turn into code."""


class _Trace:
    """What one run of event_columns over probes did: the comparisons it made (each taken
    as false) and the ints it made of probes (markers no log holds, by their expression)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.ints: dict[int, str] = {}


class _Probe:
    """Stands for one value of a log while :func:`_baked_columns` runs ``event_columns`` once:
    it holds the generated code's expression for the value. Comparing it with a constant is
    recorded (and false: a row for which it is true takes the general path); ``int()`` of it
    gives a marker; anything else (truth, hashing, arithmetic) is unfollowable."""

    __slots__ = ("expr", "integer", "trace")

    def __init__(self, expr: str, integer: bool, trace: _Trace) -> None:
        self.expr, self.integer, self.trace = expr, integer, trace

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Probe) or not isinstance(other, (str, int, bytes, type(None))):
            raise _Unfollowable(f"{self.expr} == {other!r}")
        self.trace.seen.append(f"{self.expr} == {other!r}")
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        raise _Unfollowable(f"hash({self.expr})")

    def __bool__(self) -> bool:
        raise _Unfollowable(f"bool({self.expr})")

    def __str__(self) -> str:
        raise _Unfollowable(f"str({self.expr})")

    def __format__(self, spec: str) -> str:
        raise _Unfollowable(f"format({self.expr})")

    def __int__(self) -> int:
        marker = _MARKER + len(self.trace.ints)
        self.trace.ints[marker] = self.expr if self.integer else f"int({self.expr})"
        return marker


_MARKER = 1 << 400  #: int(probe) is this or above: no ABI value is


def _baked_columns(
    spec: EventSpec, variables: dict[str, str], types: dict[str, str]
) -> tuple[list[str], list[str]] | None:
    """Asks :func:`event_columns` once, at generation time, which value feeds which column:
    (the generated code's expressions for the row's columns 7 and 9-16, the conditions under
    which event_columns would take another path), or None if it cannot be followed."""
    trace = _Trace()
    args = {
        name: _Probe(variables[name], types[name].startswith(("uint", "int")), trace)
        for name in variables
    }

    def call_agent(data: Any) -> Any:
        if not isinstance(data, _Probe):
            raise _Unfollowable("call_agent of a constant")
        return _Probe(f"CALL_AGENT({data.expr})", False, trace)

    def expr(value: Any) -> str:
        if isinstance(value, _Probe):
            return value.expr
        if type(value) is int and value >= _MARKER:
            return trace.ints[value]
        if value is None or type(value) in (str, int, bool):
            return repr(value)
        raise _Unfollowable(repr(value))

    try:
        emitter: Any = _Probe("emitter", False, trace)
        columns = event_columns(spec.name, args, emitter, call_agent)
        exprs = [expr(value) for value in columns]
    except (_Unfollowable, TypeError, ValueError, KeyError, AttributeError):
        return None
    amount = columns[7]  # its column holds decimal text
    if isinstance(amount, _Probe) or type(amount) is int and amount >= _MARKER:
        exprs[7] = f"str({exprs[7]})"
    elif amount is not None:
        exprs[7] = repr(str(amount))
    return exprs, trace.seen
