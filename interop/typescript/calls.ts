// Calls every Greeter and Calculator method through the gateway with the clients
// `tonic-msgpack gen typescript` wrote for example-app: the @grpc/grpc-js client (all four
// kinds) and the gRPC-Web client (fetch; unary and server streaming), asserting each reply.
//
//   node build/calls.js HOST:PORT [--label NAME]
//
// Prints one line per check and `N passed, N failed`; exit code 0 when all passed.
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";

import {
  CalculatorClient,
  CalculatorWebClient,
  GreeterClient,
  GreeterWebClient,
  GrpcWebError,
  HelloReply,
  HelloRequest,
  Status,
} from "./generated/demo.js";

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const TIMEOUT_MS = 10_000;

const args = process.argv.slice(2);
const address = (args.find((a) => !a.startsWith("--")) ?? "127.0.0.1:50051").replace(/^http:\/\//, "");
const labelAt = args.indexOf("--label");
const label = labelAt >= 0 ? (args[labelAt + 1] ?? "typescript") : "typescript";

let passed = 0;
let failed = 0;

async function check(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
    passed += 1;
    console.log(`ok   ${label} ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${label} ${name}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) {
    out.push(item);
  }
  return out;
}

/** The reply's timestamp is the server's clock: set, and within a minute of ours. */
function assertRecent(reply: HelloReply): void {
  assert.ok(reply.at !== null, "at is set");
  assert.ok(Math.abs(reply.at.seconds - Date.now() / 1000) < 60, `at ${JSON.stringify(reply.at)}`);
  assert.ok(reply.at.nanos >= 0 && reply.at.nanos < 1_000_000_000);
}

async function expectStatus(code: number, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (err) {
    if (err instanceof GrpcWebError) {
      assert.equal(err.code, code, err.message);
      return;
    }
    const status = (err as grpc.ServiceError).code;
    assert.equal(status, code, String(err));
    return;
  }
  assert.fail(`expected status ${code}, the call succeeded`);
}

const hello = (name: string, count = 0): HelloRequest => HelloRequest.create({ name, count });
const call = { timeoutMs: TIMEOUT_MS };

async function main(): Promise<number> {
  const greeter = new GreeterClient(address);
  const calculator = new CalculatorClient(address);
  const webGreeter = new GreeterWebClient(`http://${address}`);
  const webCalculator = new CalculatorWebClient(`http://${address}/`);

  // grpc-js: every kind.
  await check("grpc-js Greeter.SayHello", async () => {
    const reply = await greeter.sayHello(hello("Ada"), call);
    assert.equal(reply.message, "Hello, Ada!");
    assert.equal(reply.index, 0);
    assertRecent(reply);
  });
  await check("grpc-js Greeter.SayHello empty name -> INVALID_ARGUMENT", () =>
    expectStatus(Status.INVALID_ARGUMENT, () => greeter.sayHello(hello(""), call)),
  );
  await check("grpc-js Greeter.StreamGreetings", async () => {
    const replies = await collect(greeter.streamGreetings(hello("Bo", 3), call));
    assert.deepEqual(replies.map((r) => [r.message, r.index]), [
      ["Hello, Bo!", 0],
      ["Hello, Bo!", 1],
      ["Hello, Bo!", 2],
    ]);
    replies.forEach(assertRecent);
  });
  await check("grpc-js Greeter.CollectNames", async () => {
    const reply = await greeter.collectNames([hello("a"), hello("b"), hello("c")], call);
    assert.equal(reply.message, "a, b, c");
    assert.equal(reply.index, 3);
  });
  await check("grpc-js Greeter.CollectNames (async iterable)", async () => {
    async function* names(): AsyncGenerator<HelloRequest> {
      yield hello("x");
      yield hello("y");
    }
    const reply = await greeter.collectNames(names(), call);
    assert.equal(reply.message, "x, y");
    assert.equal(reply.index, 2);
  });
  await check("grpc-js Greeter.Chat", async () => {
    const replies = await collect(greeter.chat([hello("p"), hello("q")], call));
    assert.deepEqual(replies.map((r) => [r.message, r.index]), [
      ["Hello, p!", 0],
      ["Hello, q!", 1],
    ]);
  });
  await check("grpc-js Calculator.Add", async () => {
    assert.equal(await calculator.add(40n, 2n, call), 42n);
    assert.equal(await calculator.add(-1n, -300n, call), -301n);
    assert.equal(await calculator.add(I64_MIN, I64_MAX, call), -1n);
    assert.equal(await calculator.add(I64_MAX - 1n, 1n, call), I64_MAX);
  });
  await check("grpc-js Calculator.Add overflow -> OUT_OF_RANGE", () =>
    expectStatus(Status.OUT_OF_RANGE, () => calculator.add(I64_MAX, 1n, call)),
  );
  await check("grpc-js Calculator.Sum", async () => {
    assert.equal(await calculator.sum([1n, 2n, 3n, 2n ** 40n], call), 6n + 2n ** 40n);
    assert.equal(await calculator.sum([], call), 0n);
  });
  await check("grpc-js Calculator.Countdown", async () => {
    assert.deepEqual(await collect(calculator.countdown(3, call)), [3, 2, 1, 0]);
  });
  await check("grpc-js Calculator.RunningTotal", async () => {
    assert.deepEqual(await collect(calculator.runningTotal([1n, 2n, -10n], call)), [1n, 3n, -7n]);
  });
  await check("grpc-js Calculator.Ping", async () => {
    assert.equal(await calculator.ping(call), null);
  });

  // gRPC-Web over fetch: unary and server streaming.
  await check("grpc-web Greeter.SayHello", async () => {
    const reply = await webGreeter.sayHello(hello("Web"), call);
    assert.equal(reply.message, "Hello, Web!");
    assert.equal(reply.index, 0);
    assertRecent(reply);
  });
  await check("grpc-web Greeter.SayHello empty name -> GrpcWebError INVALID_ARGUMENT", async () => {
    try {
      await webGreeter.sayHello(hello(""), call);
      assert.fail("the call succeeded");
    } catch (err) {
      assert.ok(err instanceof GrpcWebError, String(err));
      assert.equal(err.code, Status.INVALID_ARGUMENT);
      assert.equal(err.grpcMessage, "demo.v1.HelloRequest.name: must not be empty");
    }
  });
  await check("grpc-web Greeter.StreamGreetings", async () => {
    const replies = await collect(webGreeter.streamGreetings(hello("Cy", 4), call));
    assert.deepEqual(replies.map((r) => [r.message, r.index]), [0, 1, 2, 3].map((i) => ["Hello, Cy!", i]));
    replies.forEach(assertRecent);
  });
  await check("grpc-web Greeter.StreamGreetings, none", async () => {
    assert.deepEqual(await collect(webGreeter.streamGreetings(hello("Cy", 0), call)), []);
  });
  await check("grpc-web Greeter.StreamGreetings over the limit -> INVALID_ARGUMENT", () =>
    expectStatus(Status.INVALID_ARGUMENT, () => collect(webGreeter.streamGreetings(hello("Cy", 1_000_000), call))),
  );
  await check("grpc-web Greeter.StreamGreetings, stop after the first", async () => {
    for await (const reply of webGreeter.streamGreetings(hello("Early", 50), call)) {
      assert.equal(reply.index, 0);
      break;
    }
    // The client is still usable after an abandoned stream.
    assert.equal((await webGreeter.sayHello(hello("After"), call)).message, "Hello, After!");
  });
  await check("grpc-web Calculator.Add", async () => {
    assert.equal(await webCalculator.add(40n, 2n, call), 42n);
    assert.equal(await webCalculator.add(I64_MIN, I64_MAX, call), -1n);
  });
  await check("grpc-web Calculator.Add overflow -> OUT_OF_RANGE", () =>
    expectStatus(Status.OUT_OF_RANGE, () => webCalculator.add(I64_MAX, 1n, call)),
  );
  await check("grpc-web Calculator.Countdown", async () => {
    assert.deepEqual(await collect(webCalculator.countdown(5, call)), [5, 4, 3, 2, 1, 0]);
  });
  await check("grpc-web Calculator.Ping", async () => {
    assert.equal(await webCalculator.ping(call), null);
  });
  await check("grpc-web headers and an aborted call", async () => {
    // A caller's header of another case does not double the client's own.
    const client = new GreeterWebClient(`http://${address}`, { headers: { "x-request-id": "ts-interop", "Content-Type": "text/plain" } });
    assert.equal((await client.sayHello(hello("H"), call)).message, "Hello, H!");
    const controller = new AbortController();
    controller.abort();
    await expectStatus(Status.CANCELLED, () => client.sayHello(hello("H"), { signal: controller.signal }));
  });
  await check("grpc-web unknown service -> UNIMPLEMENTED", async () => {
    const client = new GreeterWebClient(`http://${address}/no-such-prefix`);
    await expectStatus(Status.UNIMPLEMENTED, () => client.sayHello(hello("H"), call));
  });

  await check("grpc-web deadline: a server that never answers -> DEADLINE_EXCEEDED", async () => {
    // A loopback listener that takes the request and stays silent.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const client = new GreeterWebClient(`http://127.0.0.1:${port}`);
      const started = Date.now();
      await expectStatus(Status.DEADLINE_EXCEEDED, () => client.sayHello(hello("T"), { timeoutMs: 300 }));
      assert.ok(Date.now() - started < 5000, "ended by the local deadline");
    } finally {
      sockets.forEach((socket) => socket.destroy());
      silent.close();
    }
  });
  await check("grpc-web nobody listening -> UNAVAILABLE", async () => {
    const closed: Server = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = new GreeterWebClient(`http://127.0.0.1:${port}`);
    await expectStatus(Status.UNAVAILABLE, () => client.sayHello(hello("U"), call));
  });

  greeter.close();
  calculator.close();
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
