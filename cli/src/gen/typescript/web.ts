
/** gRPC status codes. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC-Web call that ended with a status other than OK. */
export class GrpcWebError extends Error {
  /** The `grpc-status` code (see `Status`). */
  readonly code: number;
  /** The `grpc-message`, percent-decoded. */
  readonly grpcMessage: string;
  /** The trailers (or the headers of a trailers-only answer), lower-case names. */
  readonly metadata: Record<string, string>;

  constructor(code: number, grpcMessage: string, metadata: Record<string, string> = {}) {
    const name = Object.keys(Status).find((key) => Status[key as keyof typeof Status] === code);
    super(`${name ?? `status ${code}`}: ${grpcMessage}`);
    this.name = "GrpcWebError";
    this.code = code;
    this.grpcMessage = grpcMessage;
    this.metadata = metadata;
  }
}

/** Options of a gRPC-Web client. */
export interface WebClientOptions {
  /** Headers sent with every call (for example `authorization`). */
  headers?: Record<string, string>;
  /** The `fetch` to use; default: the global one. */
  fetch?: typeof fetch;
}

/** Options of one gRPC-Web call. */
export interface WebCallOptions {
  /** Headers of this call (over the client's). */
  headers?: Record<string, string>;
  /** Aborts the call (the fetch and the body stream). */
  signal?: AbortSignal;
  /**
   * A deadline for the whole call: sent as `grpc-timeout` (the gateway and the service end the
   * call too) and kept here (`DEADLINE_EXCEEDED` when nothing has ended it by then).
   */
  timeoutMs?: number;
}

// The gateway (tonic-web) takes the plain gRPC-Web type; the body is MessagePack all the same.
const WEB_CONTENT_TYPE = "application/grpc-web";

