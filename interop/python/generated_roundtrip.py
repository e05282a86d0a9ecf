#!/usr/bin/env python3
"""Offline checks of `tonic-msgpack gen python` output (no server needed).

    python generated_roundtrip.py

Uses the golden modules in cli/tests/data/gen/python/: `everything.py` (every field kind
of tests/proto-e2e's everything.proto) must encode a value with every field set to the
compact layout (42 slots, the reserved number nil) and decode it back to an equal value and
the same bytes; `vectors.py` must write the bytes of MessagePack-CSharp's and MagicOnion's
vectors (cli/tests/data/gen/csharp-vectors.json).

Rust-produced bytes: interop/vectors/everything.json (written by tests/proto-e2e/tests/vectors.rs)
and interop/vectors/calculator.json (example-app/tests/vectors.rs) must decode, in the generated
classes (everything.py, demo_contract.py), to the values the Rust tests encoded, and encode back
to the same bytes. Exit code 0 when all passed.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "cli", "tests", "data", "gen", "python"))
sys.path.insert(0, HERE)

import msgpack  # noqa: E402

import demo_contract as d  # noqa: E402
import everything as e  # noqa: E402
import named as n  # noqa: E402
import vectors as v  # noqa: E402

results: List[Tuple[str, bool, str]] = []


def check(name: str, run: Callable[[], None]) -> None:
    try:
        run()
        results.append((name, True, ""))
    except Exception as err:  # noqa: BLE001 - every failure is reported
        results.append((name, False, f"{type(err).__name__}: {err}"))


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def full_everything() -> e.Everything:
    return e.Everything(
        i32=-1, i64=1 << 40, u32=200, u64=2**64 - 1, s32=-70000, s64=-(2**62), fx32=7, fx64=8,
        sfx32=-9, sfx64=-10, fl=1.5, db=-2.25, flag=True, text="héllo", data=b"\x00\x01",
        color=e.Color.COLOR_GREEN, numbers=[1, -1, 300], names=["x"], blobs=[b"a"],
        counts={"a": 1, "b": 2}, blob_map={1: b"\x08"}, inner=e.Inner(name="n", value=2),
        inners=[e.Inner()], maybe="m", choice_number=5,
        at=msgpack.Timestamp(1_700_000_000, 123_000_000), took=e.Duration(3, 4),
        wrapped_text="w", wrapped_int=None, price=e.Money(currency="EUR", units=3, nanos=1),
        tree=e.Tree(label="t", children=[e.Tree(label="c")]), deep=e.Inner_Deep(ok=True),
        colors=[1, 2], inner_map={"k": e.Inner(name="z")}, nothing=e.NIL, shared=b"s",
        maybe_int=0, wrapped_bytes=b"b",
    )


def everything_round_trip() -> None:
    value = full_everything()
    data = value.to_msgpack()
    again = e.Everything.from_msgpack(data)
    expect(again == value, f"decoded {again!r}")
    expect(again.to_msgpack() == data, "re-encoded bytes differ")
    slots = msgpack.unpackb(data, strict_map_key=False, timestamp=0)
    expect(isinstance(slots, list) and len(slots) == 42, "42 slots")
    expect(slots[34] is None, "reserved 35 is nil")
    expect(slots[10] == 1.5 and data.count(bytes([0xCA, 0x3F, 0xC0, 0, 0])) == 1, "float as float32")
    expect(e.Everything.from_msgpack(bytes([0x90])) == e.Everything(), "[] decodes as the default")
    expect(e.Everything.from_msgpack(bytes([0xC0])) == e.Everything(), "nil decodes as the default")


def vector_bytes() -> None:
    path = os.path.join(ROOT, "cli", "tests", "data", "gen", "csharp-vectors.json")
    with open(path, encoding="utf-8") as file:
        table: Dict[str, str] = {item["name"]: item["hex"] for item in json.load(file)}
    cases: List[Tuple[str, bytes]] = [
        ("intkey_two_members_readme", v.TwoMembers(foo=10, bar=20).to_msgpack()),
        ("intkey_gap_readme", v.Gap().to_msgpack()),
        ("intkey_gap_key0_key2", v.GapC(a=1, c="x").to_msgpack()),
        ("intkey_empty_class", v.Empty1().to_msgpack()),
        ("intkey_one_default_int", v.MyObject().to_msgpack()),
        ("intkey_record_single_member", v.MyObject(my_property=12345).to_msgpack()),
        ("strkey_readme", v.StrKey(foo=10, bar=20).to_msgpack()),
        ("keyAsPropertyName_readme", v.PascalKey(foo=10).to_msgpack()),
        ("magiconion_two_args_request", v._i_magic_two_parameters_request((12345, "Hello"))),
        ("magiconion_zero_args_request", v._i_magic_no_parameters_request(v.NIL)),
        (
            "magiconion_single_arg_list",
            v._i_magic_built_in_generic_request([v.Obj(value=i) for i in range(1, 6)]),
        ),
    ]
    for name, data in cases:
        expect(data.hex() == table[name], f"{name}: {data.hex()} != {table[name]}")
    kinds = v.Kinds.from_msgpack(bytes.fromhex("94" + table["enum_int_backed_value_2"] + table["bytes_1_2_3"]
                                               + table["nullable_int_value"] + table["dt_2010_12_01_030457_123"]))
    expect(kinds.value == v.MyEnumValue.C and kinds.data == b"\x01\x02\x03" and kinds.maybe == 100, repr(kinds))
    expect(kinds.at == msgpack.Timestamp(1291172697, 123000000), repr(kinds.at))


def rust_vectors(name: str) -> Dict[str, bytes]:
    """name -> bytes of interop/vectors/NAME.json, written by the Rust tests."""
    path = os.path.join(ROOT, "interop", "vectors", f"{name}.json")
    with open(path, encoding="utf-8") as file:
        return {item["name"]: bytes.fromhex(item["hex"]) for item in json.load(file)["vectors"]}


# The values of tests/proto-e2e/tests/vectors.rs, built with the generated classes.
F32_MAX: float = struct.unpack("<f", bytes.fromhex("ffff7f7f"))[0]
EVERYTHING_EXPECTED: Dict[str, e.Everything] = {
    "everything_default": e.Everything(),
    "everything_full": e.Everything(
        i32=-5, i64=1 << 40, u32=200, u64=123_456_789, s32=-300, s64=-(1 << 33), fx32=7,
        fx64=1 << 50, sfx32=-1, sfx64=-(1 << 33), fl=1.5, db=-2.25, flag=True, text="héllo",
        data=bytes([0, 1, 255]), color=e.Color.COLOR_GREEN, numbers=[1, -2, 300], names=["a", ""],
        blobs=[b"\x09", b""], counts={"k": -7}, blob_map={3: bytes([4, 5])},
        inner=e.Inner(name="in", value=2), inners=[e.Inner(), e.Inner(name="x", value=-1)],
        maybe="", choice_inner=e.Inner(name="c", value=1),
        at=msgpack.Timestamp(1_700_000_000, 5), took=e.Duration(3, 500), wrapped_text="w",
        wrapped_int=0, price=e.Money(currency="EUR", units=12, nanos=340_000_000),
        tree=e.Tree(label="root", children=[e.Tree(label="leaf")], parent=e.Tree()),
        deep=e.Inner_Deep(ok=True), colors=[e.Color.COLOR_RED, e.Color.COLOR_UNSPECIFIED],
        inner_map={"m": e.Inner()}, shared=b"shared", maybe_int=-9, wrapped_bytes=b"\x01",
    ),
    "everything_extremes": e.Everything(
        i32=-(2**31), i64=2**63 - 1, u32=2**32 - 1, u64=2**64 - 1, s32=2**31 - 1, s64=-(2**63),
        fx32=2**32 - 1, fx64=2**64 - 1, sfx32=-(2**31), sfx64=2**63 - 1, fl=F32_MAX,
        db=2.2250738585072014e-308, text="ü" * 150, data=bytes(range(256)) * 2, color=7,
        numbers=list(range(-8, 12)), names=["x" * 40], maybe_int=-(2**31), wrapped_int=2**31 - 1,
    ),
    "everything_choice_text": e.Everything(choice_text="t"),
    "everything_choice_number": e.Everything(choice_number=-4),
    "everything_choice_data": e.Everything(choice_data=b"\x07"),
    "everything_choice_inner": e.Everything(choice_inner=e.Inner()),
    "everything_at_timestamp32": e.Everything(at=msgpack.Timestamp(1_700_000_000, 0)),
    "everything_at_timestamp64": e.Everything(at=msgpack.Timestamp(1_700_000_000, 500_000_000)),
    "everything_at_timestamp96": e.Everything(at=msgpack.Timestamp(-1, 999_999_900)),
}


def rust_everything() -> None:
    table = rust_vectors("everything")
    expect(sorted(table) == sorted(EVERYTHING_EXPECTED), f"vector names {sorted(table)}")
    for name, expected in EVERYTHING_EXPECTED.items():
        data = table[name]
        decoded = e.Everything.from_msgpack(data)
        expect(decoded == expected, f"{name}: decoded {decoded!r}")
        again = decoded.to_msgpack()
        expect(again == data, f"{name}: re-encoded {again.hex()} != {data.hex()}")


# (decode, encode, expected value) per vector of example-app/tests/vectors.rs: requests through
# the generated client's serializers (what grpcio sends), responses through its deserializers.
Codec = Tuple[Callable[[bytes], Any], Callable[[Any], bytes], Any]


def _int_value(data: bytes) -> int:
    return d._int(d._unpack(data))


def _add_args(data: bytes) -> Tuple[int, int]:
    items = d._list(d._unpack(data))
    expect(len(items) == 2, f"Add takes 2 arguments, got {items!r}")
    return (d._int(items[0]), d._int(items[1]))


def _int_bytes(value: int) -> bytes:
    w = d._Writer()
    w.value(value)
    return w.bytes()


CALCULATOR_EXPECTED: Dict[str, Codec] = {
    "add_request": (_add_args, d._calculator_add_request, (40, 2)),
    "add_request_negative": (_add_args, d._calculator_add_request, (-1, -300)),
    "add_request_extremes": (_add_args, d._calculator_add_request, (-(2**63), 2**63 - 1)),
    "add_response": (d._calculator_add_response, _int_bytes, 42),
    "add_response_min": (d._calculator_add_response, _int_bytes, -(2**63)),
    "sum_request_1": (_int_value, d._calculator_sum_request, 1),
    "sum_request_negative": (_int_value, d._calculator_sum_request, -129),
    "sum_request_max": (_int_value, d._calculator_sum_request, 2**63 - 1),
    "sum_response": (d._calculator_sum_response, _int_bytes, 1 << 40),
    "countdown_request": (_int_value, d._calculator_countdown_request, 3),
    "countdown_request_max": (_int_value, d._calculator_countdown_request, 2**32 - 1),
    "countdown_response_0": (d._calculator_countdown_response, _int_bytes, 0),
    "countdown_response_200": (d._calculator_countdown_response, _int_bytes, 200),
    "running_total_request": (_int_value, d._calculator_running_total_request, -7),
    "running_total_request_big": (_int_value, d._calculator_running_total_request, 1 << 35),
    "running_total_response": (d._calculator_running_total_response, _int_bytes, 65_536),
    "ping_request": (lambda data: d.NIL if d._unpack(data) is None else data, d._calculator_ping_request, d.NIL),
    "ping_response": (d._calculator_ping_response, d._calculator_ping_request, d.NIL),
    "hello_request": (d.HelloRequest.from_msgpack, d.HelloRequest.to_msgpack, d.HelloRequest(name="Ada", count=3)),
    "hello_request_default": (d.HelloRequest.from_msgpack, d.HelloRequest.to_msgpack, d.HelloRequest()),
    "hello_reply": (
        d.HelloReply.from_msgpack,
        d.HelloReply.to_msgpack,
        d.HelloReply(message="Hello, Ada!", index=2, at=msgpack.Timestamp(1_700_000_000, 500_000_000)),
    ),
    "hello_reply_unset_at": (d.HelloReply.from_msgpack, d.HelloReply.to_msgpack, d.HelloReply(message="Hello, Bo!")),
}


def rust_calculator() -> None:
    table = rust_vectors("calculator")
    expect(sorted(table) == sorted(CALCULATOR_EXPECTED), f"vector names {sorted(table)}")
    for name, (decode, encode, expected) in CALCULATOR_EXPECTED.items():
        data = table[name]
        decoded = decode(data)
        expect(decoded == expected, f"{name}: decoded {decoded!r}, expected {expected!r}")
        again = encode(decoded)
        expect(again == data, f"{name}: re-encoded {again.hex()} != {data.hex()}")


# The Rust side's bytes of this value (tests/proto-e2e/tests/wire.rs, rule4_named_build): the
# named layout writes the fields, then of the oneof only the member that is set.
NAMED_PROFILE_RUST = bytes.fromhex(
    "84 ab 64 69 73 70 6c 61 79 4e 61 6d 65 a3 41 6e 6e aa 6c 6f 67 69 6e 43 6f 75 6e 74 02"
    " a7 66 61 72 41 77 61 79 03 a9 61 76 61 74 61 72 50 6e 67 c4 01 01"
)


def named_oneof() -> None:
    value = n.Profile(display_name="Ann", login_count=2, avatar_png=b"\x01", far_away=3)
    data = value.to_msgpack()
    expect(data == NAMED_PROFILE_RUST, f"named Profile: {data.hex()} != {NAMED_PROFILE_RUST.hex()}")
    decoded = n.Profile.from_msgpack(NAMED_PROFILE_RUST)
    expect(decoded == value, f"named Profile decoded {decoded!r}")
    unset = n.Profile(display_name="Bo").to_msgpack()
    expect(msgpack.unpackb(unset) == {"displayName": "Bo", "loginCount": 0, "farAway": 0},
           f"no oneof member set: {unset.hex()}")


def main() -> int:
    check("everything.proto: every field kind round trip", everything_round_trip)
    check("MessagePack-CSharp / MagicOnion vector bytes", vector_bytes)
    check("Rust bytes: every field kind of everything.proto (interop/vectors)", rust_everything)
    check("Rust bytes: every Calculator method, Greeter messages (interop/vectors)", rust_calculator)
    check("Rust bytes: named layout, a oneof member set and none (named.proto)", named_oneof)
    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} generated {name}{'' if ok else ': ' + detail}")
        failed += 0 if ok else 1
    print(f"generated (offline): {len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
