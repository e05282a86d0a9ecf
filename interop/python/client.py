#!/usr/bin/env python3
"""Python (grpcio + msgpack) interop client for the tonic-msgpack example services.

    python client.py [ADDRESS] [--label NAME] [--only greeter,calculator,errors]
                     [--ca FILE [--cert FILE --key FILE] [--expect-refused]]

ADDRESS is host:port (an `http://` prefix is accepted); default $INTEROP_ADDR or
127.0.0.1:50051. It may be the gateway or the services' own port: the checks are
the same. Calls every kind of demo.v1.Greeter (proto service, compact layout) and
every method of demo.v1.Calculator (trait service), checks values, byte layout
and status codes, prints one line per check and a closing `N passed, N failed`
line. Exit code 0 when all passed, 1 otherwise.

TLS: `--ca FILE` (PEM roots; an `https://` address without it uses grpcio's default roots)
makes the channel a `grpc.secure_channel` with `grpc.ssl_channel_credentials`; `--cert` and
`--key` add a client certificate (mTLS). `--expect-refused` runs one check instead of the
suite: a call must fail with UNAVAILABLE (e.g. no client certificate where one is required).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
import msgpack  # noqa: E402

from msgpack_wire import NIL, pack, unpack  # noqa: E402

GREETER = "/demo.v1.Greeter/"
CALC = "/demo.v1.Calculator/"
DEADLINE = 10.0  # seconds, every call
I64_MAX = 2**63 - 1
SC = grpc.StatusCode


class CheckFailed(AssertionError):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what="value"):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


# ---------------------------------------------------------------- message shapes


def hello_request(name, count=0):
    return [name, count]


def check_reply(reply, message, index):
    """HelloReply = [message, index, at]: strict about the layout the Rust side writes."""
    expect(isinstance(reply, list), f"HelloReply must be a compact array, got {reply!r}")
    expect_eq(len(reply), 3, "HelloReply array length (highest field number)")
    expect_eq(reply[0], message, "HelloReply.message")
    expect_eq(reply[1], index, "HelloReply.index")
    at = reply[2]
    expect(
        isinstance(at, msgpack.Timestamp),
        f"HelloReply.at must be the MessagePack timestamp ext -1, got {at!r}",
    )
    skew = abs(at.to_unix() - time.time())
    expect(skew < 60, f"HelloReply.at is {skew:.1f}s away from now")


def skip_str(raw: bytes, pos: int) -> int:
    """Return the position after the MessagePack str starting at pos."""
    b = raw[pos]
    if 0xA0 <= b <= 0xBF:
        return pos + 1 + (b - 0xA0)
    if b == 0xD9:
        return pos + 2 + raw[pos + 1]
    if b == 0xDA:
        return pos + 3 + int.from_bytes(raw[pos + 1 : pos + 3], "big")
    if b == 0xDB:
        return pos + 5 + int.from_bytes(raw[pos + 1 : pos + 5], "big")
    raise CheckFailed(f"expected a str at byte {pos}, found 0x{b:02x}")


def check_reply_bytes(raw: bytes, index: int):
    """Byte-level: fixarray(3), str, smallest int, ext -1 (timestamp 32/64/96)."""
    expect_eq(raw[0], 0x93, "first byte (fixarray of 3)")
    pos = skip_str(raw, 1)
    want_index = pack(index)
    expect_eq(raw[pos : pos + len(want_index)], want_index, "index encoding (smallest int)")
    pos += len(want_index)
    ts = raw[pos:]
    ok = (
        (ts[:2] == b"\xd6\xff" and len(ts) == 6)  # timestamp 32
        or (ts[:2] == b"\xd7\xff" and len(ts) == 10)  # timestamp 64
        or (ts[:3] == b"\xc7\x0c\xff" and len(ts) == 15)  # timestamp 96
    )
    expect(ok, f"`at` must be ext -1 (fixext4/fixext8/ext8 len 12), got {ts.hex()}")


# ---------------------------------------------------------------- the suite


class Suite:
    GROUPS = ("greeter", "calculator", "errors")

    def __init__(self, address: str, label: str, groups=GROUPS, credentials=None):
        self.address = address
        self.label = label
        self.groups = groups
        if credentials is None:
            self.channel = grpc.insecure_channel(address)
        else:
            self.channel = grpc.secure_channel(address, credentials)
        self.passed = 0
        self.failed = 0

    # typed (msgpack) and raw (bytes) stubs
    def uu(self, path, raw=False):
        return self.channel.unary_unary(
            path,
            request_serializer=None if raw else pack,
            response_deserializer=None if raw else unpack,
        )

    def us(self, path, raw=False):
        return self.channel.unary_stream(
            path,
            request_serializer=None if raw else pack,
            response_deserializer=None if raw else unpack,
        )

    def su(self, path, raw=False):
        return self.channel.stream_unary(
            path,
            request_serializer=None if raw else pack,
            response_deserializer=None if raw else unpack,
        )

    def ss(self, path, raw=False):
        return self.channel.stream_stream(
            path,
            request_serializer=None if raw else pack,
            response_deserializer=None if raw else unpack,
        )

    def check(self, name, fn):
        try:
            fn()
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL [{self.label}] {name}: {e}", flush=True)
        except grpc.RpcError as e:
            self.failed += 1
            print(f"FAIL [{self.label}] {name}: unexpected status {e.code().name}: {e.details()}", flush=True)
        except Exception as e:  # a bug in the check or a broken payload
            self.failed += 1
            print(f"FAIL [{self.label}] {name}: {e!r}", flush=True)
            traceback.print_exc()
        else:
            self.passed += 1
            print(f"ok   [{self.label}] {name}", flush=True)

    def expect_status(self, code, fn):
        try:
            fn()
        except grpc.RpcError as e:
            if e.code() != code:
                raise CheckFailed(f"status: got {e.code().name} ({e.details()!r}), want {code.name}") from None
            return
        raise CheckFailed(f"expected status {code.name}, the call succeeded")

    # ------------------------------------------------------------ Greeter

    def greeter(self):
        say = self.uu(GREETER + "SayHello")
        say_raw = self.uu(GREETER + "SayHello", raw=True)
        stream = self.us(GREETER + "StreamGreetings")
        collect = self.su(GREETER + "CollectNames")
        chat = self.ss(GREETER + "Chat")

        self.check("Greeter.SayHello", lambda: check_reply(say(hello_request("Ann"), timeout=DEADLINE), "Hello, Ann!", 0))
        self.check(
            "Greeter.SayHello reply bytes: [str, 0, ext -1]",
            lambda: check_reply_bytes(say_raw(pack(["Ann", 0]), timeout=DEADLINE), 0),
        )
        self.check(
            "Greeter.SayHello request bytes are the compact array",
            lambda: expect_eq(pack(hello_request("Ann", 2)), b"\x92\xa3Ann\x02", "HelloRequest bytes"),
        )
        self.check(
            "Greeter.SayHello non-ASCII name",
            lambda: check_reply(say(hello_request("Zoë 世界"), timeout=DEADLINE), "Hello, Zoë 世界!", 0),
        )
        self.check(
            "Greeter.SayHello shorter array [name]",
            lambda: check_reply(say(["Bob"], timeout=DEADLINE), "Hello, Bob!", 0),
        )
        self.check(
            "Greeter.SayHello nil field [name, nil]",
            lambda: check_reply(say(["Bob", None], timeout=DEADLINE), "Hello, Bob!", 0),
        )
        self.check(
            "Greeter.SayHello longer array [name, count, extra]",
            lambda: check_reply(say(["Bob", 1, "extra"], timeout=DEADLINE), "Hello, Bob!", 0),
        )
        self.check(
            "Greeter.SayHello empty name -> INVALID_ARGUMENT",
            lambda: self.expect_status(SC.INVALID_ARGUMENT, lambda: say(hello_request(""), timeout=DEADLINE)),
        )

        def stream_3():
            replies = list(stream(hello_request("Ann", 3), timeout=DEADLINE))
            expect_eq(len(replies), 3, "number of replies")
            for i, r in enumerate(replies):
                check_reply(r, "Hello, Ann!", i)

        self.check("Greeter.StreamGreetings count=3", stream_3)
        self.check(
            "Greeter.StreamGreetings count=0",
            lambda: expect_eq(list(stream(hello_request("Ann", 0), timeout=DEADLINE)), [], "replies"),
        )

        def stream_1000():
            replies = list(stream(hello_request("Max", 1000), timeout=DEADLINE))
            expect_eq(len(replies), 1000, "number of replies")
            check_reply(replies[999], "Hello, Max!", 999)

        self.check("Greeter.StreamGreetings count=1000 (the limit)", stream_1000)
        self.check(
            "Greeter.StreamGreetings count=1001 -> INVALID_ARGUMENT",
            lambda: self.expect_status(
                SC.INVALID_ARGUMENT, lambda: list(stream(hello_request("Ann", 1001), timeout=DEADLINE))
            ),
        )
        self.check(
            "Greeter.CollectNames",
            lambda: check_reply(
                collect(iter([hello_request(n) for n in ("Ann", "Bob", "Cy")]), timeout=DEADLINE),
                "Ann, Bob, Cy",
                3,
            ),
        )
        self.check(
            "Greeter.CollectNames empty stream",
            lambda: check_reply(collect(iter([]), timeout=DEADLINE), "", 0),
        )
        self.check(
            "Greeter.CollectNames empty name -> INVALID_ARGUMENT",
            lambda: self.expect_status(
                SC.INVALID_ARGUMENT,
                lambda: collect(iter([hello_request("Ann"), hello_request("")]), timeout=DEADLINE),
            ),
        )

        def chat_batch():
            names = ["Ann", "Bob", "Cy"]
            replies = list(chat(iter([hello_request(n) for n in names]), timeout=DEADLINE))
            expect_eq(len(replies), 3, "number of replies")
            for i, (n, r) in enumerate(zip(names, replies)):
                check_reply(r, f"Hello, {n}!", i)

        self.check("Greeter.Chat", chat_batch)

        def chat_lockstep():
            # One request, then wait for its reply before sending the next: the
            # reply must come before the client half-closes (no buffering anywhere).
            q: queue.Queue = queue.Queue()

            def requests():
                while True:
                    item = q.get()
                    if item is None:
                        return
                    yield item

            call = chat(requests(), timeout=DEADLINE)
            try:
                for i, n in enumerate(["Ann", "Bob", "Cy"]):
                    q.put(hello_request(n))
                    check_reply(next(call), f"Hello, {n}!", i)
            except BaseException:
                call.cancel()
                raise
            finally:
                q.put(None)
            expect_eq(list(call), [], "replies after half-close")

        self.check("Greeter.Chat interleaved (reply before next request)", chat_lockstep)
        self.check(
            "Greeter.Chat empty name -> INVALID_ARGUMENT",
            lambda: self.expect_status(
                SC.INVALID_ARGUMENT,
                lambda: list(chat(iter([hello_request("Ann"), hello_request("")]), timeout=DEADLINE)),
            ),
        )

    # ------------------------------------------------------------ Calculator

    def calculator(self):
        add = self.uu(CALC + "Add")
        add_raw = self.uu(CALC + "Add", raw=True)
        total = self.su(CALC + "Sum")
        countdown = self.us(CALC + "Countdown")
        running = self.ss(CALC + "RunningTotal")
        ping = self.uu(CALC + "Ping")
        ping_raw = self.uu(CALC + "Ping", raw=True)

        self.check("Calculator.Add(2, 3)", lambda: expect_eq(add([2, 3], timeout=DEADLINE), 5))
        self.check(
            "Calculator.Add bytes: [2, 3] -> 0x05",
            lambda: expect_eq(add_raw(b"\x92\x02\x03", timeout=DEADLINE), b"\x05", "response bytes"),
        )
        self.check("Calculator.Add(-3, -4)", lambda: expect_eq(add([-3, -4], timeout=DEADLINE), -7))
        self.check(
            "Calculator.Add(2**62, 2**62 - 1) = i64::MAX",
            lambda: expect_eq(add([2**62, 2**62 - 1], timeout=DEADLINE), I64_MAX),
        )
        self.check(
            "Calculator.Add(-2**63, 0) = i64::MIN",
            lambda: expect_eq(add([-(2**63), 0], timeout=DEADLINE), -(2**63)),
        )
        self.check(
            "Calculator.Add(i64::MAX, 1) -> OUT_OF_RANGE",
            lambda: self.expect_status(SC.OUT_OF_RANGE, lambda: add([I64_MAX, 1], timeout=DEADLINE)),
        )
        self.check("Calculator.Sum(1, 2, 3, 4)", lambda: expect_eq(total(iter([1, 2, 3, 4]), timeout=DEADLINE), 10))
        self.check("Calculator.Sum() empty stream", lambda: expect_eq(total(iter([]), timeout=DEADLINE), 0))
        self.check(
            "Calculator.Countdown(3)",
            lambda: expect_eq(list(countdown(3, timeout=DEADLINE)), [3, 2, 1, 0]),
        )
        self.check(
            "Calculator.Countdown(0)",
            lambda: expect_eq(list(countdown(0, timeout=DEADLINE)), [0]),
        )
        self.check(
            "Calculator.RunningTotal(1, 2, 3, -10)",
            lambda: expect_eq(list(running(iter([1, 2, 3, -10]), timeout=DEADLINE)), [1, 3, 6, -4]),
        )
        self.check("Calculator.Ping(nil) -> nil", lambda: expect(ping(NIL, timeout=DEADLINE) is NIL, "reply must be nil"))
        self.check(
            "Calculator.Ping bytes: 0xc0 -> 0xc0",
            lambda: expect_eq(ping_raw(b"\xc0", timeout=DEADLINE), b"\xc0", "response bytes"),
        )

    # ------------------------------------------------------------ error codes

    def errors(self):
        say_raw = self.uu(GREETER + "SayHello", raw=True)
        add_raw = self.uu(CALC + "Add", raw=True)
        sum_raw = self.su(CALC + "Sum", raw=True)
        chat_raw = self.ss(GREETER + "Chat", raw=True)
        bad = SC.INVALID_ARGUMENT

        for what, frame in [
            ("malformed 0xc1", b"\xc1"),
            ("trailing bytes", pack(["Ann", 0]) + b"\x00"),
            ("truncated value", pack(["Ann", 0])[:-2]),
            ("empty frame", b""),
            ("a string instead of the array", pack("Ann")),
        ]:
            self.check(
                f"Greeter.SayHello {what} -> INVALID_ARGUMENT",
                lambda frame=frame: self.expect_status(bad, lambda: say_raw(frame, timeout=DEADLINE)),
            )
        for what, frame in [
            ("malformed 0xc1", b"\xc1"),
            ("trailing bytes", pack([1, 2]) + b"\xc0"),
            ("a string instead of [a, b]", pack("2+3")),
        ]:
            self.check(
                f"Calculator.Add {what} -> INVALID_ARGUMENT",
                lambda frame=frame: self.expect_status(bad, lambda: add_raw(frame, timeout=DEADLINE)),
            )
        self.check(
            "Calculator.Sum malformed 2nd frame -> INVALID_ARGUMENT",
            lambda: self.expect_status(bad, lambda: sum_raw(iter([pack(1), b"\xc1", pack(2)]), timeout=DEADLINE)),
        )
        self.check(
            "Greeter.Chat trailing bytes in 2nd frame -> INVALID_ARGUMENT",
            lambda: self.expect_status(
                bad,
                lambda: list(chat_raw(iter([pack(["Ann"]), pack(["Bob"]) + b"\x01"]), timeout=DEADLINE)),
            ),
        )
        for path in ["/demo.v1.Greeter/NoSuchMethod", "/demo.v1.Calculator/NoSuchMethod", "/demo.v1.NoSuchService/Call"]:
            self.check(
                f"{path} -> UNIMPLEMENTED",
                lambda path=path: self.expect_status(
                    SC.UNIMPLEMENTED, lambda: self.uu(path, raw=True)(b"\xc0", timeout=DEADLINE)
                ),
            )

    def refused(self) -> bool:
        """One call that must fail with UNAVAILABLE (the TLS handshake is refused)."""
        say = self.uu(GREETER + "SayHello")
        self.check(
            "Greeter.SayHello is refused at the TLS handshake -> UNAVAILABLE",
            lambda: self.expect_status(SC.UNAVAILABLE, lambda: say(hello_request("Ann"), timeout=DEADLINE)),
        )
        self.channel.close()
        print(f"{self.label}: {self.passed} passed, {self.failed} failed", flush=True)
        return self.failed == 0

    def run(self) -> bool:
        try:
            grpc.channel_ready_future(self.channel).result(timeout=DEADLINE)
        except grpc.FutureTimeoutError:
            print(f"FAIL [{self.label}] cannot connect to {self.address} within {DEADLINE}s", flush=True)
            self.failed += 1
            return False
        for group in self.groups:
            getattr(self, group)()
        self.channel.close()
        print(f"{self.label}: {self.passed} passed, {self.failed} failed", flush=True)
        return self.failed == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="tonic-msgpack Python interop client")
    parser.add_argument("address", nargs="?", default=os.environ.get("INTEROP_ADDR", "127.0.0.1:50051"))
    parser.add_argument("--label", default=None, help="name printed on every line (default: python@ADDRESS)")
    parser.add_argument(
        "--only",
        default=",".join(Suite.GROUPS),
        help="comma-separated check groups: greeter, calculator, errors (default: all)",
    )
    parser.add_argument("--ca", help="PEM file of the CA certificates to trust (TLS)")
    parser.add_argument("--cert", help="PEM client certificate (mTLS; needs --key)")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument(
        "--expect-refused",
        action="store_true",
        help="instead of the suite: one call that must fail with UNAVAILABLE",
    )
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in Suite.GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(Suite.GROUPS)}")
    address = args.address
    tls = bool(args.ca or args.cert or address.startswith("https://"))
    for prefix in ("http://", "https://", "grpc://"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
    address = address.rstrip("/")
    label = args.label or f"python@{address}"
    credentials = None
    if tls:

        def read(path):
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as e:
                parser.error(f"cannot read {path}: {e}")

        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca) if args.ca else None,
            private_key=read(args.key) if args.key else None,
            certificate_chain=read(args.cert) if args.cert else None,
        )
    suite = Suite(address, label, groups, credentials)
    ok = suite.refused() if args.expect_refused else suite.run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
