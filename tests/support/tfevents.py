"""Reads TensorBoard event files back (no tensorboard needed): the TFRecord framing, checked with its masked
CRC-32C as TensorBoard checks it, and each record parsed as an `Event` protobuf (tensorboardX's copy of
tensorflow/core/util/event.proto)."""
from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path

from repro.training.tfevents import masked   # checked against tensorboardX's own in tests/repro/test_tracking.py


def records(path: Path) -> list[bytes]:
    """The payloads of a TFRecord file; a bad length or data CRC fails the test."""
    data, out, pos = Path(path).read_bytes(), [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert length_crc == masked(header), f"{path}: bad length CRC at byte {pos}"
        payload = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert data_crc == masked(payload), f"{path}: bad data CRC at byte {pos}"
        out.append(payload)
        pos += 16 + length
    return out


def events(folder: Path) -> list:
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for payload in records(path):
            e = Event()
            e.ParseFromString(payload)
            out.append(e)
    return out


def scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> step -> value of every scalar summary in the folder's event files."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for e in events(folder):
        for v in e.summary.value:
            out[v.tag][e.step] = v.simple_value
    return dict(out)
