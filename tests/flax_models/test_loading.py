"""from_pretrained / from_config / abstract_model / transfer_encoder: what a user sees when loading."""
from __future__ import annotations

import json
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from safetensors.numpy import load_file, save_file

import flax_models as fm
from tests.support import tiny
from flax_models import loading

TINY = tiny.BERT_LIKE
IDS = np.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 9, 10, 11, 12, 13, 14, 3]])
MASK = (IDS != 0).astype(np.int32)


def torch_hidden(model, ids=IDS, mask=MASK):
    with torch.no_grad():
        out = model(torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True)
    return out.hidden_states[-1].numpy()


def save_torch(cls, folder, **config):
    torch.manual_seed(0)
    model = cls(transformers.BertConfig(**{**TINY, **config})).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def bert_base_dir(tmp_path_factory):
    """A BertModel saved alone: no `bert.` prefix, as the hub's base checkpoints."""
    folder = tmp_path_factory.mktemp("bert-model")
    return save_torch(transformers.BertModel, folder), folder


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_model_type_names_it_and_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError) as err:
        fm.from_pretrained(tmp_path)
    message = one_line(err)
    assert "'gpt2'" in message and "bert" in message and "xlm-roberta" in message


def test_missing_weights_file_names_the_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **TINY}))
    with pytest.raises(FileNotFoundError) as err:
        fm.from_pretrained(tmp_path)
    assert str(tmp_path) in one_line(err) and "model.safetensors" in str(err.value)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found") as err:
        fm.from_pretrained(tmp_path / "nope")
    one_line(err)


def test_wrong_shape_names_key_and_both_shapes(bert_base_dir, tmp_path):
    _, folder = bert_base_dir
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "vocab_size": 120}))
    with pytest.raises(ValueError) as err:
        fm.from_pretrained(tmp_path)
    message = one_line(err)
    assert "'embeddings.word_embeddings.weight'" in message
    assert "expected shape (120, 32), found (99, 32)" in message


def test_hub_id_offline_fails_fast_naming_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OSError) as err:
        fm.from_pretrained("no-such-org/no-such-model-xt")
    assert time.perf_counter() - start < 10
    message = one_line(err)
    assert "no-such-org/no-such-model-xt" in message and "HF_HUB_OFFLINE" in message


def test_bare_backbone_checkpoint_into_a_head(bert_base_dir, caplog):
    reference, folder = bert_base_dir
    with caplog.at_level(logging.WARNING, logger="flax_models.loading"):
        model = fm.from_pretrained(folder, head="sequence_classification", num_labels=4)
    assert model.loading_info.missing == ("classifier.bias", "classifier.weight")
    assert model.loading_info.unexpected == ()
    assert "classifier.weight" in caplog.text  # reported by name
    assert model(IDS, MASK).logits.shape == (2, 4)
    np.testing.assert_allclose(np.asarray(model(IDS, MASK).last_hidden_state), torch_hidden(reference), atol=1e-4)


def test_pretraining_checkpoint_reports_unused_heads(tmp_path):
    reference = save_torch(transformers.BertForPreTraining, tmp_path)
    model = fm.from_pretrained(tmp_path)
    assert model.loading_info.missing == ()
    assert model.loading_info.unexpected and all(k.startswith("cls.") for k in model.loading_info.unexpected)
    np.testing.assert_allclose(np.asarray(model(IDS, MASK).last_hidden_state), torch_hidden(reference), atol=1e-4)


