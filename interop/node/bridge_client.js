#!/usr/bin/env node
// A stock protobuf client against tonic-msgpack's protobuf bridge.
//
//   node bridge_client.js HOST:PORT [--label NAME]
//
// @grpc/grpc-js with @grpc/proto-loader loading example-app/proto/demo/v1/greeter.proto
// (ordinary protobuf, nothing MessagePack on this side) calls all four Greeter kinds
// through the gateway's bridge listener ([protobuf_bridge] listen); the MessagePack
// Greeter behind it answers. Also: metadata reaches the service and the status of a
// failed call comes back untouched. Prints one line per check and a closing
// `N passed, N failed` line; exit code 0 when all passed.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEADLINE_MS = 10_000;
const PROTO = path.join(__dirname, '..', '..', 'example-app', 'proto', 'demo', 'v1', 'greeter.proto');

class CheckFailed extends Error {}

function expect(condition, detail) {
  if (!condition) throw new CheckFailed(detail);
}

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function unary(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: deadline() }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

function collect(call) {
  return new Promise((resolve, reject) => {
    const replies = [];
    call.on('data', (reply) => replies.push(reply));
    call.on('error', reject);
    call.on('end', () => resolve(replies));
  });
}

function clientStream(client, method, requests) {
  return new Promise((resolve, reject) => {
    const call = client[method]({ deadline: deadline() }, (err, reply) => (err ? reject(err) : resolve(reply)));
    for (const request of requests) call.write(request);
    call.end();
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const address = (argv.find((arg, i) => !arg.startsWith('--') && argv[i - 1] !== '--label') || '')
    .replace(/^http:\/\//, '');
  if (!address) {
    console.log('usage: node bridge_client.js HOST:PORT [--label NAME]');
    return 2;
  }
  const li = argv.indexOf('--label');
  const label = li >= 0 && argv[li + 1] ? argv[li + 1] : `node-bridge@${address}`;

  // Stock options: 64-bit integers as strings, enums as names, defaults filled in.
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [path.dirname(PROTO)],
  });
  const demo = grpc.loadPackageDefinition(definition).demo.v1;
  const client = new demo.Greeter(address, grpc.credentials.createInsecure());

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
      else if (typeof e.code === 'number') console.log(`FAIL [${label}] ${name}: unexpected status ${grpc.status[e.code]}: ${e.details}`);
      else console.log(`FAIL [${label}] ${name}: ${e && e.stack ? e.stack : e}`);
    }
  }

  try {
    await new Promise((resolve, reject) => client.waitForReady(deadline(), (err) => (err ? reject(err) : resolve())));
  } catch (e) {
    console.log(`FAIL [${label}] cannot connect to ${address} within ${DEADLINE_MS / 1000}s: ${e.message}`);
    return 1;
  }

  await check('unary SayHello (protobuf in and out)', async () => {
    const reply = await unary(client, 'SayHello', { name: 'Ada', count: 1 });
    expect(reply.message.includes('Ada'), JSON.stringify(reply));
    expect(reply.index === 0, `index ${reply.index}`);
    // google.protobuf.Timestamp: the service's MessagePack ext -1, protobuf here.
    expect(reply.at && Number(reply.at.seconds) > 1_600_000_000, JSON.stringify(reply.at));
  });

  await check('server streaming StreamGreetings', async () => {
    const replies = await collect(client.StreamGreetings({ name: 'Bo', count: 3 }, { deadline: deadline() }));
    expect(replies.length === 3, `${replies.length} replies`);
    expect(replies.every((reply, i) => reply.message.includes('Bo') && reply.index === i), JSON.stringify(replies));
  });

  await check('client streaming CollectNames', async () => {
    const names = ['Cy', 'Di', 'Ed'];
    const reply = await clientStream(client, 'CollectNames', names.map((name) => ({ name })));
    expect(reply.message === names.join(', '), JSON.stringify(reply));
    expect(reply.index === names.length, `index ${reply.index}`);
  });

  await check('bidirectional Chat, message by message', async () => {
    const call = client.Chat({ deadline: deadline() });
    const replies = [];
    const done = new Promise((resolve, reject) => {
      call.on('data', (reply) => replies.push(reply));
      call.on('error', reject);
      call.on('end', resolve);
    });
    // Each reply arrives before the next request is written: streams are transcoded one
    // message at a time, not buffered to the end.
    for (const name of ['Fay', 'Gus']) {
      const before = replies.length;
      call.write({ name });
      const limit = Date.now() + DEADLINE_MS;
      while (replies.length === before && Date.now() < limit) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(replies.length === before + 1, `no reply to ${name} before the next request`);
    }
    call.end();
    await done;
    expect(replies.map((r) => r.index).join(',') === '0,1', JSON.stringify(replies));
    expect(replies[0].message.includes('Fay') && replies[1].message.includes('Gus'), JSON.stringify(replies));
  });

  await check('an error status passes untouched (INVALID_ARGUMENT)', async () => {
    try {
      await unary(client, 'SayHello', { name: '' });
    } catch (e) {
      expect(e.code === grpc.status.INVALID_ARGUMENT, `${grpc.status[e.code]}: ${e.details}`);
      return;
    }
    throw new CheckFailed('no error for an empty name');
  });

  await check('a server-streaming error before any message', async () => {
    try {
      await collect(client.StreamGreetings({ name: '', count: 2 }, { deadline: deadline() }));
    } catch (e) {
      expect(e.code === grpc.status.INVALID_ARGUMENT, `${grpc.status[e.code]}: ${e.details}`);
      return;
    }
    throw new CheckFailed('no error for an empty name');
  });

  client.close();
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.log(`FAIL ${e && e.stack ? e.stack : e}`);
    process.exitCode = 1;
  },
);
