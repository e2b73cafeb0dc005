"""Model files past tests/flax_models/test_hostile_checkpoints.py (issue 32): what an attacker controls in
config.json, the shard index, safetensors and torch headers (digits, nesting, ranks, a tensor in two shards)
is refused in one line naming the file, and an oversized tokenizer or config file is refused from its size
alone, before a byte of it is read (peak memory measured in a child process)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from flax_models import loading, remote_code, torch_format
from flax_models.errors import CheckpointError
from flax_models.weights import read_weights
from tests.flax_models.test_hostile_checkpoints import assert_one_line, bin_case, safetensors_file, state_pickle, tensor
from tests.support.paths import ROOT

DIGITS = b"9" * 5000   # past Python's int-conversion limit (4300 digits): json.loads raises a bare ValueError


def test_a_config_with_a_5000_digit_number_is_one_line_naming_it(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"model_type": "bert", "vocab_size": ' + DIGITS + b"}")
    with pytest.raises(ValueError, match=r"config\.json: not JSON \(Exceeds the limit") as err:
        loading.read_config(tmp_path)
    assert_one_line(err, str(tmp_path / "config.json"))


@pytest.mark.parametrize("header, message", [
    (b'{"w": {"dtype": "F32", "shape": [' + DIGITS + b'], "data_offsets": [0, 4]}}', "header is not UTF-8 JSON: Exceeds the limit"),
    (json.dumps({"w": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}).encode(),
     "tensor 'w': shape has 100 dimensions, over numpy's 64"),
])
def test_safetensors_headers_past_pythons_and_numpys_limits(tmp_path, header, message):
    path = safetensors_file(tmp_path / "model.safetensors", header, bytes(4))
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(")) as err:
        read_weights(tmp_path)
    assert_one_line(err, str(path))


def test_a_torch_tensor_of_100000_dimensions_is_refused(tmp_path):
    path = bin_case(tmp_path, state_pickle({"w": tensor("0", 4, 0, (1,) * 100_000, (1,) * 100_000)}), {"0": bytes(16)})
    with pytest.raises(CheckpointError, match="tensor 'w': 100000 dimensions, over numpy's 64") as err:
        torch_format.load_state_dict(path)
    assert_one_line(err, str(path))


@pytest.mark.parametrize("raw, message", [
    (b'{"weight_map": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "maximum recursion depth"),
    (b'{"weight_map": {"w": ' + DIGITS + b"}}", "Exceeds the limit"),
])
def test_a_hostile_shard_index_is_one_line_naming_it(tmp_path, raw, message):
    (tmp_path / "model.safetensors.index.json").write_bytes(raw)
    with pytest.raises(ValueError, match=rf"index\.json: not a safetensors index \({message}") as err:
        read_weights(tmp_path)
    assert_one_line(err, str(tmp_path / "model.safetensors.index.json"))


def test_a_tensor_in_two_shards_is_refused_not_overwritten(tmp_path):
    """The index maps `w` to one shard, a second shard carries a `w` as well: which one transformers would
    keep depends on the order it reads them; refuse instead of keeping either silently."""
    f32 = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    safetensors_file(tmp_path / "a.safetensors", {"w": f32}, bytes(4))
    safetensors_file(tmp_path / "b.safetensors", {"w": f32, "v": {**f32, "data_offsets": [4, 8]}}, bytes(8))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "a.safetensors",
                                                                                      "v": "b.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"b\.safetensors: tensor 'w' is also in a\.safetensors") as err:
        read_weights(tmp_path)
    assert_one_line(err)


PEAK = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from flax_models import remote_code
    results = []
    for folder in sys.argv[1:]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            remote_code.refuse_remote_code(Path(folder))
            error = None
        except ValueError as e:
            error = str(e)
        results.append({"error": error, "growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before})
    print(json.dumps(results))
""")
OVERSIZED = {"tokenizer.json": 300 * 2**20, "tokenizer_config.json": 100 * 2**20, "spiece.model": 2**40}


def test_an_oversized_tokenizer_file_is_refused_by_its_size_unread(tmp_path):
    """Sparse files as large as their names claim (a 1 TB sentencepiece model): refused from stat alone,
    with the child's peak memory growing by less than 20 MB for each."""
    folders = []
    for name, size in OVERSIZED.items():
        folders.append(tmp_path / name.replace(".", "_"))
        folders[-1].mkdir()
        with open(folders[-1] / name, "wb") as f:
            f.truncate(size)
    run = subprocess.run([sys.executable, "-c", PEAK, *map(str, folders)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"})
    assert run.returncode == 0, run.stderr[-2000:]
    for folder, (name, size), result in zip(folders, OVERSIZED.items(), json.loads(run.stdout.strip().splitlines()[-1])):
        assert result["error"] and result["error"].startswith(f"{folder / name}: {size:,} bytes, over the "), result
        assert result["growth_kb"] < 20 * 1024, result
