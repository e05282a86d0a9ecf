// Offline: bytes the Rust side wrote decode in the generated TypeScript to the values the Rust
// tests built, and encode back to the same bytes. The vectors are committed in
// interop/vectors/: everything.json (every field kind of tests/proto-e2e's everything.proto,
// written by tests/proto-e2e/tests/vectors.rs) and calculator.json (every Calculator method's
// request and response, the Greeter's messages; example-app/tests/vectors.rs).
//
//   node build/roundtrip.js
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as demo from "./generated/demo.js";
import * as e from "./generated/everything.js";
import * as named from "./generated/named.js";
import * as names from "./generated/names.js";
import * as vectors from "./generated/vectors.js";

const here = dirname(fileURLToPath(import.meta.url));
// build/roundtrip.js -> interop/vectors
const vectorsDir = join(here, "..", "..", "vectors");

interface Vector {
  name: string;
  hex: string;
}

function load(file: string): Map<string, Uint8Array> {
  const parsed = JSON.parse(readFileSync(join(vectorsDir, file), "utf8")) as { vectors: Vector[] };
  return new Map(parsed.vectors.map((v) => [v.name, Uint8Array.from(Buffer.from(v.hex, "hex"))]));
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

let passed = 0;
let failed = 0;
const used = new Set<string>();

function check(name: string, run: () => void): void {
  used.add(name);
  try {
    run();
    passed += 1;
    console.log(`ok   typescript round trip ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL typescript round trip ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Decodes `bytes` to `expected` and encodes that back to `bytes`. */
function roundTrip<T>(bytes: Uint8Array | undefined, decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array, expected: T): void {
  assert.ok(bytes !== undefined, "no such vector");
  const value = decode(bytes);
  assert.deepStrictEqual(value, expected);
  assert.equal(hex(encode(value)), hex(bytes), "re-encoded bytes");
  assert.equal(hex(encode(expected)), hex(bytes), "the expected value's bytes");
}

const u8 = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);
const at = (seconds: number, nanos: number): e.Everything => e.Everything.create({ at: { seconds, nanos } });

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;
const U32_MAX = 2 ** 32 - 1;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

function full(): e.Everything {
  return e.Everything.create({
    i32: -5,
    i64: 1n << 40n,
    u32: 200,
    u64: 123_456_789n,
    s32: -300,
    s64: -(1n << 33n),
    fx32: 7,
    fx64: 1n << 50n,
    sfx32: -1,
    sfx64: -(1n << 33n),
    fl: 1.5,
    db: -2.25,
    flag: true,
    text: "héllo",
    data: u8(0, 1, 255),
    color: e.Color.COLOR_GREEN,
    numbers: [1, -2, 300],
    names: ["a", ""],
    blobs: [u8(9), u8()],
    counts: new Map([["k", -7n]]),
    blobMap: new Map([[3, u8(4, 5)]]),
    inner: { name: "in", value: 2 },
    inners: [e.Inner.create(), { name: "x", value: -1 }],
    maybe: "",
    choiceInner: { name: "c", value: 1 },
    at: { seconds: 1_700_000_000, nanos: 5 },
    took: { seconds: 3, nanos: 500 },
    wrappedText: "w",
    wrappedInt: 0,
    price: { currency: "EUR", units: 12n, nanos: 340_000_000 },
    tree: {
      label: "root",
      children: [e.Tree.create({ label: "leaf" })],
      parent: e.Tree.create(),
    },
    deep: { ok: true },
    colors: [e.Color.COLOR_RED, e.Color.COLOR_UNSPECIFIED],
    innerMap: new Map([["m", e.Inner.create()]]),
    nothing: null,
    shared: new TextEncoder().encode("shared"),
    maybeInt: -9,
    wrappedBytes: u8(1),
  });
}

function extremes(): e.Everything {
  const data = new Uint8Array(512);
  data.forEach((_, i) => (data[i] = i % 256));
  return e.Everything.create({
    i32: I32_MIN,
    i64: I64_MAX,
    u32: U32_MAX,
    u64: U64_MAX,
    s32: I32_MAX,
    s64: I64_MIN,
    fx32: U32_MAX,
    fx64: U64_MAX,
    sfx32: I32_MIN,
    sfx64: I64_MAX,
    fl: 3.4028234663852886e38, // f32::MAX
    db: 2.2250738585072014e-308, // f64::MIN_POSITIVE
    text: "ü".repeat(150),
    data,
    color: 7, // unknown to the contract: kept as its number
    numbers: Array.from({ length: 20 }, (_, i) => i - 8),
    names: ["x".repeat(40)],
    maybeInt: I32_MIN,
    wrappedInt: I32_MAX,
  });
}

function everything(): void {
  const vectors = load("everything.json");
  const cases: [string, e.Everything][] = [
    ["everything_default", e.Everything.create()],
    ["everything_full", full()],
    ["everything_extremes", extremes()],
    ["everything_choice_text", e.Everything.create({ choiceText: "t" })],
    ["everything_choice_number", e.Everything.create({ choiceNumber: -4n })],
    ["everything_choice_data", e.Everything.create({ choiceData: u8(7) })],
    ["everything_choice_inner", e.Everything.create({ choiceInner: e.Inner.create() })],
    ["everything_at_timestamp32", at(1_700_000_000, 0)],
    ["everything_at_timestamp64", at(1_700_000_000, 500_000_000)],
    ["everything_at_timestamp96", at(-1, 999_999_900)],
  ];
  for (const [name, expected] of cases) {
    check(`everything.proto ${name}`, () =>
      roundTrip(vectors.get(name), e.Everything.decode, e.Everything.encode, expected),
    );
  }
  for (const name of vectors.keys()) {
    if (!used.has(`everything.proto ${name}`)) {
      check(`everything.proto ${name}`, () => assert.fail("a vector without an expected value here"));
    }
  }
}

function calculator(): void {
  const vectors = load("calculator.json");
  const m = demo.CalculatorMethods;
  const request = <Req, Res>(codec: demo.MethodCodec<Req, Res>, name: string, value: Req): void =>
    check(`Calculator ${name}`, () => roundTrip(vectors.get(name), codec.decodeRequest, codec.encodeRequest, value));
  const response = <Req, Res>(codec: demo.MethodCodec<Req, Res>, name: string, value: Res): void =>
    check(`Calculator ${name}`, () => roundTrip(vectors.get(name), codec.decodeResponse, codec.encodeResponse, value));
  request(m.add, "add_request", [40n, 2n]);
  request(m.add, "add_request_negative", [-1n, -300n]);
  request(m.add, "add_request_extremes", [I64_MIN, I64_MAX]);
  response(m.add, "add_response", 42n);
  response(m.add, "add_response_min", I64_MIN);
  request(m.sum, "sum_request_1", 1n);
  request(m.sum, "sum_request_negative", -129n);
  request(m.sum, "sum_request_max", I64_MAX);
  response(m.sum, "sum_response", 1n << 40n);
  request(m.countdown, "countdown_request", 3);
  request(m.countdown, "countdown_request_max", U32_MAX);
  response(m.countdown, "countdown_response_0", 0);
  response(m.countdown, "countdown_response_200", 200);
  request(m.runningTotal, "running_total_request", -7n);
  request(m.runningTotal, "running_total_request_big", 1n << 35n);
  response(m.runningTotal, "running_total_response", 65_536n);
  request(m.ping, "ping_request", null);
  response(m.ping, "ping_response", null);
  const message = <T>(type: demo.MessageType<T>, name: string, value: T): void =>
    check(`Greeter ${name}`, () => roundTrip(vectors.get(name), type.decode, type.encode, value));
  message(demo.HelloRequest, "hello_request", { name: "Ada", count: 3 });
  message(demo.HelloRequest, "hello_request_default", demo.HelloRequest.create());
  message(demo.HelloReply, "hello_reply", {
    message: "Hello, Ada!",
    index: 2,
    at: { seconds: 1_700_000_000, nanos: 500_000_000 },
  });
  message(demo.HelloReply, "hello_reply_unset_at", { message: "Hello, Bo!", index: 0, at: null });
  for (const name of vectors.keys()) {
    if (!used.has(`Calculator ${name}`) && !used.has(`Greeter ${name}`)) {
      check(`calculator.json ${name}`, () => assert.fail("a vector without an expected value here"));
    }
  }
}

function decoderRules(): void {
  check("nil and [] decode as the default; trailing bytes are refused", () => {
    assert.deepStrictEqual(e.Everything.decode(u8(0xc0)), e.Everything.create());
    assert.deepStrictEqual(e.Everything.decode(u8(0x90)), e.Everything.create());
    assert.throws(() => demo.HelloRequest.decode(u8(0x92, 0xa0, 0x00, 0x00)));
    assert.throws(() => demo.HelloRequest.decode(u8()));
    assert.throws(() => demo.HelloRequest.decode(u8(0x92, 0x01, 0x00)), /expected a string/);
    // Values the declared width cannot hold are refused, not wrapped.
    assert.throws(() => demo.CalculatorMethods.add.encodeRequest([2n ** 64n, 0n]), RangeError);
    assert.throws(() => demo.CalculatorMethods.countdown.encodeRequest(1.5), RangeError);
  });
  check("compact bytes by field number; a map is read by key as well", () => {
    const bytes = demo.HelloRequest.encode({ name: "n", count: 1 });
    assert.equal(hex(bytes), "92a16e01");
    assert.deepStrictEqual(demo.HelloRequest.decode(u8(0x82, 0xa5, ...Buffer.from("count"), 0x01, 0xa4, ...Buffer.from("name"), 0xa1, 0x6e)), {
      name: "n",
      count: 1,
    });
  });
}

function otherShapes(): void {
  check("bool and uint64 map keys, a message named Status", () => {
    const value = names.Response_.create({
      status: { code: 3, message: "m" },
      byFlag: new Map([
        [true, "t"],
        [false, "f"],
      ]),
      byId: new Map([[2n ** 64n - 1n, names.Status_.create({ code: 1 })]]),
      chunks: [u8(1)],
      kind: names.Kind.KIND_ONE,
    });
    const bytes = names.Response_.encode(value);
    assert.equal(hex(bytes), "959203a16d82c3a174c2a16681cfffffffffffffffff9201a091c4010101");
    assert.deepStrictEqual(names.Response_.decode(bytes), value);
  });
  check("named layout: of a oneof only the member that is set, as the Rust side writes it", () => {
    // tests/proto-e2e/tests/wire.rs, rule4_named_build: the Rust side's bytes of this value.
    const rust =
      "84ab646973706c61794e616d65a3416e6eaa6c6f67696e436f756e7402" +
      "a76661724177617903a9617661746172506e67c40101";
    const value = named.Profile.create({ displayName: "Ann", loginCount: 2, avatarPng: u8(1), farAway: 3n });
    assert.equal(hex(named.Profile.encode(value)), rust);
    assert.deepStrictEqual(named.Profile.decode(Buffer.from(rust, "hex")), value);
    const none = named.Profile.encode(named.Profile.create({ displayName: "Bo" }));
    assert.equal(hex(none), "83ab646973706c61794e616d65a2426faa6c6f67696e436f756e7400a76661724177617900");
  });
  check("MessagePack-CSharp / MagicOnion vector bytes (named keys, argument arrays)", () => {
    // The same cases as interop/python/generated_roundtrip.py, from cli/tests/data/gen/csharp-vectors.json.
    const path = join(here, "..", "..", "..", "cli", "tests", "data", "gen", "csharp-vectors.json");
    const table = new Map(
      (JSON.parse(readFileSync(path, "utf8")) as Vector[]).map((v) => [v.name, v.hex]),
    );
    const cases: [string, Uint8Array][] = [
      ["intkey_two_members_readme", vectors.TwoMembers.encode({ foo: 10, bar: 20 })],
      ["intkey_gap_readme", vectors.Gap.encode(vectors.Gap.create())],
      ["intkey_gap_key0_key2", vectors.GapC.encode(vectors.GapC.create({ a: 1, c: "x" }))],
      ["intkey_empty_class", vectors.Empty1.encode({})],
      ["intkey_one_default_int", vectors.MyObject.encode(vectors.MyObject.create())],
      ["intkey_record_single_member", vectors.MyObject.encode({ myProperty: 12345 })],
      ["strkey_readme", vectors.StrKey.encode({ foo: 10, bar: 20 })],
      ["keyAsPropertyName_readme", vectors.PascalKey.encode({ foo: 10 })],
      ["magiconion_two_args_request", vectors.IMagicMethods.twoParameters.encodeRequest([12345, "Hello"])],
      ["magiconion_zero_args_request", vectors.IMagicMethods.noParameters.encodeRequest(null)],
      [
        "magiconion_single_arg_list",
        vectors.IMagicMethods.builtInGeneric.encodeRequest([1, 2, 3, 4, 5].map((value) => ({ value }))),
      ],
    ];
    for (const [name, bytes] of cases) {
      assert.equal(hex(bytes), table.get(name), name);
    }
    const kinds = vectors.Kinds.decode(
      Buffer.from(
        ["94", "enum_int_backed_value_2", "bytes_1_2_3", "nullable_int_value", "dt_2010_12_01_030457_123"]
          .map((name) => (name === "94" ? name : table.get(name) ?? assert.fail(name)))
          .join(""),
        "hex",
      ),
    );
    assert.deepStrictEqual(kinds, {
      value: vectors.MyEnumValue.C,
      data: u8(1, 2, 3),
      maybe: 100,
      at: { seconds: 1291172697, nanos: 123000000 },
    });
  });
}

everything();
calculator();
decoderRules();
otherShapes();
console.log(`typescript round trip: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
