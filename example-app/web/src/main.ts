// The page's script: three calls through the gateway, each shown as it completes.
// Query parameters (all optional): gateway (default http://127.0.0.1:50051), name, count, a, b.

import {
  CalculatorWebClient,
  GreeterWebClient,
  GrpcWebError,
  HelloRequest,
  timestampToDate,
} from "./demo";

const params = new URLSearchParams(window.location.search);
const gateway = (params.get("gateway") ?? "http://127.0.0.1:50051").replace(/\/+$/, "");
const name = params.get("name") ?? "Browser";
const count = Number(params.get("count") ?? "5");
const a = params.get("a") ?? "2";
const b = params.get("b") ?? "40";

function element(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) {
    throw new Error(`index.html has no #${id}`);
  }
  return found;
}

function describe(err: unknown): string {
  if (err instanceof GrpcWebError) {
    return `gRPC status ${err.code}: ${err.grpcMessage}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Runs one part of the page; a failure is shown in its place and counted. */
async function part(id: string, run: (target: HTMLElement) => Promise<void>): Promise<boolean> {
  const target = element(id);
  try {
    await run(target);
    return true;
  } catch (err) {
    target.textContent = `failed: ${describe(err)}`;
    target.classList.add("error");
    return false;
  }
}

async function sayHello(target: HTMLElement): Promise<void> {
  const greeter = new GreeterWebClient(gateway);
  const reply = await greeter.sayHello(HelloRequest.create({ name }), { timeoutMs: 5000 });
  target.textContent = reply.message;
}

async function streamGreetings(list: HTMLElement): Promise<void> {
  const greeter = new GreeterWebClient(gateway);
  const status = element("stream-status");
  const started = performance.now();
  let received = 0;
  status.textContent = "streaming…";
  for await (const reply of greeter.streamGreetings(HelloRequest.create({ name, count }), { timeoutMs: 5000 })) {
    // Appended on arrival: the list grows while the stream is open.
    const item = document.createElement("li");
    const at = reply.at === null ? "no time" : timestampToDate(reply.at).toISOString();
    item.textContent = `#${reply.index} ${reply.message} (sent ${at})`;
    item.dataset.index = String(reply.index);
    item.dataset.message = reply.message;
    list.appendChild(item);
    received += 1;
    status.textContent = `${received} of ${count} so far`;
  }
  const millis = Math.round(performance.now() - started);
  status.textContent = `${received} messages, stream closed with OK after ${millis} ms`;
}

async function restAdd(target: HTMLElement): Promise<void> {
  const path = `/v1/add/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  element("rest-path").textContent = `GET ${path}`;
  const response = await fetch(gateway + path, { headers: { accept: "application/json" } });
  const body: unknown = await response.json();
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
  }
  // A 64-bit result is a JSON string in proto JSON, a number otherwise: show either.
  if (typeof body !== "number" && typeof body !== "string") {
    throw new Error(`unexpected answer ${JSON.stringify(body)}`);
  }
  target.textContent = `${a} + ${b} = ${String(body)}`;
}

async function main(): Promise<void> {
  element("origin").textContent = window.location.origin;
  element("gateway").textContent = gateway;
  const results = await Promise.all([
    part("hello", sayHello),
    part("stream", streamGreetings),
    part("sum", restAdd),
  ]);
  const status = element("status");
  const failed = results.filter((ok) => !ok).length;
  status.textContent = failed === 0 ? "all calls answered" : `${failed} call(s) failed`;
  status.dataset.state = failed === 0 ? "done" : "failed";
}

void main();
