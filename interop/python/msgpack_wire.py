"""MessagePack wire helpers shared by the Python interop client and server.

Wire format v1 (see the project README / DESIGN): every gRPC message is exactly
one MessagePack value. Proto messages use the compact layout (an array whose
element i is the field with number i + 1); `google.protobuf.Timestamp` is the
MessagePack timestamp extension (type -1); trait-service arguments are the bare
value (one argument), an array (two or more) or nil (none).

grpcio treats a deserialized ``None`` as "no message", so a MessagePack nil is
represented by the ``NIL`` sentinel on the Python side, in both directions.
"""

from __future__ import annotations

import time

import msgpack


class _Nil:
    """Sentinel for a MessagePack nil payload (grpcio cannot carry ``None``)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NIL"


NIL = _Nil()


class DecodeError(ValueError):
    """A frame that is not exactly one well-formed MessagePack value."""


def pack(value) -> bytes:
    """Encode one value; ``NIL`` (or ``None``) becomes nil (0xc0)."""
    if value is NIL:
        value = None
    # use_bin_type: bytes -> bin, str -> str (the msgpack 1.x default, spelled out).
    # datetime=False: timestamps must be passed as msgpack.Timestamp (ext -1).
    return msgpack.packb(value, use_bin_type=True, datetime=False)


def unpack(data: bytes):
    """Decode exactly one value; nil becomes ``NIL``; ext -1 becomes msgpack.Timestamp.

    Raises DecodeError for an empty frame, a malformed value or trailing bytes.
    """
    if len(data) == 0:
        raise DecodeError("empty frame: MessagePack has no zero-byte value")
    try:
        value = msgpack.unpackb(
            data, raw=False, timestamp=0, strict_map_key=False, use_list=True
        )
    except msgpack.ExtraData as e:
        raise DecodeError(f"trailing bytes after the MessagePack value ({e})") from e
    except Exception as e:  # FormatError, StackError, ValueError("incomplete"), ...
        raise DecodeError(f"malformed MessagePack value: {e!r}") from e
    return NIL if value is None else value


def now_timestamp() -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(time.time_ns())


def field(arr, i, default):
    """Compact-layout field i (0-based): missing or nil -> default."""
    if i < len(arr) and arr[i] is not None:
        return arr[i]
    return default