def test_head_checkpoint_into_bare_backbone_and_old_layernorm_names(tmp_path):
    reference = save_torch(transformers.BertForTokenClassification, tmp_path, num_labels=3)
    weights = load_file(tmp_path / "model.safetensors")
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in weights.items()}
    assert renamed.keys() != weights.keys()
    save_file(renamed, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model = fm.from_pretrained(tmp_path)
    assert model.loading_info.unexpected == ("classifier.bias", "classifier.weight")
    assert model.loading_info.missing == tuple(sorted(f"pooler.dense.{p}" for p in ("bias", "weight")))
    np.testing.assert_allclose(np.asarray(model(IDS, MASK).last_hidden_state), torch_hidden(reference), atol=1e-4)


def test_pytorch_model_bin(bert_base_dir, tmp_path):
    reference, folder = bert_base_dir
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    model = fm.from_pretrained(tmp_path)
    assert model.loading_info.missing == () and model.loading_info.unexpected == ()
    assert model.loading_info.source.endswith("pytorch_model.bin")


def test_num_labels_defaults_to_the_config(tmp_path):
    save_torch(transformers.BertForSequenceClassification, tmp_path, num_labels=4)
    model = fm.from_pretrained(tmp_path, head="sequence_classification")
    assert model.num_labels == 4 and model.loading_info.missing == ()
    assert model.config["id2label"] == {str(i): f"LABEL_{i}" for i in range(4)}
    with pytest.raises(ValueError, match="unknown head 'ner'"):
        fm.from_pretrained(tmp_path, head="ner")


def test_from_config_initialises_like_transformers(tmp_path):
    config = {"model_type": "roberta", **TINY, "initializer_range": 0.05, "hidden_size": 64,
              "intermediate_size": 256}
    model = fm.from_config(config, head="sequence_classification", num_labels=2, seed=3)
    layer = model.roberta.encoder.layer[1]
    assert abs(float(jnp.std(layer.intermediate.dense.kernel[...])) - 0.05) < 0.005
    assert abs(float(jnp.std(model.roberta.embeddings.word_embeddings.embedding[...])) - 0.05) < 0.005
    assert float(jnp.abs(layer.output.dense.bias[...]).max()) == 0.0
    assert float(jnp.abs(layer.output.LayerNorm.scale[...] - 1).max()) == 0.0
    assert model.config["architectures"] == ["RobertaForSequenceClassification"]
    embeddings = model.roberta.embeddings  # the padding_idx rows start at zero, as nn.Embedding(padding_idx)
    assert float(jnp.abs(embeddings.word_embeddings.embedding[1]).max()) == 0.0
    assert float(jnp.abs(embeddings.position_embeddings.embedding[1]).max()) == 0.0
    assert float(jnp.abs(embeddings.word_embeddings.embedding[2]).max()) > 0.0
    (tmp_path / "config.json").write_text(json.dumps(config))
    for source in (tmp_path, tmp_path / "config.json"):
        again = fm.from_config(source, head="sequence_classification", num_labels=2, seed=3)
        np.testing.assert_array_equal(again.classifier.out_proj.kernel[...], model.classifier.out_proj.kernel[...])


def test_abstract_model_allocates_nothing():
    config = {"model_type": "bert", **TINY}
    model = fm.abstract_model(config, head="question_answering")
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert leaves and all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)
    assert model.bert.embeddings.word_embeddings.embedding.shape == (99, 32)
    assert model.head == "question_answering" and model.family == "bert"


def test_transfer_encoder_keeps_the_fresh_head(tmp_path):
    config = {"model_type": "bert", **TINY}
    src = fm.from_config(config, head="sequence_classification", num_labels=3, seed=1)
    dst = fm.from_config(config, head="token_classification", num_labels=7, seed=2)
    head_before = np.asarray(dst.classifier.kernel[...])
    copied = fm.transfer_encoder(src, dst)
    assert "bert.embeddings.word_embeddings.weight" in copied
    assert not any(k.startswith(("bert.pooler", "classifier")) for k in copied)  # dst has no pooler
    assert len(copied) == 5 + 2 * 16  # embeddings (3 tables + LayerNorm) and 16 tensors per layer
    np.testing.assert_array_equal(np.asarray(dst(IDS, MASK).last_hidden_state),
                                  np.asarray(src(IDS, MASK).last_hidden_state))
    np.testing.assert_array_equal(np.asarray(dst.classifier.kernel[...]), head_before)
    bare = fm.from_config(config, seed=4)  # a bare backbone (no prefix) receives the same names, pooler too
    assert len(fm.transfer_encoder(src, bare)) == len(copied) + 2


