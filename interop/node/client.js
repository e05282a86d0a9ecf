#!/usr/bin/env node
// Node (@grpc/grpc-js + @msgpack/msgpack) interop client for the tonic-msgpack
// example services.
//
//   node client.js [ADDRESS] [--label NAME]
//
// ADDRESS is host:port (an `http://` prefix is accepted); default $INTEROP_ADDR
// or 127.0.0.1:50051. It may be the gateway or the services' own port. Calls
// every kind of demo.v1.Greeter (proto service, compact layout) and every method
// of demo.v1.Calculator (trait service), checks values, byte layout and status
// codes, prints one line per check and a closing `N passed, N failed` line.
// Exit code 0 when all passed, 1 otherwise.
//
// Wire format v1: each gRPC message is one MessagePack value. HelloRequest is
// [name, count], HelloReply is [message, index, at] with `at` the MessagePack
// timestamp extension (-1, decoded to a JS Date). Calculator arguments: two or
// more -> an array, one -> the bare value, none -> nil; `()` result -> nil.
'use strict';

const grpc = require('@grpc/grpc-js');
const { encode, decode } = require('@msgpack/msgpack');

const DEADLINE_MS = 10_000;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const S = grpc.status;

// ------------------------------------------------------------------ codec

// grpc-js treats a deserialized null as "no message" (a unary call then fails
// with "No message received"), so a MessagePack nil payload is this sentinel.
const NIL = Object.freeze({ toString: () => 'NIL' });

// useBigInt64: int64/uint64 on the wire decode to BigInt (exact for i64::MAX),
// and BigInt values encode as int64/uint64. Plain numbers outside 32 bits would
// be written as float64 in this mode, so `toWire` turns them into BigInt first,
// and BigInts that fit 32 bits into numbers: the result is the smallest int.
const CODEC = { useBigInt64: true };

function toWire(v) {
  if (v === NIL || v === undefined) return null;
  if (typeof v === 'number' && Number.isInteger(v) && (v >= 2 ** 32 || v < -(2 ** 31))) return BigInt(v);
  if (typeof v === 'bigint' && v < 2n ** 32n && v >= -(2n ** 31n)) return Number(v);
  if (Array.isArray(v)) return v.map(toWire);
  return v;
}

// Decoded integers: BigInt that fits a safe JS integer -> number, else stays BigInt.
function fromWire(v) {
  if (v === null) return null;
  if (typeof v === 'bigint') {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }
  if (Array.isArray(v)) return v.map(fromWire);
  return v;
}

function toBuffer(u8) {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

function pack(value) {
  return toBuffer(encode(toWire(value), CODEC));
}

// Exactly one value: @msgpack/msgpack's decode throws on malformed input and on
// trailing bytes; an empty frame is an error too.
function unpack(buf) {
  if (buf.length === 0) throw new Error('empty frame');
  const v = fromWire(decode(buf, CODEC));
  return v === null ? NIL : v;
}

const raw = (b) => b;

// ------------------------------------------------------------------ services

function method(path, requestStream, responseStream, isRaw) {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: isRaw ? raw : pack,
    responseDeserialize: isRaw ? raw : unpack,
    requestDeserialize: isRaw ? raw : unpack,
    responseSerialize: isRaw ? raw : pack,
  };
}

const greeterDef = {
  SayHello: method('/demo.v1.Greeter/SayHello', false, false),
  StreamGreetings: method('/demo.v1.Greeter/StreamGreetings', false, true),
  CollectNames: method('/demo.v1.Greeter/CollectNames', true, false),
  Chat: method('/demo.v1.Greeter/Chat', true, true),
  SayHelloRaw: method('/demo.v1.Greeter/SayHello', false, false, true),
  ChatRaw: method('/demo.v1.Greeter/Chat', true, true, true),
};

const calculatorDef = {
  Add: method('/demo.v1.Calculator/Add', false, false),
  Sum: method('/demo.v1.Calculator/Sum', true, false),
  Countdown: method('/demo.v1.Calculator/Countdown', false, true),
  RunningTotal: method('/demo.v1.Calculator/RunningTotal', true, true),
  Ping: method('/demo.v1.Calculator/Ping', false, false),
  AddRaw: method('/demo.v1.Calculator/Add', false, false, true),
  PingRaw: method('/demo.v1.Calculator/Ping', false, false, true),
  SumRaw: method('/demo.v1.Calculator/Sum', true, false, true),
};

const Greeter = grpc.makeGenericClientConstructor(greeterDef, 'demo.v1.Greeter');
const Calculator = grpc.makeGenericClientConstructor(calculatorDef, 'demo.v1.Calculator');

// ------------------------------------------------------------------ call helpers

const opts = () => ({ deadline: Date.now() + DEADLINE_MS });

