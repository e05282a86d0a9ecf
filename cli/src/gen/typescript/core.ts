import {
  Decoder,
  Encoder,
  ExtData,
  ExtensionCodec,
  decodeTimestampToTimeSpec,
  encodeTimeSpecToTimestamp,
} from "@msgpack/msgpack";

/**
 * `google.protobuf.Timestamp` (and `tonic_msgpack::wkt::Timestamp`): the MessagePack timestamp
 * extension (-1), exact to the nanosecond. `nanos` is 0..999,999,999, also before 1970.
 */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** A `Timestamp` from a `Date` (millisecond precision). */
export function timestampFromDate(date: Date): Timestamp {
  const millis = date.getTime();
  const seconds = Math.floor(millis / 1000);
  return { seconds, nanos: (millis - seconds * 1000) * 1_000_000 };
}

/** A `Date` from a `Timestamp` (the nanoseconds below a millisecond are dropped). */
export function timestampToDate(timestamp: Timestamp): Date {
  return new Date(timestamp.seconds * 1000 + Math.floor(timestamp.nanos / 1_000_000));
}

/** `google.protobuf.Duration` (and `tonic_msgpack::wkt::Duration`): `[seconds, nanos]`. */
export interface Duration {
  seconds: number;
  nanos: number;
}

/** Encoding and decoding of one message type. */
export interface MessageType<T> {
  /** A value with every field unset: what the decoder gives for missing fields. */
  create(init?: Partial<T>): T;
  /** The MessagePack bytes of `value`. */
  encode(value: T): Uint8Array;
  /** Exactly one MessagePack value to `T`; throws on malformed input or trailing bytes. */
  decode(data: Uint8Array): T;
  /** Writes `value` into a `Writer` (nested use). */
  write(w: Writer, value: T): void;
  /** Reads an already decoded MessagePack value (nested use). */
  read(value: unknown): T;
}

/** The path and codec of one method: both directions, for clients and servers. */
export interface MethodCodec<Req, Res> {
  /** `/package.Service/Method`. */
  readonly path: string;
  encodeRequest(request: Req): Uint8Array;
  decodeRequest(data: Uint8Array): Req;
  encodeResponse(response: Res): Uint8Array;
  decodeResponse(data: Uint8Array): Res;
}

function method<Req, Res>(
  path: string,
  writeRequest: (w: Writer, request: Req) => void,
  readRequest: (value: unknown) => Req,
  writeResponse: (w: Writer, response: Res) => void,
  readResponse: (value: unknown) => Res,
): MethodCodec<Req, Res> {
  const encode = <T>(write: (w: Writer, value: T) => void, value: T): Uint8Array => {
    const w = new Writer();
    write(w, value);
    return w.finish();
  };
  return {
    path,
    encodeRequest: (request) => encode(writeRequest, request),
    decodeRequest: (data) => readRequest(unpack(data)),
    encodeResponse: (response) => encode(writeResponse, response),
    decodeResponse: (data) => readResponse(unpack(data)),
  };
}

// One encoder per leaf flavour: @msgpack/msgpack picks the smallest integer form for safe
// integers (as rmp-serde does), float64 or float32 where told, int64/uint64 for bigints.
const plainEncoder = new Encoder();
const bigEncoder = new Encoder({ useBigInt64: true });
const float64Encoder = new Encoder({ forceIntegerToFloat: true });
const float32Encoder = new Encoder({ forceIntegerToFloat: true, forceFloat32: true });
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/** Writes one MessagePack value piece by piece, with the widths the schema declares. */
export class Writer {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private header(length: number, fix: number, code16: number, code32: number): void {
    if (length < 16) {
      this.push(Uint8Array.of(fix | length));
    } else if (length < 0x10000) {
      this.push(Uint8Array.of(code16, length >> 8, length & 0xff));
    } else {
      const bytes = new Uint8Array(5);
      bytes[0] = code32;
      new DataView(bytes.buffer).setUint32(1, length);
      this.push(bytes);
    }
  }

