#!/usr/bin/env python3
"""Offline checks of `tonic-msgpack gen python` output (no server needed).

    python generated_roundtrip.py

Uses the golden modules in cli/tests/data/gen/python/: `everything.py` (every field kind
of tests/proto-e2e's everything.proto) must encode a value with every field set to the
compact layout (42 slots, the reserved number nil) and decode it back to an equal value and
the same bytes; `vectors.py` must write the bytes of MessagePack-CSharp's and MagicOnion's
vectors (cli/tests/data/gen/csharp-vectors.json). Exit code 0 when all passed.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "cli", "tests", "data", "gen", "python"))

import msgpack  # noqa: E402

import everything as e  # noqa: E402
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


def main() -> int:
    check("everything.proto: every field kind round trip", everything_round_trip)
    check("MessagePack-CSharp / MagicOnion vector bytes", vector_bytes)
    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} generated {name}{'' if ok else ': ' + detail}")
        failed += 0 if ok else 1
    print(f"generated (offline): {len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
