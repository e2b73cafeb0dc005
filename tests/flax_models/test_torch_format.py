"""pytorch_model.bin without torch: torch writes the files here, a torch-less subprocess reads them."""
from __future__ import annotations

import collections
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
import transformers

from flax_models import torch_format
from tests.support import tiny
from tests.support.paths import ROOT

# Imported first in the subprocess: any `import torch` (or torch.*) fails there, as on a machine without it.
BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here (blocked by the test)")
    sys.meta_path.insert(0, NoTorch())
""")


def run_without_torch(code: str, tmp_path) -> None:
    script = BLOCK_TORCH + textwrap.dedent(code) + "\nassert not any(m == 'torch' or m.startswith('torch.') " \
                                                   "for m in sys.modules), 'torch was imported'\n"
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1",
                              "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]


def state_dict() -> dict[str, torch.Tensor]:
    """Every layout torch.save produces for a state dict: shared, strided and offset storages, three float
    types, an integer buffer, a Parameter, a 0-d and an empty tensor."""
    torch.manual_seed(0)
    big = torch.randn(6, 5)
    return collections.OrderedDict(
        plain=big,
        transposed=big.t(),                 # the same storage, strides (1, 5)
        offset=big[2:4, 1:],                # storage offset 11, strides (5, 1)
        every_other=big[::2],               # strides (10, 1)
        half=torch.randn(3, 4).half(),
        bf16=torch.randn(7).bfloat16(),
        float64=torch.randn(2, 2, dtype=torch.float64),
        position_ids=torch.arange(9)[None],
        param=torch.nn.Parameter(torch.randn(4)),
        scalar=torch.tensor(2.5),
        empty=torch.zeros(0, 3),
    )


def test_state_dict_bitwise_equal_to_torch_load_without_torch(tmp_path):
    torch.save(state_dict(), tmp_path / "weights.bin")
    run_without_torch(f"""
        import numpy as np
        from flax_models.torch_format import load_state_dict
        state = load_state_dict({str(tmp_path / "weights.bin")!r})
        np.savez({str(tmp_path / "ours.npz")!r}, **{{k: v.view(np.uint16) if v.dtype.name == "bfloat16" else v
                                                    for k, v in state.items()}})
        print(sorted((k, v.dtype.name) for k, v in state.items()))
    """, tmp_path)
    ours = np.load(tmp_path / "ours.npz")
    reference = torch.load(tmp_path / "weights.bin", weights_only=True)
    assert set(ours.files) == set(reference)
    for key, tensor in reference.items():
        tensor = tensor.detach().contiguous()
        expected = tensor.view(torch.uint16).numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
        assert ours[key].shape == expected.shape and ours[key].dtype == expected.dtype, key
        assert ours[key].tobytes() == expected.tobytes(), key


def test_from_pretrained_reads_a_bin_only_checkpoint_without_torch(tmp_path):
    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(
        transformers.BertConfig(**tiny.without_type(tiny.BERT), num_labels=3)).eval()
    reference.half().float()  # values a float16 round trip keeps, so the half checkpoint below is exact
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        reference.config.save_pretrained(tmp_path / name)
        torch.save({k: v.to(dtype) for k, v in reference.state_dict().items()}, tmp_path / name / "pytorch_model.bin")
    ids = np.array([[2, 5, 6, 7, 0, 0], [2, 9, 10, 11, 12, 3]])
    np.save(tmp_path / "ids.npy", ids)
    run_without_torch(f"""
        import numpy as np
        import flax_models as fm
        ids = np.load({str(tmp_path / "ids.npy")!r})
        for name in ("fp32", "fp16"):
            model = fm.from_pretrained({str(tmp_path)!r} + "/" + name, head="sequence_classification")
            assert model.loading_info.missing == () and model.loading_info.source.endswith("pytorch_model.bin")
            np.save({str(tmp_path)!r} + f"/{{name}}-logits.npy", np.asarray(model(ids, (ids != 0)).logits))
    """, tmp_path)
    with torch.no_grad():
        expected = reference(torch.tensor(ids), attention_mask=torch.tensor(ids != 0)).logits.numpy()
    for name in ("fp32", "fp16"):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}-logits.npy"), expected, atol=1e-5)


def test_legacy_format_is_refused_in_one_line(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "old.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="legacy \\(pre-1.6, non-zip\\) PyTorch checkpoint format") as err:
        torch_format.load_state_dict(tmp_path / "old.bin")
    assert "\n" not in str(err.value) and "old.bin" in str(err.value)


class _Exploit:
    def __reduce__(self):
        return (print, ("code from the checkpoint ran",))


def test_code_in_the_pickle_never_runs(tmp_path, capsys):
    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps({"w": _Exploit()}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load (__builtin__|builtins).print") as err:
        torch_format.load_state_dict(path)
    assert "\n" not in str(err.value) and "evil.bin" in str(err.value)
    assert "code from the checkpoint ran" not in capsys.readouterr().out


def test_storage_shorter_than_the_pickle_declares_is_an_error(tmp_path):
    """A storage member cut short is refused before anything is read from it (a tensor that overruns a
    storage of the declared size: tests/flax_models/test_hostile_checkpoints.py)."""
    torch.save({"w": torch.ones(4)}, tmp_path / "w.bin")
    with zipfile.ZipFile(tmp_path / "w.bin") as src, zipfile.ZipFile(tmp_path / "cut.bin", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:8] if item.filename.endswith("/data/0") else data)
    with pytest.raises(ValueError, match="zip member w/data/0 holds 8 bytes, but the pickle declares 16"):
        torch_format.load_state_dict(tmp_path / "cut.bin")


def test_safetensors_preferred_and_dtypes_widened(tmp_path):
    """A folder with both formats reads model.safetensors; bfloat16 / float16 become exact float32."""
    from safetensors.torch import save_file

    from flax_models.weights import ALIGN, read_weights

    tensors = {"a": torch.randn(3, 5).bfloat16(), "b": torch.randn(4).half(), "c": torch.randn(2, 3),
               "embeddings.position_ids": torch.arange(5)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    torch.save({"other": torch.ones(1)}, tmp_path / "pytorch_model.bin")
    weights, source = read_weights(tmp_path)
    assert source.endswith("model.safetensors") and set(weights) == {"a", "b", "c"}
    for key in weights:
        assert weights[key].dtype == np.float32 and weights[key].ctypes.data % ALIGN == 0
        assert weights[key].tobytes() == tensors[key].float().numpy().tobytes(), key
    json.dumps({k: v.shape for k, v in weights.items()})


def test_truncated_or_foreign_safetensors_is_one_line(tmp_path):
    from safetensors.numpy import save_file

    from flax_models.weights import read_weights

    save_file({"w": np.ones((64, 64), np.float32)}, str(tmp_path / "model.safetensors"))
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated; tensor 'w' ends past the end of the file") as err:
        read_weights(tmp_path)
    assert "\n" not in str(err.value) and "model.safetensors" in str(err.value)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_weights(tmp_path)