  array(length: number): void {
    this.header(length, 0x90, 0xdc, 0xdd);
  }

  map(length: number): void {
    this.header(length, 0x80, 0xde, 0xdf);
  }

  nil(): void {
    this.push(Uint8Array.of(0xc0));
  }

  bool(value: boolean): void {
    this.push(Uint8Array.of(value ? 0xc3 : 0xc2));
  }

  /** An integer of up to 32 bits (or any safe integer). */
  int(value: number): void {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`expected an integer, got ${value}`);
    }
    this.push(plainEncoder.encode(value));
  }

  /** A 64-bit integer (int64 or uint64 range), in its smallest form. */
  int64(value: bigint): void {
    if (value < MIN_INT64 || value > MAX_UINT64) {
      // DataView would wrap it silently.
      throw new RangeError(`${value} does not fit 64 bits`);
    }
    if (value >= MIN_SAFE && value <= MAX_SAFE) {
      this.push(plainEncoder.encode(Number(value)));
    } else {
      this.push(bigEncoder.encode(value));
    }
  }

  float32(value: number): void {
    this.push(float32Encoder.encode(value));
  }

  float64(value: number): void {
    this.push(float64Encoder.encode(value));
  }

  string(value: string): void {
    this.push(plainEncoder.encode(value));
  }

  bytes(value: Uint8Array): void {
    this.push(plainEncoder.encode(value));
  }

  timestamp(value: Timestamp): void {
    const payload = encodeTimeSpecToTimestamp({ sec: value.seconds, nsec: value.nanos });
    this.push(plainEncoder.encode(new ExtData(-1, payload)));
  }

  /** A value the contract does not describe, as @msgpack/msgpack encodes it. */
  any(value: unknown): void {
    this.push(bigEncoder.encode(value));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

/** A decoded timestamp extension (kept apart from other objects while reading). */
class DecodedTimestamp {
  constructor(
    readonly seconds: number,
    readonly nanos: number,
  ) {}
}

const extensions = new ExtensionCodec();
extensions.register({
  type: -1,
  encode: () => null,
  decode: (data: Uint8Array) => {
    const spec = decodeTimestampToTimeSpec(data);
    return new DecodedTimestamp(spec.sec, spec.nsec);
  },
});

// Map keys other than strings and numbers (bool, uint64) are kept as their text; the
// readers turn keys back into the declared key type.
const decoder = new Decoder({
  useBigInt64: true,
  extensionCodec: extensions,
  mapKeyConverter: (key: unknown): string | number =>
    typeof key === "string" || typeof key === "number" ? key : String(key),
});

/** Exactly one MessagePack value (wire format rule 2); throws on trailing bytes. */
export function unpack(data: Uint8Array): unknown {
  if (data.length === 0) {
    throw new Error("expected one MessagePack value, got an empty message");
  }
  return decoder.decode(data);
}

function describe(value: unknown): string {
  if (value === null) {
    return "nil";
  }
  if (value instanceof Uint8Array) {
    return `bin (${value.length} bytes)`;
  }
  if (Array.isArray(value)) {
    return `an array of ${value.length}`;
  }
  return typeof value === "object" ? "a map" : `${typeof value} ${String(value)}`;
}

/** Field access by number (array) or key (map); nil or a missing field is `undefined`. */
function fields(value: unknown): (index: number, key: string) => unknown {
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    return (index) => items[index];
  }
  if (value === null || value === undefined) {
    return () => undefined;
  }
  if (typeof value === "object" && !(value instanceof Uint8Array) && !(value instanceof DecodedTimestamp)) {
    const entries = value as Record<string, unknown>;
    return (_index, key) => (Object.prototype.hasOwnProperty.call(entries, key) ? entries[key] : undefined);
  }
  throw new TypeError(`expected a message (array, map or nil), got ${describe(value)}`);
}