def test_registry_maps_every_model_type_to_its_family():
    from flax_models import bert, families, roberta, xlnet

    assert families.family_modules() == {"bert": bert, "roberta": roberta, "xlm-roberta": roberta,
                                         "xlnet": xlnet}
    with pytest.raises(ValueError, match=r"unknown model_type \['bert'\]; supported: bert, roberta, "):
        families.family_for(["bert"])


def test_save_pretrained_writes_a_loadable_config(tmp_path):
    config = {"model_type": "xlm-roberta", **TINY, "pad_token_id": 1, "type_vocab_size": 1}
    model = fm.from_config(config, head="token_classification", num_labels=5)
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["architectures"] == ["XLMRobertaForTokenClassification"]
    assert written["num_labels"] == 5 and len(written["id2label"]) == 5
    reloaded = fm.from_pretrained(tmp_path, head="token_classification")
    assert reloaded.num_labels == 5 and reloaded.loading_info.missing == ()
    np.testing.assert_array_equal(np.asarray(reloaded(IDS + 2).logits), np.asarray(model(IDS + 2).logits))


# ---------------------------------------------------------------------------------------------------------
# resolve(): one weight format from the hub, one line per way the hub can fail (no network: a fake hub)


class FakeHub:
    """snapshot_download over a fixed list of repository files: copies those the patterns select."""

    def __init__(self, root, files):
        self.root, self.files, self.calls = root, files, []

    def __call__(self, repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        import fnmatch

        self.calls.append(list(allow_patterns))
        folder = self.root / repo_id.replace("/", "--")
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.files:
            if any(fnmatch.fnmatch(name, p) for p in allow_patterns):
                (folder / name).write_text("x")
        return str(folder)


@pytest.mark.parametrize("files, fetched, calls", [
    (["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "tokenizer.json"],
     {"config.json", "model.safetensors", "tokenizer.json"}, 1),
    (["config.json", "pytorch_model.bin", "spiece.model"], {"config.json", "pytorch_model.bin", "spiece.model"}, 2),
    (["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
      "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"],
     {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
      "model.safetensors.index.json", "pytorch_model.bin.index.json"}, 1),
], ids=["both", "bin-only", "sharded"])
def test_resolve_downloads_one_weight_format(tmp_path, monkeypatch, files, fetched, calls):
    import huggingface_hub

    hub = FakeHub(tmp_path, files)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    folder = loading.resolve("org/model")
    assert {p.name for p in folder.iterdir()} == fetched   # the .bin only where there is no safetensors
    assert len(hub.calls) == calls and not any(p.endswith(".bin") for p in hub.calls[0])


def _hub_error(cls, message):
    """An instance of a huggingface_hub error without its HTTP response (the constructors differ by version)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


@pytest.mark.parametrize("error, why", [
    ("GatedRepoError", "the repository is gated"),
    ("RepositoryNotFoundError", "no such repository on the hub"),
    ("RevisionNotFoundError", "the revision does not exist"),
    ("LocalEntryNotFoundError", "the hub cannot be reached and it is not in the local cache"),
    ("HfHubHTTPError", "HTTP error from the hub: 503 Server Error"),
    ("ConnectionResetError", "ConnectionResetError: reset by peer"),
])
def test_resolve_hub_errors_are_one_line_naming_the_model(monkeypatch, error, why):
    import huggingface_hub
    from huggingface_hub import errors

    if error == "ConnectionResetError":  # the HTTP client's connection errors are OSErrors or TransportErrors
        raised = ConnectionResetError("reset by peer")
    else:
        raised = _hub_error(getattr(errors, error), "503 Server Error: boom\nsecond line")

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(OSError) as err:
        loading.resolve("org/model")
    message = one_line(err)
    assert message.startswith("cannot get model 'org/model' from the Hugging Face hub: ") and why in message
    assert err.value.__cause__ is raised


def test_resolve_does_not_swallow_bugs(monkeypatch):
    import huggingface_hub

    def bug(*args, **kwargs):
        raise KeyError("a bug, not a hub error")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", bug)
    with pytest.raises(KeyError):
        loading.resolve("org/model")