/** The status a plain HTTP error means (the gRPC-Web spec's mapping). */
function httpStatusCode(status: number): number {
  switch (status) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The `name: value` lines of a trailer frame. */
function parseTrailers(payload: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of new TextDecoder().decode(payload).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
  return out;
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/** Throws the status of `metadata` unless it is OK. */
function checkStatus(metadata: Record<string, string>): void {
  const text = metadata["grpc-status"];
  const code = text === undefined ? NaN : Number(text);
  if (!Number.isInteger(code)) {
    throw new GrpcWebError(Status.INTERNAL, `invalid grpc-status ${JSON.stringify(text)}`, metadata);
  }
  if (code !== Status.OK) {
    throw new GrpcWebError(code, percentDecode(metadata["grpc-message"] ?? ""), metadata);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) {
    return b;
  }
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** gRPC-Web (binary) over `fetch`: one request frame, response frames as they arrive. */
class WebTransport {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly fetch: typeof fetch;

  constructor(baseUrl: string, options: WebClientOptions) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = { ...(options.headers ?? {}) };
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") {
      throw new TypeError("no fetch: pass options.fetch");
    }
    // Unbound, a browser's fetch throws "Illegal invocation".
    this.fetch = fetchImpl.bind(globalThis);
  }

  async unary<Req, Res>(m: MethodCodec<Req, Res>, request: Req, options: WebCallOptions = {}): Promise<Res> {
    let reply: { value: Res } | undefined;
    for await (const message of this.call(m, request, options)) {
      if (reply !== undefined) {
        throw new GrpcWebError(Status.INTERNAL, `${m.path}: more than one response message`);
      }
      reply = { value: message };
    }
    if (reply === undefined) {
      throw new GrpcWebError(Status.INTERNAL, `${m.path}: no response message`);
    }
    return reply.value;
  }

  serverStream<Req, Res>(m: MethodCodec<Req, Res>, request: Req, options: WebCallOptions = {}): AsyncIterable<Res> {
    return this.call(m, request, options);
  }

  private async *call<Req, Res>(m: MethodCodec<Req, Res>, request: Req, options: WebCallOptions): AsyncGenerator<Res> {
    const payload = m.encodeRequest(request);
    const body = new Uint8Array(5 + payload.length);
    new DataView(body.buffer).setUint32(1, payload.length);
    body.set(payload, 5);
    // Headers compares names case-insensitively: a caller's `Content-Type` cannot double ours.
    const headers = new Headers(this.headers);
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      headers.set(name, value);
    }
    headers.set("content-type", WEB_CONTENT_TYPE);
    headers.set("accept", WEB_CONTENT_TYPE);
    headers.set("x-grpc-web", "1");
    if (options.timeoutMs !== undefined) {
      headers.set("grpc-timeout", `${Math.max(1, Math.ceil(options.timeoutMs))}m`);
    }
    // One controller for the caller's signal and the local deadline (the server's ends the call
    // too, through grpc-timeout; this one also covers a server or network that never answers).
    const controller = new AbortController();
    let timedOut = false;
    const onAbort = (): void => controller.abort();
    options.signal?.addEventListener("abort", onAbort);
    if (options.signal?.aborted) {
      controller.abort();
    }
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, Math.max(1, options.timeoutMs));
    const failure = (err: unknown, what: string): GrpcWebError => {
      if (err instanceof GrpcWebError) {
        return err;
      }
      if (timedOut) {
        return new GrpcWebError(Status.DEADLINE_EXCEEDED, `${m.path}: no answer within ${options.timeoutMs} ms`);
      }
      if (controller.signal.aborted) {
        return new GrpcWebError(Status.CANCELLED, `${m.path}: aborted`);
      }
      return new GrpcWebError(Status.UNAVAILABLE, `${m.path}: ${what}: ${err instanceof Error ? err.message : String(err)}`);
    };
    try {
      let response: Response;
      try {
        response = await this.fetch(this.baseUrl + m.path, { method: "POST", headers, body, signal: controller.signal });
      } catch (err) {
        throw failure(err, "fetch failed");
      }
      yield* this.frames(m, response, (err) => failure(err, "reading the response failed"));
    } finally {
      if (timer !== undefined) {
        clearTimeout(timer);
      }
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The messages of a gRPC-Web response, then its status. */
  private async *frames<Req, Res>(
    m: MethodCodec<Req, Res>,
    response: Response,
    failure: (err: unknown) => GrpcWebError,
  ): AsyncGenerator<Res> {
    const responseHeaders = headerRecord(response.headers);
    if (!response.ok) {
      if (responseHeaders["grpc-status"] !== undefined) {
        checkStatus(responseHeaders);
      }
      throw new GrpcWebError(httpStatusCode(response.status), `${m.path}: HTTP ${response.status}`, responseHeaders);
    }
    // Trailers-only: the status is in the headers and the body is empty.
    if (responseHeaders["grpc-status"] !== undefined) {
      checkStatus(responseHeaders);
      return;
    }
    if (response.body === null) {
      throw new GrpcWebError(Status.INTERNAL, `${m.path}: the response has no body`, responseHeaders);
    }
    const reader = response.body.getReader();
    let buffer: Uint8Array = new Uint8Array(0);
    let trailers: Record<string, string> | undefined;
    let done = false;
    try {
      while (!done) {
        while (buffer.length >= 5) {
          const flags = buffer[0] ?? 0;
          const length = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength).getUint32(1);
          if (buffer.length < 5 + length) {
            break;
          }
          const frame = buffer.subarray(5, 5 + length);
          buffer = buffer.subarray(5 + length);
          if (trailers !== undefined) {
            throw new GrpcWebError(Status.INTERNAL, `${m.path}: a frame after the trailers`, trailers);
          }
          if ((flags & 0x80) !== 0) {
            trailers = parseTrailers(frame);
          } else if ((flags & 0x01) !== 0) {
            throw new GrpcWebError(Status.INTERNAL, `${m.path}: a compressed message (not supported)`);
          } else {
            let message: Res;
            try {
              message = m.decodeResponse(frame);
            } catch (err) {
              throw new GrpcWebError(Status.INTERNAL, `${m.path}: cannot decode the response: ${err instanceof Error ? err.message : String(err)}`);
            }
            yield message;
          }
        }
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw failure(err);
        }
        if (chunk.done) {
          done = true;
        } else {
          buffer = concat(buffer, chunk.value);
        }
      }
    } finally {
      if (!done) {
        // The caller stopped early or a frame was bad: stop the download.
        await reader.cancel().catch(() => undefined);
      }
    }
    if (buffer.length > 0) {
      throw new GrpcWebError(Status.INTERNAL, `${m.path}: the response ends inside a frame`, responseHeaders);
    }
    if (trailers === undefined) {
      throw new GrpcWebError(Status.INTERNAL, `${m.path}: the response ended without trailers`, responseHeaders);
    }
    checkStatus(trailers);
  }
}
