#!/usr/bin/env python3
"""The example services through the code `tonic-msgpack gen python` generates.

    python generated_client.py [ADDRESS]

`demo_contract.py` beside this file is generated from the example app
(`tonic-msgpack gen python example-app --out interop/python/demo_contract.py`; run.sh checks
it is up to date and runs `mypy --strict` over both files). This client calls every method
of demo.v1.Greeter and demo.v1.Calculator with the generated typed clients, and checks that
the bytes the Rust services send decode in the generated code and encode back to the same
bytes. Exit code 0 when every check passed.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Iterator, List, Tuple, TypeVar

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from demo_contract import (  # noqa: E402
    NIL,
    CalculatorClient,
    GreeterClient,
    HelloReply,
    HelloRequest,
    _calculator_add_response,
    _calculator_countdown_response,
    _calculator_ping_response,
    _calculator_running_total_response,
    _calculator_sum_response,
    _Writer,
)

DEADLINE = 10.0
_T = TypeVar("_T")
results: List[Tuple[str, bool, str]] = []


def check(name: str, run: Callable[[], None]) -> None:
    try:
        run()
        results.append((name, True, ""))
    except Exception as err:  # noqa: BLE001 - every failure is reported, none stops the run
        results.append((name, False, f"{type(err).__name__}: {err}"))


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def raw_unary(channel: grpc.Channel, path: str, request: bytes) -> bytes:
    """One call with the bytes as they are, to compare with what the generated code writes."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
    data: bytes = call(request, timeout=DEADLINE)
    return data


def raw_server_stream(channel: grpc.Channel, path: str, request: bytes) -> List[bytes]:
    call: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
    return [bytes(item) for item in call(request, timeout=DEADLINE)]


def raw_client_stream(channel: grpc.Channel, path: str, requests: List[bytes]) -> bytes:
    call: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
    data: bytes = call(iter(requests), timeout=DEADLINE)
    return data


def raw_bidi(channel: grpc.Channel, path: str, requests: List[bytes]) -> List[bytes]:
    call: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(path)
    return [bytes(item) for item in call(iter(requests), timeout=DEADLINE)]


def same_bytes(data: bytes, decode: Callable[[bytes], _T], encode: Callable[[_T], bytes]) -> _T:
    value = decode(data)
    again = encode(value)
    expect(again == data, f"round trip changed the bytes: {data.hex()} -> {again.hex()}")
    return value


def encode_int(value: int) -> bytes:
    w = _Writer()
    w.value(value)
    return w.bytes()


def encode_nil(_: object) -> bytes:
    w = _Writer()
    w.value(None)
    return w.bytes()


