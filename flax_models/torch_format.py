"""PyTorch's `torch.save` checkpoint format read without torch: `pytorch_model.bin` -> numpy arrays.

Some hub checkpoints (xlnet-base-cased among them) ship only `pytorch_model.bin`, and torch is not a run
dependency. Since torch 1.6 the format is a zip archive (torch/serialization.py, `_save`), every member
stored uncompressed:

    <archive>/data.pkl     a pickle of the state dict; each tensor is the call
                           torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
                           whose storage is the persistent id ('storage', torch.<Type>Storage, key, device, numel)
    <archive>/data/<key>   the raw bytes of storage <key> (little-endian unless <archive>/byteorder says "big")

The file is untrusted, so nothing is allocated for what it claims before the claim is checked:

1. the central directory is at most MAX_CENTRAL_DIRECTORY bytes (zipfile holds about ten times that);
2. data.pkl is stored and at most MAX_PICKLE_BYTES; its opcodes are scanned before it is unpickled, refusing
   a memo index beyond the objects made so far (the C unpickler sizes its memo array by the largest index: a
   six-byte opcode could ask for 32 GB) and a length past the pickle's end;
3. the unpickler resolves only the names that rebuild tensors (`find_class` refuses everything else, so no
   code in the file runs) and records each tensor as (storage, offset, size, stride), reading nothing;
4. each storage a kept tensor uses is a stored member whose size is the pickle's numel x element size and
   lies inside the file; each tensor lies inside its storage and holds no more elements than it; the tensors
   that must be copied out (strided or partial views) need no more bytes than their storages;
5. only then are those storages read, in chunks, straight into aligned buffers. A tensor that is its whole
   storage is that buffer; any other is copied out of it.

A compressed member is refused (torch.save never compresses; a compressed member is how a zip bomb
inflates). The legacy pre-1.6 (non-zip) format is refused too. Each refusal is one `CheckpointError` line
naming the file and the tensor or zip member.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import ml_dtypes
import numpy as np

from flax_models.errors import CheckpointError
from flax_models.host_buffers import aligned_empty

MAX_PICKLE_BYTES = 16 * 2**20          # a state dict pickles to ~150 bytes a tensor: 100,000 tensors fit
MAX_CENTRAL_DIRECTORY = 16 * 2**20     # ~100 bytes a member in torch.save's layout
_CHUNK = 2**20  # small reads: a freed large one stays resident (glibc raises its mmap threshold)
# torch.<Name>Storage -> element type (torch/storage.py's legacy typed storages, as pickles name them).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "BFloat16Storage": ml_dtypes.bfloat16,
    "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_MEMO_WRITES = {"PUT", "BINPUT", "LONG_BINPUT"}


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _Storage(NamedTuple):
    key: str
    dtype: np.dtype
    numel: int


class _Tensor(NamedTuple):
    """A tensor as the pickle describes it; nothing read yet."""

    storage: object
    offset: object
    size: object
    stride: object


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only tensors and dicts are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and _is_count(pid[4])):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage = _Storage(pid[2], pid[1].dtype, pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise pickle.UnpicklingError(f"storage {storage.key!r} is declared twice, differently")
        return storage


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _central_directory_size(path: Path, size: int) -> int:
    """The central directory's size as zipfile will read it: from the end record (at the very end, else the
    last one within a comment's reach), overridden by a zip64 end record where a locator points to one
    (torch.save always writes one). Either zip64 record a reader might take counts: the one just before the
    locator (Python 3.11's zipfile) and the one at the locator's offset."""
    with open(path, "rb") as f:
        tail_start = max(0, size - 22 - 65535)
        f.seek(tail_start)
        tail = f.read()
        at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
        if at < 0:
            raise CheckpointError(f"{path}: not a zip archive (no end of central directory record)")
        (cd_size,) = struct.unpack_from("<I", tail, at + 12)
        locator_at = tail_start + at - 20
        if locator_at < 0:
            return cd_size
        f.seek(locator_at)
        locator = f.read(20)
        if locator[:4] != b"PK\x06\x07":
            return cd_size
        (record_offset,) = struct.unpack_from("<Q", locator, 8)
        for offset in {locator_at - 56, record_offset}:
            if 0 <= offset <= size - 56:
                f.seek(offset)
                record = f.read(56)
                if record[:4] == b"PK\x06\x06":
                    cd_size = max(cd_size, struct.unpack_from("<Q", record, 40)[0])
    return cd_size


def _scan_pickle(path: Path, member: str, data: bytes) -> None:
    """Refuses opcodes that would make the unpickler allocate far more than the pickle holds."""
    made = 0
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in _MEMO_WRITES:
                if arg > made:
                    raise CheckpointError(f"{path}: {member}: memo index {arg} but only {made} objects made "
                                          "(torch.save numbers them in order)")
                made += 1
            elif opcode.name == "MEMOIZE":
                made += 1
    except ValueError as err:  # truncated, a declared length past the end, an unknown opcode
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: {member}: not a valid pickle ({err})") from err


class _Archive:
    """The members of an open zip archive, each checked before it is read."""

    def __init__(self, zip_file: zipfile.ZipFile, path: Path):
        self.zip, self.path, self.size = zip_file, path, path.stat().st_size
        self.members = {info.filename: info for info in zip_file.infolist()}
        pickles = [n for n in self.members if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected one <archive>/data.pkl, "
                                  f"found {len(pickles)})")
        self.prefix = pickles[0].split("/")[0]
        order_file = f"{self.prefix}/byteorder"
        order = self.read_small(order_file, 16).decode(errors="replace").strip() \
            if order_file in self.members else "little"
        if order not in ("little", "big"):
            raise CheckpointError(f"{path}: zip member {order_file} says {order!r:.20}, not 'little' or 'big'")
        self.byteorder = "<" if order == "little" else ">"

    def stored(self, name: str, nbytes: int | None = None, limit: int | None = None) -> zipfile.ZipInfo:
        """The member's entry once it is known to be stored, inside the file, and of the expected size."""
        info = self.members.get(name)
        if info is None:
            raise CheckpointError(f"{self.path}: zip member {name} is missing")
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{self.path}: zip member {name} is compressed (torch.save stores members "
                                  "uncompressed; a compressed one can inflate without bound)")
        if info.file_size != info.compress_size or info.header_offset + info.compress_size > self.size:
            raise CheckpointError(f"{self.path}: zip member {name} claims {info.file_size} bytes, past the "
                                  f"end of the {self.size}-byte file")
        if nbytes is not None and info.file_size != nbytes:
            raise CheckpointError(f"{self.path}: zip member {name} holds {info.file_size} bytes, but the pickle "
                                  f"declares {nbytes}")
        if limit is not None and info.file_size > limit:
            raise CheckpointError(f"{self.path}: zip member {name} is {info.file_size} bytes, over the "
                                  f"{limit}-byte limit")
        return info

    def read_small(self, name: str, limit: int) -> bytes:
        buffer = bytearray(self.stored(name, limit=limit).file_size)
        self.read_into(name, memoryview(buffer))
        return bytes(buffer)

    def read_into(self, name: str, view: memoryview) -> None:
        """The member's bytes into `view` (its checked size), in chunks: never the whole member at once."""
        done = 0
        try:
            with self.zip.open(self.members[name]) as f:  # zipfile checks the local header and, at the end, the CRC
                while done < len(view):
                    chunk = f.read(min(_CHUNK, len(view) - done))
                    if not chunk:
                        break
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
        except (zipfile.BadZipFile, EOFError) as err:
            raise CheckpointError(f"{self.path}: zip member {name} cannot be read ({err})") from err
        if done != len(view):
            raise CheckpointError(f"{self.path}: zip member {name} is truncated ({done} of {len(view)} bytes)")


MAX_RANK = 64   # numpy's limit on an array's dimensions


def _check_tensor(path: Path, name: str, tensor: _Tensor) -> int:
    """The tensor's element count, once its layout is known to lie inside its storage."""
    storage, offset, size, stride = tensor
    where = f"{path}: tensor {name!r}"
    if not (_is_count(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(map(_is_count, size + stride))):
        raise CheckpointError(f"{where}: offset {offset!r:.40}, size {size!r:.60}, stride {stride!r:.60} are not "
                              "non-negative integers of one rank")
    if len(size) > MAX_RANK:   # numpy cannot hold it ("number of dimensions must be within [0, 64]")
        raise CheckpointError(f"{where}: {len(size)} dimensions, over numpy's {MAX_RANK}")
    numel = math.prod(size)
    if numel == 0:
        return 0
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel or numel > storage.numel:
        raise CheckpointError(f"{where}: size {size}, stride {stride} at offset {offset} overruns its storage of "
                              f"{storage.numel} elements")
    return numel


def _is_whole(tensor: _Tensor, byteorder: str) -> bool:
    """The tensor is its storage, laid out contiguously in native byte order: no copy needed."""
    storage, offset, size, stride = tensor
    contiguous = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
    return (offset == 0 and math.prod(size) == storage.numel and
            all(s == c for n, s, c in zip(size, stride, contiguous) if n > 1) and
            storage.dtype.newbyteorder(byteorder).isnative)


def load_state_dict(path: str | Path,
                    keep: Callable[[str, np.dtype], bool] = lambda name, dtype: True) -> dict[str, np.ndarray]:
    """The tensors of a torch.save'd state dict for which keep(name, dtype) holds, as numpy arrays of their
    own dtype (bfloat16 via ml_dtypes) in aligned buffers; storages only the others use are not read."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: legacy (pre-1.6, non-zip) PyTorch checkpoint format; re-save it with "
                              "torch >= 1.6 or convert it to model.safetensors")
    cd_size = _central_directory_size(path, path.stat().st_size)
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise CheckpointError(f"{path}: zip central directory of {cd_size} bytes exceeds the "
                              f"{MAX_CENTRAL_DIRECTORY}-byte limit")
    try:
        zip_file = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable zip archive ({err})") from err
    with zip_file:
        archive = _Archive(zip_file, path)
        kept = _read_pickle(archive, keep)
        storages = _check_storages(archive, kept)
        buffers = {}
        for key, (storage, member) in storages.items():
            buffers[key] = aligned_empty((storage.numel,), storage.dtype.newbyteorder(archive.byteorder))
            archive.read_into(member, memoryview(buffers[key].view(np.uint8)))
    return {name: _materialise(tensor, buffers[tensor.storage.key], archive.byteorder)
            for name, tensor in kept.items()}


def _read_pickle(archive: _Archive, keep: Callable[[str, np.dtype], bool]) -> dict[str, _Tensor]:
    """The state dict's kept tensors as the pickle describes them (nothing else read)."""
    path, member = archive.path, f"{archive.prefix}/data.pkl"
    data = archive.read_small(member, MAX_PICKLE_BYTES)
    _scan_pickle(path, member, data)
    try:
        state = _Unpickler(data).load()
    except (pickle.UnpicklingError, TypeError, ValueError, EOFError, KeyError, IndexError, AttributeError,
            RecursionError) as err:
        raise CheckpointError(f"{path}: cannot read the PyTorch checkpoint: {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {member} holds a {type(state).__name__}, not a state dict")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, _Tensor):
            raise CheckpointError(f"{path}: state dict entry {name!r:.80} is a {type(tensor).__name__}, "
                                  "not a tensor")
        if not isinstance(tensor.storage, _Storage):
            raise CheckpointError(f"{path}: tensor {name!r}: its storage is a {type(tensor.storage).__name__}")
    return {name: tensor for name, tensor in state.items() if keep(name, tensor.storage.dtype)}


def _check_storages(archive: _Archive, kept: dict[str, _Tensor]) -> dict[str, tuple[_Storage, str]]:
    """storage key -> (storage, zip member) for the storages the kept tensors use, each tensor and member
    checked against the other; the views' copies may need no more bytes than the storages hold."""
    copied, storages = 0, {}
    for name, tensor in kept.items():
        numel = _check_tensor(archive.path, name, tensor)
        storage = tensor.storage
        if storage.key not in storages:
            member = f"{archive.prefix}/data/{storage.key}"
            archive.stored(member, nbytes=storage.numel * storage.dtype.itemsize)
            storages[storage.key] = (storage, member)
        if numel and not _is_whole(tensor, archive.byteorder):
            copied += numel * storage.dtype.itemsize
    held = sum(storage.numel * storage.dtype.itemsize for storage, _ in storages.values())
    if copied > held:
        raise CheckpointError(f"{archive.path}: its tensors' views would copy {copied} bytes out of {held} bytes "
                              "of storage (overlapping views)")
    return storages


def _materialise(tensor: _Tensor, flat: np.ndarray, byteorder: str) -> np.ndarray:
    native = flat.dtype.newbyteorder("=")
    if math.prod(tensor.size) == 0:
        return np.empty(tensor.size, native)
    if _is_whole(tensor, byteorder):
        return flat.reshape(tensor.size)
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset:], shape=tensor.size, writeable=False,
                                           strides=tuple(s * flat.dtype.itemsize for s in tensor.stride))
    out = aligned_empty(tensor.size, native)
    np.copyto(out, view)
    return out
