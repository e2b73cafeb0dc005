"""Training parity: our jitted train step against a plain transformers + torch.optim.AdamW loop.

Every family (BERT, RoBERTa, XLNet, which pads on the left) and every head the study trains, for 20
float32 steps on tiny random models: per-step loss within 1e-4 relative, gradient norm, learning rate and
the parameters after the last step. Planted recipe bugs (LayerNorm decayed, schedule one step early) fail;
k accumulated micro-batches equal one batch of k times the rows; bfloat16 passes its looser tolerance.
"""
from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from repro.__main__ import main
from repro.training import train_parity as tp
from tests.support import tiny
from tests.support.paths import ROOT

# Measured on these tiny models (float32, 20 steps, lr 1e-4): final parameters differ by <= 2e-6; the check
# asks for 1e-5 so that a one-step recipe difference (~lr = 1e-4 per parameter) cannot pass.
PARAM_TOLERANCE = 1e-5
FAMILIES = {"bert": ("Bert", tiny.BERT), "roberta": ("Roberta", tiny.ROBERTA), "xlnet": ("XLNet", tiny.XLNET)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny random base model of each family, as a transformers folder."""
    out = {}
    for name, (prefix, config) in FAMILIES.items():
        folder = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        cfg = getattr(transformers, f"{prefix}Config")(**tiny.without_type(config))
        getattr(transformers, f"{prefix}Model")(cfg).save_pretrained(folder)
        out[name] = folder
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("head", tp.HEAD_KIND)
def test_every_family_and_head_trains_as_the_pytorch_loop(folders, family, head):
    r = tp.compare_training(folders[family], head, num_labels=3, steps_count=20, batch_size=3, length=12,
                            param_tolerance=PARAM_TOLERANCE)
    assert r.passed, tp.render(r)
    assert len(r.ours) == len(r.reference) == 20
    assert max(r.loss_rel) <= 1e-4
    assert r.padding_side == ("left" if family == "xlnet" else "right")
    # the loss moved: 20 steps trained something, so the comparison is not of two untrained models
    assert r.ours[-1].loss != r.ours[0].loss


@pytest.mark.parametrize("plant", tp.PLANTS)
def test_a_planted_recipe_difference_fails(folders, plant):
    recipe = tp.Recipe(weight_decay=0.1 if plant == "decay_layernorm" else 0.01, learning_rate=1e-3)
    r = tp.compare_training(folders["bert"], "token_classification", num_labels=3, steps_count=20, batch_size=3,
                            length=12, recipe=recipe, plant=plant, param_tolerance=PARAM_TOLERANCE)
    assert not r.passed
    fails = " ".join(r.failures())
    assert r.loss_rel[0] <= 1e-6   # the same first step: the plant acts on the update
    if plant == "schedule_shift":   # every update one step ahead: the losses part from step 2
        assert "loss rel diff" in fails
    else:   # the same rates; LayerNorm scales shrink and the parameters part
        assert "final params" in fails and "LayerNorm" in fails and max(r.lr_rel) <= 1e-6


def test_accumulation_of_k_micro_batches_is_one_batch_of_k_rows(folders):
    recipe = tp.Recipe(accumulation=2)
    r = tp.compare_training(folders["roberta"], "sequence_classification", num_labels=3, steps_count=8,
                            batch_size=2, length=12, recipe=recipe, param_tolerance=PARAM_TOLERANCE)
    assert r.passed, tp.render(r)
    # our k=2 run against our k=1 run over the concatenated batches: the same parameters
    from flax_models import loading
    import flax_models as fm
    quiet_dir = folders["roberta"].parent / "roberta-quiet"
    tp.no_dropout_folder(loading.resolve(folders["roberta"]), quiet_dir)
    micro = tp.make_batches(json.loads((quiet_dir / "config.json").read_text()), "sequence_classification", 8,
                            batch_size=2, length=12, num_labels=3, side="right")
    _, p_acc = tp.run_ours(fm.from_pretrained(quiet_dir, head="sequence_classification", num_labels=3),
                           "classification", micro, recipe)
    _, p_big = tp.run_ours(fm.from_pretrained(quiet_dir, head="sequence_classification", num_labels=3),
                           "classification", tp.concatenated(micro, 2), tp.Recipe(accumulation=1))
    import jax
    worst = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                for a, b in zip(jax.tree.leaves(p_acc), jax.tree.leaves(p_big)))
    assert worst <= 1e-6


def test_bfloat16_compute_within_its_stated_tolerance(folders):
    r = tp.compare_training(folders["bert"], "sequence_classification", num_labels=3, steps_count=10,
                            batch_size=3, length=12, dtype=jnp.bfloat16)
    assert r.dtype == "bfloat16" and r.loss_tolerance == tp.LOSS_TOLERANCE["bfloat16"]
    assert r.passed, tp.render(r)
    assert max(r.loss_rel) > 1e-6   # it really ran in bfloat16


def test_cli_prints_per_step_differences_and_pass_or_fail(folders, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["check-train-parity", str(folders["xlnet"]), "--head", "multiple_choice", "--steps", "5",
                 "--batch-size", "2", "--length", "10", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith("PASS") and "loss ours" in text and "padded on the left" in text
    assert len([line for line in text.splitlines() if line.strip()[:2].strip().isdigit()]) >= 5
    assert json.loads(out.read_text())["passed"] is True
    # a tolerance no float loop meets: FAIL and exit 1
    assert main(["check-train-parity", str(folders["xlnet"]), "--steps", "3", "--batch-size", "2", "--length", "10",
                 "--tolerance", "0", "--learning-rate", "1e-2"]) == 1
    assert "FAIL: loss rel diff" in capsys.readouterr().out


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["check-train-parity", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err


FINE_TUNE = ["configs/smoke.yaml", "cell.model=bert-tiny", "cell.intermediate_task=none",
             "target.epochs=1", "target.max_train_examples=96", "eval.max_examples=32"]


def test_fine_tune_parity_cli_trains_one_cell_both_ways(tmp_path, capsys, monkeypatch):
    """The reference run on a tiny tagging cell. Dropout off (config overrides): then the two runs are the
    same computation, so the losses agree to 1e-4 and the dev F1s are equal; with dropout the CLI reports both."""
    monkeypatch.chdir(ROOT)
    off = [f"models.bert-tiny.hf_config.{k}=0.0" for k in ("hidden_dropout_prob", "attention_probs_dropout_prob")]
    out = tmp_path / "ft.json"
    assert main(["fine-tune-parity", *FINE_TUNE, f"output_dir={tmp_path / 'o'}", "cell.target_task=synth_tagging",
                 *off, "--eval-every", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "final     package" in text
    r = json.loads(out.read_text())
    assert r["steps"] == 3 and r["metric"] == "f1" and r["dev_examples"] == 32
    assert [p["step"] for p in r["package"]["dev"]] == [p["step"] for p in r["pytorch"]["dev"]] == [2, 3]
    for a, b in zip(r["package"]["loss"], r["pytorch"]["loss"]):
        assert abs(a - b) <= 1e-4 * abs(b)
    assert [p["dev"] for p in r["package"]["dev"]] == pytest.approx([p["dev"] for p in r["pytorch"]["dev"]], abs=1e-6)


def test_fine_tune_parity_refuses_an_intermediate_cell(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["fine-tune-parity", *FINE_TUNE, f"output_dir={tmp_path / 'o'}", "cell.target_task=synth_sentiment",
                 "cell.intermediate_task=synth_int_sentiment"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "intermediate" in err