function unary(client, name, arg) {
  return new Promise((resolve, reject) => {
    client[name](arg, opts(), (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const items = [];
    stream.on('data', (m) => items.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

function serverStream(client, name, arg) {
  return readAll(client[name](arg, opts()));
}

function clientStream(client, name, args) {
  return new Promise((resolve, reject) => {
    const call = client[name](opts(), (err, res) => (err ? reject(err) : resolve(res)));
    for (const a of args) call.write(a);
    call.end();
  });
}

function bidi(client, name, args) {
  const call = client[name](opts());
  const done = readAll(call);
  for (const a of args) call.write(a);
  call.end();
  return done;
}

// Any path, raw bytes in and out, through the plain Client API.
function rawUnary(client, path, bytes) {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, raw, raw, bytes, new grpc.Metadata(), opts(), (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

// ------------------------------------------------------------------ assertions

class CheckFailed extends Error {}

function show(v) {
  if (v === NIL) return 'NIL';
  if (Buffer.isBuffer(v)) return `<${v.toString('hex')}>`;
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
}

function same(a, b) {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return show(a) === show(b) && typeof a === typeof b;
}

function expect(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

function expectEq(got, want, what = 'value') {
  if (!same(got, want)) throw new CheckFailed(`${what}: got ${show(got)}, want ${show(want)}`);
}

async function expectStatus(code, promise) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    if (typeof e.code !== 'number') throw e;
    if (e.code !== code) {
      throw new CheckFailed(`status: got ${S[e.code]} (${e.details}), want ${S[code]}`);
    }
    return;
  }
  throw new CheckFailed(`expected status ${S[code]}, the call succeeded`);
}

function checkReply(reply, message, index) {
  expect(Array.isArray(reply), `HelloReply must be a compact array, got ${show(reply)}`);
  expectEq(reply.length, 3, 'HelloReply array length (highest field number)');
  expectEq(reply[0], message, 'HelloReply.message');
  expectEq(reply[1], index, 'HelloReply.index');
  const at = reply[2];
  expect(at instanceof Date, `HelloReply.at must be the MessagePack timestamp ext -1, got ${show(at)}`);
  const skew = Math.abs(at.getTime() - Date.now()) / 1000;
  expect(skew < 60, `HelloReply.at is ${skew.toFixed(1)}s away from now`);
}

// fixarray(3), str, smallest int, ext -1 (timestamp 32 / 64 / 96).
function checkReplyBytes(b, index) {
  expectEq(b[0], 0x93, 'first byte (fixarray of 3)');
  let pos = 1;
  const m = b[pos];
  if (m >= 0xa0 && m <= 0xbf) pos += 1 + (m - 0xa0);
  else if (m === 0xd9) pos += 2 + b[pos + 1];
  else if (m === 0xda) pos += 3 + b.readUInt16BE(pos + 1);
  else if (m === 0xdb) pos += 5 + b.readUInt32BE(pos + 1);
  else throw new CheckFailed(`expected a str at byte 1, found 0x${m.toString(16)}`);
  const wantIndex = pack(index);
  expectEq(b.subarray(pos, pos + wantIndex.length), wantIndex, 'index encoding (smallest int)');
  const ts = b.subarray(pos + wantIndex.length);
  const hex = ts.toString('hex');
  const ok =
    (hex.startsWith('d6ff') && ts.length === 6) ||
    (hex.startsWith('d7ff') && ts.length === 10) ||
    (hex.startsWith('c70cff') && ts.length === 15);
  expect(ok, `\`at\` must be ext -1 (fixext4/fixext8/ext8 len 12), got ${hex}`);
}

// ------------------------------------------------------------------ the suite

async function main() {
  const argv = process.argv.slice(2);
  let label = null;
  const li = argv.indexOf('--label');
  if (li >= 0) {
    label = argv[li + 1];
    argv.splice(li, 2);
  }
  let address = argv[0] || process.env.INTEROP_ADDR || '127.0.0.1:50051';
  address = address.replace(/^(http|grpc):\/\//, '').replace(/\/$/, '');
  label = label || `node@${address}`;

  const creds = grpc.credentials.createInsecure();
  const greeter = new Greeter(address, creds);
  const calc = new Calculator(address, creds);
  let passed = 0;
  let failed = 0;

  async function check(name, fn) {
    try {
      await fn();
      passed += 1;
      console.log(`ok   [${label}] ${name}`);
    } catch (e) {
      failed += 1;
      if (e instanceof CheckFailed) console.log(`FAIL [${label}] ${name}: ${e.message}`);
      else if (typeof e.code === 'number') console.log(`FAIL [${label}] ${name}: unexpected status ${S[e.code]}: ${e.details}`);
      else console.log(`FAIL [${label}] ${name}: ${e && e.stack ? e.stack : e}`);
    }
  }

  try {
    await new Promise((resolve, reject) =>
      greeter.waitForReady(Date.now() + DEADLINE_MS, (err) => (err ? reject(err) : resolve())),
    );
  } catch (e) {
    console.log(`FAIL [${label}] cannot connect to ${address} within ${DEADLINE_MS / 1000}s: ${e.message}`);
    return 1;
  }

  const hello = (name, count = 0) => [name, count];
  const INVALID = S.INVALID_ARGUMENT;

  // ---------------------------------------------------------------- Greeter
  await check('Greeter.SayHello', async () => checkReply(await unary(greeter, 'SayHello', hello('Ann')), 'Hello, Ann!', 0));
  await check('Greeter.SayHello reply bytes: [str, 0, ext -1]', async () =>
    checkReplyBytes(await unary(greeter, 'SayHelloRaw', pack(['Ann', 0])), 0),
  );
  await check('Greeter.SayHello request bytes are the compact array', async () =>
    expectEq(pack(hello('Ann', 2)), Buffer.from('92a3416e6e02', 'hex'), 'HelloRequest bytes'),
  );
  await check('Greeter.SayHello non-ASCII name', async () =>
    checkReply(await unary(greeter, 'SayHello', hello('Zoë 世界')), 'Hello, Zoë 世界!', 0),
  );
  await check('Greeter.SayHello shorter array [name]', async () =>
    checkReply(await unary(greeter, 'SayHello', ['Bob']), 'Hello, Bob!', 0),
  );
  await check('Greeter.SayHello nil field [name, nil]', async () =>
    checkReply(await unary(greeter, 'SayHello', ['Bob', null]), 'Hello, Bob!', 0),
  );
  await check('Greeter.SayHello longer array [name, count, extra]', async () =>
    checkReply(await unary(greeter, 'SayHello', ['Bob', 1, 'extra']), 'Hello, Bob!', 0),
  );
  await check('Greeter.SayHello empty name -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, unary(greeter, 'SayHello', hello(''))),
  );
  await check('Greeter.StreamGreetings count=3', async () => {
    const replies = await serverStream(greeter, 'StreamGreetings', hello('Ann', 3));
    expectEq(replies.length, 3, 'number of replies');
    replies.forEach((r, i) => checkReply(r, 'Hello, Ann!', i));
  });
  await check('Greeter.StreamGreetings count=0', async () =>
    expectEq(await serverStream(greeter, 'StreamGreetings', hello('Ann', 0)), [], 'replies'),
  );
  await check('Greeter.StreamGreetings count=1000 (the limit)', async () => {
    const replies = await serverStream(greeter, 'StreamGreetings', hello('Max', 1000));
    expectEq(replies.length, 1000, 'number of replies');
    checkReply(replies[999], 'Hello, Max!', 999);
  });
  await check('Greeter.StreamGreetings count=1001 -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, serverStream(greeter, 'StreamGreetings', hello('Ann', 1001))),
  );
  await check('Greeter.CollectNames', async () =>
    checkReply(await clientStream(greeter, 'CollectNames', ['Ann', 'Bob', 'Cy'].map((n) => hello(n))), 'Ann, Bob, Cy', 3),
  );
  await check('Greeter.CollectNames empty stream', async () =>
    checkReply(await clientStream(greeter, 'CollectNames', []), '', 0),
  );
  await check('Greeter.CollectNames empty name -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, clientStream(greeter, 'CollectNames', [hello('Ann'), hello('')])),
  );
  await check('Greeter.Chat', async () => {
    const names = ['Ann', 'Bob', 'Cy'];
    const replies = await bidi(greeter, 'Chat', names.map((n) => hello(n)));
    expectEq(replies.length, 3, 'number of replies');
    replies.forEach((r, i) => checkReply(r, `Hello, ${names[i]}!`, i));
  });
  await check('Greeter.Chat interleaved (reply before next request)', async () => {
    // One request, then wait for its reply before writing the next: replies must
    // flow before the client half-closes (no buffering on the way).
    const call = greeter.Chat(opts());
    const inbox = [];
    const waiters = [];
    let failure = null;
    let ended = false;
    const wake = () => {
      while (waiters.length) waiters.shift()();
    };
    call.on('data', (m) => {
      inbox.push(m);
      wake();
    });
    call.on('error', (e) => {
      failure = e;
      wake();
    });
    call.on('end', () => {
      ended = true;
      wake();
    });
    const next = async () => {
      while (!inbox.length && !failure && !ended) await new Promise((r) => waiters.push(r));
      if (inbox.length) return inbox.shift();
      if (failure) throw failure;
      throw new CheckFailed('stream ended before the reply');
    };
    const names = ['Ann', 'Bob', 'Cy'];
    try {
      for (let i = 0; i < names.length; i += 1) {
        call.write(hello(names[i]));
        checkReply(await next(), `Hello, ${names[i]}!`, i);
      }
      call.end();
      while (!ended && !failure) await new Promise((r) => waiters.push(r));
      if (failure) throw failure;
      expectEq(inbox, [], 'replies after half-close');
    } finally {
      if (!ended && !failure) call.cancel();
    }
  });
  await check('Greeter.Chat empty name -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, bidi(greeter, 'Chat', [hello('Ann'), hello('')])),
  );

  // ---------------------------------------------------------------- Calculator
  await check('Calculator.Add(2, 3)', async () => expectEq(await unary(calc, 'Add', [2, 3]), 5));
  await check('Calculator.Add bytes: [2, 3] -> 0x05', async () =>
    expectEq(await unary(calc, 'AddRaw', Buffer.from([0x92, 0x02, 0x03])), Buffer.from([0x05]), 'response bytes'),
  );
  await check('Calculator.Add(-3, -4)', async () => expectEq(await unary(calc, 'Add', [-3, -4]), -7));
  await check('Calculator.Add(2**62, 2**62 - 1) = i64::MAX', async () =>
    expectEq(await unary(calc, 'Add', [2n ** 62n, 2n ** 62n - 1n]), I64_MAX),
  );
  await check('Calculator.Add(-2**63, 0) = i64::MIN', async () =>
    expectEq(await unary(calc, 'Add', [I64_MIN, 0]), I64_MIN),
  );
  await check('Calculator.Add(i64::MAX, 1) -> OUT_OF_RANGE', () =>
    expectStatus(S.OUT_OF_RANGE, unary(calc, 'Add', [I64_MAX, 1])),
  );
  await check('Calculator.Sum(1, 2, 3, 4)', async () => expectEq(await clientStream(calc, 'Sum', [1, 2, 3, 4]), 10));
  await check('Calculator.Sum() empty stream', async () => expectEq(await clientStream(calc, 'Sum', []), 0));
  await check('Calculator.Countdown(3)', async () => expectEq(await serverStream(calc, 'Countdown', 3), [3, 2, 1, 0]));
  await check('Calculator.Countdown(0)', async () => expectEq(await serverStream(calc, 'Countdown', 0), [0]));
  await check('Calculator.RunningTotal(1, 2, 3, -10)', async () =>
    expectEq(await bidi(calc, 'RunningTotal', [1, 2, 3, -10]), [1, 3, 6, -4]),
  );
  await check('Calculator.Ping(nil) -> nil', async () => expect((await unary(calc, 'Ping', NIL)) === NIL, 'reply must be nil'));
  await check('Calculator.Ping bytes: 0xc0 -> 0xc0', async () =>
    expectEq(await unary(calc, 'PingRaw', Buffer.from([0xc0])), Buffer.from([0xc0]), 'response bytes'),
  );

  // ---------------------------------------------------------------- error codes
  const sayFrames = [
    ['malformed 0xc1', Buffer.from([0xc1])],
    ['trailing bytes', Buffer.concat([pack(['Ann', 0]), Buffer.from([0x00])])],
    ['truncated value', pack(['Ann', 0]).subarray(0, 4)],
    ['empty frame', Buffer.alloc(0)],
    ['a string instead of the array', pack('Ann')],
  ];
  for (const [what, frame] of sayFrames) {
    await check(`Greeter.SayHello ${what} -> INVALID_ARGUMENT`, () => expectStatus(INVALID, unary(greeter, 'SayHelloRaw', frame)));
  }
  const addFrames = [
    ['malformed 0xc1', Buffer.from([0xc1])],
    ['trailing bytes', Buffer.concat([pack([1, 2]), Buffer.from([0xc0])])],
    ['a string instead of [a, b]', pack('2+3')],
  ];
  for (const [what, frame] of addFrames) {
    await check(`Calculator.Add ${what} -> INVALID_ARGUMENT`, () => expectStatus(INVALID, unary(calc, 'AddRaw', frame)));
  }
  await check('Calculator.Sum malformed 2nd frame -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, clientStream(calc, 'SumRaw', [pack(1), Buffer.from([0xc1]), pack(2)])),
  );
  await check('Greeter.Chat trailing bytes in 2nd frame -> INVALID_ARGUMENT', () =>
    expectStatus(INVALID, bidi(greeter, 'ChatRaw', [pack(['Ann']), Buffer.concat([pack(['Bob']), Buffer.from([0x01])])])),
  );
  for (const path of ['/demo.v1.Greeter/NoSuchMethod', '/demo.v1.Calculator/NoSuchMethod', '/demo.v1.NoSuchService/Call']) {
    await check(`${path} -> UNIMPLEMENTED`, () => expectStatus(S.UNIMPLEMENTED, rawUnary(greeter, path, Buffer.from([0xc0]))));
  }

  greeter.close();
  calc.close();
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e);
    process.exitCode = 1;
  },
);
