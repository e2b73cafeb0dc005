"""The fine-tuning reference run: one real cell's target phase trained by the package and by a PyTorch loop.

`python -m repro fine-tune-parity CONFIG [a.b=value ...]` resolves the config's cell (as `run` does), trains its
target phase twice from the same initialisation on the same batches, with the recipe's dropout on both sides
(the random streams differ, so the runs differ by about seed-to-seed noise, not more): once with the package's
jitted train step (repro.training.train_parity.run_ours), once with transformers' class for the head and
torch.optim.AdamW (run_reference). Both are scored every `eval_every` steps on the same English dev examples
(the cell's fixed evaluation sample) by the same scorer. docs/training.md has the figures for e5-small on
real UD-POS with the mini recipe.
"""
from __future__ import annotations

import dataclasses
import tempfile
import types
from pathlib import Path

import jax
import numpy as np

import data_prep as dp
import flax_models as fm
from flax_models import loading
from flax_models.families import head_class_name
from repro.study import cell, inputs
from repro.training import distributed, inference, steps
from repro.training import train_parity as tp
from repro.training.loop import phase_steps


def fine_tune_both(cfg, eval_every: int = 10) -> dict:
    """One cell's target phase (cfg: a repro Config with `cell` set, no intermediate task) trained twice from
    the same initialisation on the same batches — by the package's jitted train step and by the PyTorch
    loop — with the recipe's dropout on both sides, each scored on the same English dev examples
    (cfg.eval.max_examples, the cell's evaluation sample) by the same scorer (data_prep via
    repro.training.inference.score) every `eval_every` steps and at the end."""
    torch, _ = tp._torch()
    if cfg.intermediate_task is not None:
        raise ValueError("train parity: the reference run trains a cell without an intermediate task")
    mesh = distributed.make_mesh(cfg.mesh.data)
    tokenizer = inputs.tokenizer_for(cfg)
    target = dp.get_task(cfg.cell.target_task)
    head, num_labels = steps.head_for(target)
    phase = cell.TrainingData(cfg, target, cfg.target, tokenizer, mesh, "target")
    plan = phase.plan
    total = phase_steps(plan.epochs, len(phase.batcher), plan.max_steps)
    keys = ("input_ids", "attention_mask", "token_type_ids", "example_mask") + steps.label_keys(plan.kind)
    batches, epoch = [], 0
    while len(batches) < total:
        batches += [{k: b[k] for k in keys if k in b} for b, _ in phase.batcher.iterate(epoch)]
        epoch += 1
    batches = batches[:total]
    o = plan.optimizer
    recipe = tp.Recipe(learning_rate=o.learning_rate, weight_decay=o.weight_decay, warmup_fraction=o.warmup_fraction,
                    clip_norm=o.clip_norm, accumulation=o.accumulation, b1=o.b1, b2=o.b2, eps=o.eps)
    lang = "en"
    dev = inputs.load_split(cfg, target, cfg.eval.split, lang, cfg.eval.max_examples, for_eval=True)
    dev_feats = inputs.featurize(cfg, target, dev, tokenizer)
    model = inputs.build_model(cfg, head, num_labels, tokenizer)
    graphdef, _, rest = steps.split_model(model)
    compiled = types.SimpleNamespace(eval_step=jax.jit(steps.make_eval_step(graphdef, rest, plan.kind)),
                                     batch_sharding=distributed.batch_sharding(mesh))
    curves = {"package": [], "pytorch": []}

    def score(raw) -> float:
        return float(inference.score(target, dev_feats, raw, dev, lang)[0])

    def ours_eval(step, params):
        if step % eval_every == 0 or step == total:
            raw = inference.predict(params, dev_feats, compiled, cfg.eval.batch_size, phase.buckets, mesh)
            curves["package"].append({"step": step, "dev": score(raw)})

    def torch_eval(step, reference):
        if not (step % eval_every == 0 or step == total):
            return
        reference.eval()
        batcher = dp.Batcher(dev_feats, cfg.eval.batch_size, buckets=phase.buckets, shuffle=False)

        def outputs():
            for b, _ in batcher.iterate(0):
                with torch.no_grad():
                    out = reference(**{k: torch.from_numpy(np.asarray(b[k], np.int64))
                                       for k in ("input_ids", "attention_mask", "token_type_ids")})
                yield b["feature_index"], {"logits": out.logits.float().numpy()}

        curves["pytorch"].append({"step": step, "dev": score(dp.collect_outputs(dev_feats, outputs()))})
        reference.train()

    with tempfile.TemporaryDirectory(prefix="train-parity-") as tmp:
        init = Path(tmp) / "init"
        fm.save_pretrained(model, init)   # the same initialisation (the fresh head too) for transformers
        ours, _ = tp.run_ours(model, plan.kind, batches, recipe, seed=cfg.cell.seed, after_step=ours_eval)
        del model
        reference, _ = tp.run_reference(init, _hf_class(init, head), head, batches, recipe, seed=cfg.cell.seed,
                                     after_step=torch_eval)
    return {"cell": cfg.cell_id, "steps": total, "batch_size": plan.batch_size, "recipe": dataclasses.asdict(recipe),
            "dev_examples": len(dev), "dev_split": cfg.eval.split, "metric": target.metric,
            "package": {"loss": [t.loss for t in ours], "dev": curves["package"]},
            "pytorch": {"loss": [t.loss for t in reference], "dev": curves["pytorch"]}}


def _hf_class(folder: Path, head: str) -> str:
    return head_class_name(loading.read_config(folder)["model_type"], head)


def render(result: dict) -> str:
    """Both dev curves side by side and the final difference, as the CLI prints them."""
    ours, ref = result["package"]["dev"], result["pytorch"]["dev"]
    lines = [f"cell      {result['cell']}: {result['steps']} steps of {result['batch_size']}, dropout on both sides",
             f"dev       {result['dev_examples']} English examples of {result['dev_split']}, {result['metric']}",
             f"{'step':>5}  {'package':>8} {'pytorch':>8} {'diff':>7}   {'loss package':>12} {'loss pytorch':>12}"]
    for o, r in zip(ours, ref):
        s = o["step"]
        lines.append(f"{s:>5}  {o['dev']:>8.2f} {r['dev']:>8.2f} {o['dev'] - r['dev']:>+7.2f}   "
                     f"{result['package']['loss'][s - 1]:>12.4f} {result['pytorch']['loss'][s - 1]:>12.4f}")
    lines.append(f"final     package {ours[-1]['dev']:.2f}, pytorch {ref[-1]['dev']:.2f} "
                 f"(difference {ours[-1]['dev'] - ref[-1]['dev']:+.2f}; compare with the seed-to-seed spread)")
    return "\n".join(lines)