function isNil(value: unknown): value is null | undefined {
  return value === null || value === undefined;
}

function asInt(value: unknown): number {
  if (isNil(value)) {
    return 0;
  }
  if (typeof value === "number" && Number.isInteger(value)) {
    return value;
  }
  if (typeof value === "bigint" && value >= MIN_SAFE && value <= MAX_SAFE) {
    return Number(value);
  }
  throw new TypeError(`expected an integer, got ${describe(value)}`);
}

function asInt64(value: unknown): bigint {
  if (isNil(value)) {
    return 0n;
  }
  if (typeof value === "bigint") {
    return value;
  }
  if (typeof value === "number" && Number.isInteger(value)) {
    return BigInt(value);
  }
  throw new TypeError(`expected an integer, got ${describe(value)}`);
}

function asFloat(value: unknown): number {
  if (isNil(value)) {
    return 0;
  }
  if (typeof value === "number") {
    return value;
  }
  if (typeof value === "bigint") {
    return Number(value);
  }
  throw new TypeError(`expected a float, got ${describe(value)}`);
}

function asBool(value: unknown): boolean {
  if (isNil(value)) {
    return false;
  }
  if (typeof value === "boolean") {
    return value;
  }
  throw new TypeError(`expected a bool, got ${describe(value)}`);
}

function asString(value: unknown): string {
  if (isNil(value)) {
    return "";
  }
  if (typeof value === "string") {
    return value;
  }
  throw new TypeError(`expected a string, got ${describe(value)}`);
}

function asBytes(value: unknown): Uint8Array {
  if (isNil(value)) {
    return new Uint8Array(0);
  }
  if (value instanceof Uint8Array) {
    // A copy: the decoder's views share the whole input buffer.
    return Uint8Array.from(value);
  }
  throw new TypeError(`expected bytes (bin), got ${describe(value)}`);
}

function asList(value: unknown): unknown[] {
  if (isNil(value)) {
    return [];
  }
  if (Array.isArray(value)) {
    return value;
  }
  throw new TypeError(`expected an array, got ${describe(value)}`);
}

function asEntries(value: unknown): [string, unknown][] {
  if (isNil(value)) {
    return [];
  }
  if (typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof DecodedTimestamp)) {
    return Object.entries(value as Record<string, unknown>);
  }
  throw new TypeError(`expected a map, got ${describe(value)}`);
}

/** A map key read back from its text (the decoder keys maps by string). */
function keyNumber(key: string): number {
  return asInt(Number(key));
}

function keyBigInt(key: string): bigint {
  try {
    return BigInt(key);
  } catch {
    throw new TypeError(`expected an integer map key, got ${key}`);
  }
}

function keyBool(key: string): boolean {
  if (key === "true" || key === "false") {
    return key === "true";
  }
  throw new TypeError(`expected a bool map key, got ${key}`);
}

function asTimestamp(value: unknown): Timestamp {
  if (isNil(value)) {
    return { seconds: 0, nanos: 0 };
  }
  if (value instanceof DecodedTimestamp) {
    return { seconds: value.seconds, nanos: value.nanos };
  }
  throw new TypeError(`expected a timestamp (ext -1), got ${describe(value)}`);
}

/** `google.protobuf.Duration`: `[seconds, nanos]`. */
export const Duration: MessageType<Duration> = {
  create(init: Partial<Duration> = {}): Duration {
    return { seconds: 0, nanos: 0, ...init };
  },
  encode(value: Duration): Uint8Array {
    const w = new Writer();
    Duration.write(w, value);
    return w.finish();
  },
  decode(data: Uint8Array): Duration {
    return Duration.read(unpack(data));
  },
  write(w: Writer, value: Duration): void {
    w.array(2);
    w.int(value.seconds);
    w.int(value.nanos);
  },
  read(value: unknown): Duration {
    const get = fields(value);
    return { seconds: asInt(get(0, "seconds")), nanos: asInt(get(1, "nanos")) };
  },
};