def main() -> int:
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("INTEROP_ADDR", "127.0.0.1:50051")
    address = address.removeprefix("http://")
    with grpc.insecure_channel(address) as channel:
        greeter = GreeterClient(channel)
        calculator = CalculatorClient(channel)

        def say_hello() -> None:
            reply = greeter.say_hello(HelloRequest(name="Ada", count=3), timeout=DEADLINE)
            expect(reply.message == "Hello, Ada!", f"message {reply.message!r}")
            expect(reply.index == 0, f"index {reply.index}")
            expect(reply.at is not None and reply.at.to_unix() > 1_600_000_000, f"at {reply.at!r}")
            data = raw_unary(channel, "/demo.v1.Greeter/SayHello", HelloRequest(name="Ada").to_msgpack())
            same_bytes(data, HelloReply.from_msgpack, HelloReply.to_msgpack)

        def stream_greetings() -> None:
            replies = list(greeter.stream_greetings(HelloRequest(name="Bo", count=3), timeout=DEADLINE))
            expect([r.index for r in replies] == [0, 1, 2], f"indexes {[r.index for r in replies]}")
            expect(all(r.message == "Hello, Bo!" for r in replies), "messages")
            request = HelloRequest(name="Bo", count=3).to_msgpack()
            for data in raw_server_stream(channel, "/demo.v1.Greeter/StreamGreetings", request):
                same_bytes(data, HelloReply.from_msgpack, HelloReply.to_msgpack)

        def collect_names() -> None:
            names = ["Ada", "Grace", "Linus"]
            reply = greeter.collect_names((HelloRequest(name=n) for n in names), timeout=DEADLINE)
            expect(reply.message == "Ada, Grace, Linus", f"message {reply.message!r}")
            expect(reply.index == 3, f"index {reply.index}")
            requests = [HelloRequest(name=n).to_msgpack() for n in names]
            data = raw_client_stream(channel, "/demo.v1.Greeter/CollectNames", requests)
            same_bytes(data, HelloReply.from_msgpack, HelloReply.to_msgpack)

        def chat() -> None:
            requests: Iterator[HelloRequest] = iter([HelloRequest(name="Ada"), HelloRequest(name="Grace")])
            replies = list(greeter.chat(requests, timeout=DEADLINE))
            expect([r.message for r in replies] == ["Hello, Ada!", "Hello, Grace!"], "messages")
            expect([r.index for r in replies] == [0, 1], "indexes")
            requests_bytes = [HelloRequest(name="Ada").to_msgpack(), HelloRequest(name="Grace").to_msgpack()]
            for data in raw_bidi(channel, "/demo.v1.Greeter/Chat", requests_bytes):
                same_bytes(data, HelloReply.from_msgpack, HelloReply.to_msgpack)

        def add() -> None:
            expect(calculator.add(40, 2, timeout=DEADLINE) == 42, "40 + 2")
            data = raw_unary(channel, "/demo.v1.Calculator/Add", bytes([0x92, 0x28, 0x02]))
            expect(same_bytes(data, _calculator_add_response, encode_int) == 42, "raw 40 + 2")

        def add_overflow() -> None:
            try:
                calculator.add(2**63 - 1, 1, timeout=DEADLINE)
            except grpc.RpcError as err:
                expect(err.code() == grpc.StatusCode.OUT_OF_RANGE, f"code {err.code()}")
                return
            raise AssertionError("no error on overflow")

        def sum_() -> None:
            expect(calculator.sum(iter([1, 2, 3, 4]), timeout=DEADLINE) == 10, "sum")
            data = raw_client_stream(channel, "/demo.v1.Calculator/Sum", [encode_int(v) for v in [1, 2, 3, 4]])
            expect(same_bytes(data, _calculator_sum_response, encode_int) == 10, "raw sum")

        def countdown() -> None:
            values = list(calculator.countdown(3, timeout=DEADLINE))
            expect(values == [3, 2, 1, 0], f"countdown {values}")
            for data in raw_server_stream(channel, "/demo.v1.Calculator/Countdown", encode_int(3)):
                same_bytes(data, _calculator_countdown_response, encode_int)

        def running_total() -> None:
            totals = list(calculator.running_total(iter([1, 2, 3]), timeout=DEADLINE))
            expect(totals == [1, 3, 6], f"totals {totals}")
            for data in raw_bidi(channel, "/demo.v1.Calculator/RunningTotal", [encode_int(v) for v in [1, 2, 3]]):
                same_bytes(data, _calculator_running_total_response, encode_int)

        def ping() -> None:
            expect(calculator.ping(timeout=DEADLINE) is NIL, "ping returns NIL")
            data = raw_unary(channel, "/demo.v1.Calculator/Ping", bytes([0xC0]))
            same_bytes(data, _calculator_ping_response, encode_nil)

        for name, run in [
            ("Greeter/SayHello", say_hello),
            ("Greeter/StreamGreetings", stream_greetings),
            ("Greeter/CollectNames", collect_names),
            ("Greeter/Chat", chat),
            ("Calculator/Add", add),
            ("Calculator/Add overflow", add_overflow),
            ("Calculator/Sum", sum_),
            ("Calculator/Countdown", countdown),
            ("Calculator/RunningTotal", running_total),
            ("Calculator/Ping", ping),
        ]:
            check(name, run)
    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} generated {name}{'' if ok else ': ' + detail}")
        failed += 0 if ok else 1
    print(f"generated: {len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
