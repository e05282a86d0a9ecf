
/** Options of one call of a Node (@grpc/grpc-js) client. */
export interface NodeCallOptions {
  /** Request metadata. */
  metadata?: grpc.Metadata;
  /** An absolute deadline (a `Date` or milliseconds since the epoch). */
  deadline?: grpc.Deadline;
  /** A deadline relative to now, when `deadline` is not given. */
  timeoutMs?: number;
}

// Boxed: grpc-js takes a deserialized `null` for "no message", and `()` / `Option` are nil.
interface Boxed<T> {
  value: T;
}

function serializer<Req, Res>(m: MethodCodec<Req, Res>): (boxed: Boxed<Req>) => Buffer {
  return (boxed) => {
    const bytes = m.encodeRequest(boxed.value);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<Req, Res>(m: MethodCodec<Req, Res>): (data: Buffer) => Boxed<Res> {
  return (data) => ({ value: m.decodeResponse(data) });
}

function callOptions(options: NodeCallOptions): grpc.CallOptions {
  if (options.deadline !== undefined) {
    return { deadline: options.deadline };
  }
  if (options.timeoutMs !== undefined) {
    return { deadline: Date.now() + options.timeoutMs };
  }
  return {};
}

function nodeUnary<Req, Res>(client: grpc.Client, m: MethodCodec<Req, Res>, request: Req, options: NodeCallOptions = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      m.path,
      serializer(m),
      deserializer(m),
      { value: request },
      options.metadata ?? new grpc.Metadata(),
      callOptions(options),
      (error, reply) => {
        if (error) {
          reject(error);
        } else if (reply === undefined) {
          reject(new Error(`${m.path}: no response message`));
        } else {
          resolve(reply.value);
        }
      },
    );
  });
}

async function* nodeServerStream<Req, Res>(
  client: grpc.Client,
  m: MethodCodec<Req, Res>,
  request: Req,
  options: NodeCallOptions = {},
): AsyncGenerator<Res> {
  const call = client.makeServerStreamRequest(
    m.path,
    serializer(m),
    deserializer(m),
    { value: request },
    options.metadata ?? new grpc.Metadata(),
    callOptions(options),
  );
  try {
    for await (const boxed of call) {
      yield (boxed as Boxed<Res>).value;
    }
  } finally {
    call.cancel();
  }
}

/** Writes `requests` with backpressure, then half-closes. */
async function pump<T>(call: grpc.ClientWritableStream<Boxed<T>> | grpc.ClientDuplexStream<Boxed<T>, unknown>, requests: Iterable<T> | AsyncIterable<T>): Promise<void> {
  for await (const request of requests) {
    if (!call.write({ value: request })) {
      await new Promise<void>((resolve) => call.once("drain", () => resolve()));
    }
  }
  call.end();
}

function nodeClientStream<Req, Res>(
  client: grpc.Client,
  m: MethodCodec<Req, Res>,
  requests: Iterable<Req> | AsyncIterable<Req>,
  options: NodeCallOptions = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(
      m.path,
      serializer(m),
      deserializer(m),
      options.metadata ?? new grpc.Metadata(),
      callOptions(options),
      (error, reply) => {
        if (error) {
          reject(error);
        } else if (reply === undefined) {
          reject(new Error(`${m.path}: no response message`));
        } else {
          resolve(reply.value);
        }
      },
    );
    pump(call, requests).catch((err: unknown) => {
      call.cancel();
      reject(err);
    });
  });
}

async function* nodeBidi<Req, Res>(
  client: grpc.Client,
  m: MethodCodec<Req, Res>,
  requests: Iterable<Req> | AsyncIterable<Req>,
  options: NodeCallOptions = {},
): AsyncGenerator<Res> {
  const call = client.makeBidiStreamRequest(
    m.path,
    serializer(m),
    deserializer(m),
    options.metadata ?? new grpc.Metadata(),
    callOptions(options),
  );
  let failure: { error: unknown } | undefined;
  const pumping = pump(call, requests).catch((error: unknown) => {
    failure = { error };
    call.cancel();
  });
  try {
    for await (const boxed of call) {
      yield (boxed as Boxed<Res>).value;
    }
  } catch (err) {
    if (failure !== undefined) {
      throw failure.error;
    }
    throw err;
  } finally {
    call.cancel();
  }
  await pumping;
  if (failure !== undefined) {
    throw failure.error;
  }
}
