#!/usr/bin/env python3
"""A grpcio call with a known W3C `traceparent`, checked in the collected spans.

    python trace_client.py GATEWAY SPANS_FILE

GATEWAY is host:port of an `example-app serve` started with OTEL_EXPORTER_OTLP_ENDPOINT
pointing at `otlp_sink --print` (the gateway's `[tracing]` and the services' trace layer
export there); SPANS_FILE is the sink's output, one span a line:
`trace_id span_id parent_span_id kind service name`.

Sends demo.v1.Greeter/SayHello with `traceparent: 00-<TRACE>-<PARENT>-01`, then waits (at
most 20 s) for the trace's spans and checks: the gateway's server span is a child of the
client's span, the gateway's client span (the upstream attempt) a child of it, the service's
span a child of that, all in the client's trace. Prints one line per check and a closing
`N passed, N failed` line; exit code 0 when all passed.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from msgpack_wire import pack, unpack  # noqa: E402

TRACE = "5ce0e9a56015fec5aadfa328ae398115"
PARENT = "ab42124a3c573678"
GATEWAY_SERVICE = "tonic-msgpack-gateway"


def spans_of(path: str, trace: str) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    spans = []
    for line in lines:
        parts = line.split(" ", 5)
        if len(parts) == 6 and parts[0] == trace:
            keys = ("trace", "span", "parent", "kind", "service", "name")
            spans.append(dict(zip(keys, parts)))
    return spans


def main() -> int:
    address, spans_file = sys.argv[1], sys.argv[2]
    address = address.removeprefix("http://")
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}")

    with grpc.insecure_channel(address) as channel:
        say_hello = channel.unary_unary(
            "/demo.v1.Greeter/SayHello",
            request_serializer=pack,
            response_deserializer=unpack,
        )
        reply = say_hello(
            ["traced", 0],
            timeout=10.0,
            metadata=(("traceparent", f"00-{TRACE}-{PARENT}-01"),),
        )
    check(isinstance(reply, list) and "traced" in str(reply[0]), f"SayHello answered {reply!r}")

    deadline = time.monotonic() + 20
    spans: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        spans = spans_of(spans_file, TRACE)
        if len(spans) >= 3:
            break
        time.sleep(0.2)
    for span in spans:
        print(f"     span {span}")

    def one(service_is_gateway: bool, kind: str) -> dict[str, str] | None:
        found = [
            span
            for span in spans
            if (span["service"] == GATEWAY_SERVICE) == service_is_gateway
            and span["kind"] == kind
        ]
        return found[0] if len(found) == 1 else None

    server = one(True, "SPAN_KIND_SERVER")
    client = one(True, "SPAN_KIND_CLIENT")
    service = one(False, "SPAN_KIND_SERVER")
    check(server is not None, "one gateway server span in the client's trace")
    check(client is not None, "one gateway client span (the upstream attempt)")
    check(service is not None, "one service span")
    if server and client and service:
        check(server["parent"] == PARENT, "gateway server span: child of the client's span")
        check(client["parent"] == server["span"], "gateway client span: child of the server span")
        check(service["parent"] == client["span"], "service span: child of the gateway's attempt")
        check(
            server["name"] == "demo.v1.Greeter/SayHello" == service["name"],
            "spans named after the RPC",
        )
    print(f"trace: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
