"""TensorBoard event files, written directly: TFRecord framing around hand-encoded `Event` protobufs.

What TensorBoard reads (tensorflow/core/util/event.proto, summary.proto; the TFRecord format):
- a file named `events.out.tfevents.<unix seconds>.<host><suffix>`;
- records of `uint64 length | uint32 masked crc32c(length) | payload | uint32 masked crc32c(payload)`,
  little-endian, where masked(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2^32;
- a first `Event{wall_time, file_version: "brain.Event:2"}`, then `Event{wall_time, step, summary}` with
  `Summary{value: [Value{tag, simple_value}]}` for scalars, and `Event{session_log: {status: START}}` for a
  resumed run (TensorBoard then drops the older files' steps from that step on, as tensorboardX's
  purge_step does).

Only these four messages are needed, so they are encoded here (protobuf's wire format: varint keys, fixed64
doubles, fixed32 floats, length-delimited strings and messages) rather than through tensorboardX, whose
package imports torch when torch is installed (seconds per process, every training process of the test
suite). tests/support/tfevents.py parses what this writes with the protobuf classes of event.proto.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

FILE_VERSION = "brain.Event:2"
_SESSION_START = 1


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    """TFRecord's masked CRC-32C."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(payload: bytes) -> bytes:
    """One TFRecord around `payload`."""
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", masked(header)) + payload + struct.pack("<I", masked(payload))


# ---- protobuf wire format -----------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1   # int64: negative values as their two's complement, ten bytes
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value


def _event(wall_time: float, step: int | None = None, body: bytes = b"") -> bytes:
    out = _key(1, 1) + struct.pack("<d", wall_time)    # double wall_time = 1
    if step:                                            # int64 step = 2 (proto3: 0 is not written)
        out += _key(2, 0) + _varint(step)
    return out + body


def file_version_event(wall_time: float) -> bytes:
    return _event(wall_time, body=_bytes_field(3, FILE_VERSION.encode()))           # string file_version = 3


def scalar_event(wall_time: float, step: int, values: dict[str, float]) -> bytes:
    summary = b"".join(
        _bytes_field(1, _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", float(v)))
        for tag, v in values.items())                   # Summary.value = 1: {string tag = 1; float simple_value = 2}
    return _event(wall_time, step, _bytes_field(5, summary))                       # Summary summary = 5


def session_start_event(wall_time: float, step: int) -> bytes:
    return _event(wall_time, step, _bytes_field(7, _key(1, 0) + _varint(_SESSION_START)))   # SessionLog = 7


class EventsWriter:
    """Appends records to one new event file; `flush` pushes them to the OS (a write error is raised)."""

    def __init__(self, folder: Path, filename_suffix: str = ""):
        self.path = Path(folder) / (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
                                    f"{filename_suffix}")
        self._f = open(self.path, "ab")
        self.write(file_version_event(time.time()))
        self.flush()

    def write(self, event: bytes) -> None:
        self._f.write(record(event))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        try:
            self.flush()
            os.fsync(self._f.fileno())
        finally:
            self._f.close()
