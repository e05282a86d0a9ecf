#!/usr/bin/env python3
"""A grpcio server implementing demo.v1.Greeter over MessagePack (wire format v1).

Used for the reverse interop direction: the generated Rust client
(`example-app check-greeter http://HOST:PORT`) calls all four call kinds on it.

    python greeter_server.py PORT [--host 127.0.0.1]

Prints one line `greeter_server: listening on HOST:PORT` (PORT 0 picks a free
port and prints it) once it accepts calls, then serves until SIGTERM/SIGINT.

Behaviour (same as the Rust example service):
- SayHello(HelloRequest) -> HelloReply{"Hello, {name}!", 0, now}
- StreamGreetings -> `count` replies with index 0..count-1; count > 1000 -> INVALID_ARGUMENT
- CollectNames(stream) -> message = names joined by ", ", index = number of requests
- Chat(stream) -> one reply per request, index = its 0-based position
- an empty name -> INVALID_ARGUMENT; a frame that is not exactly one MessagePack
  value -> INVALID_ARGUMENT (decoded here, not in a grpcio deserializer, because a
  raising deserializer makes grpcio answer INTERNAL).

HelloRequest = [name, count]; HelloReply = [message, index, at] with `at` the
MessagePack timestamp extension (-1).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from msgpack_wire import NIL, DecodeError, field, now_timestamp, pack, unpack  # noqa: E402

SERVICE = "demo.v1.Greeter"
MAX_COUNT = 1000
U32_MAX = 2**32 - 1


class BadRequest(Exception):
    pass


def decode_hello_request(data: bytes):
    """HelloRequest = [name, count], tolerant: shorter arrays, nil fields, extra elements."""
    try:
        value = unpack(data)
    except DecodeError as e:
        raise BadRequest(f"demo.v1.HelloRequest: {e}") from e
    if value is NIL:
        value = []
    if not isinstance(value, list):
        raise BadRequest(
            f"demo.v1.HelloRequest: expected a compact array, got {type(value).__name__}"
        )
    name = field(value, 0, "")
    count = field(value, 1, 0)
    if not isinstance(name, str):
        raise BadRequest(f"demo.v1.HelloRequest.name: expected a string, got {type(name).__name__}")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= U32_MAX:
        raise BadRequest(f"demo.v1.HelloRequest.count: expected a uint32, got {count!r}")
    return name, count


def hello_reply(message: str, index: int) -> bytes:
    return pack([message, index, now_timestamp()])


def _request(context, data: bytes):
    try:
        return decode_hello_request(data)
    except BadRequest as e:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))


def _require_name(context, name: str) -> None:
    if name == "":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "demo.v1.HelloRequest.name must not be empty")


def say_hello(data, context):
    name, _ = _request(context, data)
    _require_name(context, name)
    return hello_reply(f"Hello, {name}!", 0)


def stream_greetings(data, context):
    name, count = _request(context, data)
    _require_name(context, name)
    if count > MAX_COUNT:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"demo.v1.HelloRequest.count: {count} is over the limit of {MAX_COUNT}",
        )
    for i in range(count):
        yield hello_reply(f"Hello, {name}!", i)


def collect_names(request_iterator, context):
    names = []
    for data in request_iterator:
        name, _ = _request(context, data)
        _require_name(context, name)
        names.append(name)
    return hello_reply(", ".join(names), len(names))


def chat(request_iterator, context):
    for i, data in enumerate(request_iterator):
        name, _ = _request(context, data)
        _require_name(context, name)
        yield hello_reply(f"Hello, {name}!", i)


def greeter_handler() -> grpc.GenericRpcHandler:
    # No request_deserializer: handlers get the raw frame and decode it themselves,
    # so a bad frame is INVALID_ARGUMENT (a raising deserializer would be INTERNAL).
    # Responses are already encoded bytes, so no response_serializer either.
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(say_hello),
            "StreamGreetings": grpc.unary_stream_rpc_method_handler(stream_greetings),
            "CollectNames": grpc.stream_unary_rpc_method_handler(collect_names),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, nargs="?", default=int(os.environ.get("GREETER_PORT", "50060")))
    parser.add_argument("--host", default=os.environ.get("GREETER_HOST", "127.0.0.1"))
    args = parser.parse_args(argv)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((greeter_handler(),))
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    if port == 0:
        print(f"greeter_server: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    server.start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"greeter_server: listening on {args.host}:{port}", flush=True)
    while not stop.wait(1.0):
        pass
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
