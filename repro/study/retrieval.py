"""Retrieval targets (Tatoeba, LAReQA, Mewsli-X where the data has it): scored zero-shot from the encoder, no target phase.

    cell = model × intermediate task (none, a task, control) × retrieval target × seed

XTREME-R's protocol (google-research/xtreme, scripts/run_tatoeba.sh and third_party/evaluate_retrieval.py):
a sentence's embedding is the mean over its tokens (special tokens included, padding excluded) of one hidden
layer of the encoder, the output of layer 8 of 12 (`--specific_layer 7` into the 12 layer outputs; 14 of 24
for the large models, `LAYER=13`), and a query's prediction is its nearest candidates by cosine similarity.
Here the encoder is the cell's arm: the pretrained checkpoint (none), or the encoder after the intermediate
phase (the shared intermediate or control model of the cell's model × task × seed). Every scored language
gets its per-query rows (Tatoeba: correct or not; LAReQA / Mewsli-X: average precision / reciprocal rank at
20), so the paired intervals of the report work as for the trained targets. docs/data.md says where this
follows XTREME-R and where it departs (XTREME-R first fine-tunes on SQuAD).

The layer is taken by building the encoder with only its first `pooled_layer` layers (the weights copied by
`flax_models.transfer_encoder`): the last hidden state of that model is the full model's hidden state after
that layer, exactly (BERT/RoBERTa/XLNet apply nothing after their last layer in a deterministic forward).
"""
from __future__ import annotations

import logging
import time
import types

import jax
import jax.numpy as jnp
from flax import nnx

import data_prep as dp
import flax_models as fm
from repro import config, progress
from repro.config import Config
from repro.errors import ModelError
from repro.results import CellResults, make_predictions
from repro.study import inputs, record
from repro.training import distributed, inference, steps

log = logging.getLogger("repro")

# XTREME-R's layer (1-based output of that layer) per encoder depth: run_tatoeba.sh's LAYER + 1.
XTREME_LAYER = {12: 8, 24: 14}


def pooled_layer(num_layers: int) -> int:
    """The layer whose output is pooled: XTREME-R's for 12 and 24 layers, else two thirds of the depth."""
    return XTREME_LAYER.get(num_layers, max(1, round(num_layers * 2 / 3)))


def _depth_key(family: str) -> str:
    return "n_layer" if family == "xlnet" else "num_hidden_layers"


def truncated_encoder(source, dtype=jnp.float32):
    """A bare encoder with the first `pooled_layer` layers of `source` (any head), and that layer."""
    hf = dict(source.config)
    key = _depth_key(source.family)
    layer = pooled_layer(int(hf[key]))
    encoder = fm.from_config({**hf, key: layer}, head=None, dtype=dtype)
    if not fm.transfer_encoder(source, encoder):
        raise ModelError(f"retrieval: no weight of the {source.family} encoder could be copied")
    return encoder, layer


def make_embed_step(graphdef, rest):
    """The pure `embed_step(params, batch) -> {"embedding": (B, H)}`: the mean of the last hidden state over
    the attention mask, in float32 (evaluate_retrieval.mean_pool_embedding)."""

    def embed_step(params, batch: dict) -> dict:
        model = nnx.merge(graphdef, params, rest)
        hidden = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).last_hidden_state
        mask = batch["attention_mask"].astype(jnp.float32)[..., None]
        return {"embedding": (hidden.astype(jnp.float32) * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)}

    return embed_step


class Embedder:
    """The jitted embed step on the mesh, in the shape `repro.training.inference.predict` runs (eval_step,
    batch_sharding), and a cache of candidate pools shared by several languages (LAReQA's)."""

    def __init__(self, encoder, mesh):
        graphdef, self.params, rest = steps.split_model(encoder)
        replicated, batch = distributed.replicated(mesh), distributed.batch_sharding(mesh)
        self.compiled = types.SimpleNamespace(
            eval_step=jax.jit(make_embed_step(graphdef, rest), in_shardings=(replicated, batch), out_shardings=batch),
            batch_sharding=batch)
        self.mesh = mesh
        self.pools: dict = {}

    def __call__(self, feats, batch_size: int, buckets):
        return inference.predict(self.params, feats, self.compiled, batch_size, buckets, self.mesh)["embedding"]

    def raw_outputs(self, feats, batch_size: int, buckets) -> dict:
        """query_embeddings and candidate_embeddings, the inputs of data_prep.postprocess for retrieval."""
        pool = feats.candidates
        key = hash((pool.extra["ids"], pool.arrays["input_ids"].tobytes()))
        if key not in self.pools:
            self.pools[key] = self(pool, batch_size, buckets)
        return {"query_embeddings": self(feats, batch_size, buckets), "candidate_embeddings": self.pools[key]}


def run_cell(cfg: Config, out, mesh, tokenizer, eval_splits, intermediate, t_cell: float | None = None) -> CellResults:
    """A retrieval cell. eval_splits: (split, language -> examples, language -> why not evaluated), loaded by the
    caller before anything trains; `intermediate(cfg, tokenizer, mesh) -> (model folder, its results.json
    record, rows its loaders dropped)` gives the intermediate (or control) encoder; without an intermediate task
    the pretrained checkpoint is scored. t_cell: the cell's start (perf_counter), for results.json `timing`."""
    from repro import rundir

    t_cell = time.perf_counter() if t_cell is None else t_cell

    target = dp.get_task(cfg.cell.target_task)
    split, test, missing = eval_splits
    pretrained = inputs.build_model(cfg, None, None, tokenizer)
    fresh = inputs.fresh_weights(pretrained)
    inputs.check_max_length(cfg, pretrained, target)
    rundir.claim_folder(out, config.to_dict(cfg), "cell", writer=jax.process_index() == 0)

    intermediate_stats, dropped, source, checkpoint = None, {}, pretrained, cfg.model.name_or_path
    if cfg.intermediate_task is not None:
        model_dir, intermediate_stats, dropped = intermediate(cfg, tokenizer, mesh)
        source = fm.from_pretrained(model_dir, head=None, dtype=inputs.dtype_of(cfg))
        checkpoint = str(model_dir)
    encoder, layer = truncated_encoder(source, inputs.dtype_of(cfg))
    embed = Embedder(encoder, mesh)
    buckets = inputs.buckets(cfg, inputs.max_length(cfg, target))

    t0 = time.perf_counter()
    scores, per_language, rows, kind = {}, {}, {}, None
    ticker = progress.Ticker(f"{cfg.cell_id}: embeddings (layer {layer})", total=len(test), unit="language")
    for i, (lang, examples) in enumerate(test.items()):
        feats = inputs.featurize(cfg, target, examples, tokenizer)
        raw = embed.raw_outputs(feats, cfg.eval.batch_size, buckets)
        per_language[lang], scores[lang], (kind, lang_rows) = inference.score_with_rows(
            target, feats, raw, examples, lang)
        rows[lang] = ([e.id for e in examples], lang_rows)
        ticker.update(1, compiled=i == 0)   # the first language compiles the embed step (and a shared pool)
    ticker.close()
    seconds = time.perf_counter() - t0

    counts = fm.param_count(source)
    dtype = "bfloat16" if cfg.precision == "bf16" else "float32"
    t_latency = time.perf_counter()
    latency = inference.measure_latency(embed.params, embed.compiled, encoder, cfg.eval.latency, dtype, mesh)
    latency_s = time.perf_counter() - t_latency
    results = CellResults.assemble({
        **record.identity(cfg, target, {"family": source.family, "model_type": source.config.get("model_type"),
                                        "fresh_weights": fresh}, split, missing, test),
        "setting": None,
        "dropped": dropped,
        "scores": scores,
        "per_language": per_language,
        "param_count": counts.as_dict(),
        "frozen_parameters": 0,
        # No target phase: nothing trained (zero steps); the embedding pass is `retrieval.wall_time_s`.
        "training": {"intermediate": intermediate_stats,
                     "target": {"task": target.name, "train_examples": 0, "epochs": 0.0, "steps": 0, "tokens": 0,
                                "flops": 0.0, "wall_time_s": 0.0}},
        "retrieval": {"layer": layer, "num_layers": int(dict(source.config)[_depth_key(source.family)]),
                      "pooling": "mean", "similarity": "cosine", "wall_time_s": round(seconds, 3)},
        "inference": latency,
        "timing": record.timing(t_cell, seconds, latency_s),
        "checkpoint": checkpoint,
        "train_size": None,
        "same_data_as_target": None,
    })
    record.write(out, results, make_predictions(cfg.cell_id, target.name, target.metric, kind, rows))
    log.info("cell %s (retrieval, layer %d of the encoder): %s %s", cfg.cell_id, layer, target.metric,
             " ".join(f"{k}={v:.2f}" for k, v in per_language.items()))
    return results
