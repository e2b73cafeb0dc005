"""Pure step functions: the loss of each task kind, the optimiser, `train_step` and `eval_step`.

Parameters travel as a plain nested dict (`nnx.to_pure_dict` of the model's `nnx.Param` state); each step
rebuilds the NNX model inside with `nnx.merge(graphdef, params)`, so everything here is a pure function
of arrays that `jax.jit` compiles once per batch shape.

    loss   classification, pair_classification, multiple_choice: mean CE over example_mask
           tagging: mean CE over labelled tokens (-100 = ignored) of real examples
           qa: (CE(start) + CE(end)) / 2
           regression: mean squared error on logits[:, 0]
    update AdamW (decoupled weight decay, not on biases/LayerNorm, as xtreme's run scripts) after global-norm
           clipping; linear warmup then linear decay to 0; `accumulation` micro-batches per update
           (optax.MultiSteps, gradient mean).
    dropout key of micro-step s: fold_in(state.rng, s)
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

CLASSIFICATION_KINDS = ("classification", "pair_classification")
TRAINABLE_KINDS = CLASSIFICATION_KINDS + ("regression", "tagging", "qa", "multiple_choice")


def head_for(task) -> tuple[str, int | None]:
    """The flax_models head (and num_labels) a task kind trains with."""
    kind = task.kind
    if kind in CLASSIFICATION_KINDS:
        return "sequence_classification", len(task.labels)
    if kind == "regression":
        return "sequence_classification", 1
    if kind == "tagging":
        return "token_classification", len(task.labels)
    if kind == "qa":
        return "question_answering", None
    if kind == "multiple_choice":
        return "multiple_choice", None
    raise ValueError(f"task {task.name!r} of kind {kind!r} has no training head (kinds: {', '.join(TRAINABLE_KINDS)})")


def label_keys(kind: str) -> tuple[str, ...]:
    return ("start_positions", "end_positions") if kind == "qa" else ("labels",)


# ---- losses -------------------------------------------------------------------------------------

def _cross_entropy(logits, labels, weights):
    """Sum of -log p(label) over weighted positions and the weight sum; labels < 0 are ignored."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    valid = labels >= 0
    nll = -jnp.take_along_axis(logp, jnp.where(valid, labels, 0)[..., None], axis=-1)[..., 0]
    w = weights.astype(jnp.float32) * valid
    correct = (jnp.argmax(logits, axis=-1) == labels) * w
    return (nll * w).sum(), w.sum(), correct.sum()


def task_loss(kind: str, out, batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean loss over the real (example_mask = 1) labelled items of the batch, plus sums for logging."""
    mask = batch["example_mask"].astype(jnp.float32)
    if kind in CLASSIFICATION_KINDS or kind == "multiple_choice":
        total, count, correct = _cross_entropy(out.logits, batch["labels"], mask)
    elif kind == "tagging":
        labels = batch["labels"]
        total, count, correct = _cross_entropy(out.logits, labels, jnp.broadcast_to(mask[:, None], labels.shape))
    elif kind == "qa":
        s, count, cs = _cross_entropy(out.start_logits, batch["start_positions"], mask)
        e, _, ce = _cross_entropy(out.end_logits, batch["end_positions"], mask)
        total, correct = (s + e) / 2, (cs + ce) / 2
    elif kind == "regression":
        pred = out.logits[:, 0].astype(jnp.float32)
        # Padding rows carry NaN labels: select, never multiply, so they cannot poison the sum.
        err = jnp.where(mask > 0, jnp.square(pred - batch["labels"].astype(jnp.float32)), 0.0)
        total = err.sum()
        count, correct = mask.sum(), jnp.zeros(())
    else:
        raise ValueError(f"no loss for task kind {kind!r}")
    loss = total / jnp.maximum(count, 1.0)
    return loss, {"loss_sum": total, "count": count, "correct": correct}


# ---- optimiser ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    learning_rate: float
    weight_decay: float
    warmup_fraction: float
    clip_norm: float
    accumulation: int
    total_updates: int
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8


# What differs between the cells of a grid (rate, decay, warm-up and phase length) enters the train step as
# arrays, not as constants of its closure: cells with the same model, head, shapes and optimiser structure
# (clipping, accumulation, Adam's betas and eps) share one executable, traced and compiled once a process.
HPARAMS = ("learning_rate", "weight_decay", "warmup_updates", "total_updates")


def optimizer_hparams(spec: OptimizerSpec) -> dict:
    """The spec's traced hyper-parameters, as the arrays the train step takes."""
    return {"learning_rate": np.float32(spec.learning_rate), "weight_decay": np.float32(spec.weight_decay),
            "warmup_updates": np.int32(int(spec.warmup_fraction * spec.total_updates)),
            "total_updates": np.int32(spec.total_updates)}


def optimizer_structure(spec: OptimizerSpec) -> OptimizerSpec:
    """The part of the spec an executable depends on (the traced hyper-parameters zeroed)."""
    return dataclasses.replace(spec, learning_rate=0.0, weight_decay=0.0, warmup_fraction=0.0, total_updates=1)


def lr_at(hp: dict, count):
    """Linear warm-up over `warmup_updates` then linear decay to 0 at `total_updates`; the same float32
    operations as optax.join_schedules of two optax.linear_schedules, so the same bits (test_steps)."""
    lr, warmup, total = hp["learning_rate"], hp["warmup_updates"], hp["total_updates"]
    up_steps = jnp.maximum(warmup, 1)
    decay_steps = jnp.maximum(total - warmup, 1)
    up = (0.0 - lr) * (1 - jnp.clip(count, 0, up_steps) / up_steps) + lr
    down = (lr - 0.0) * (1 - jnp.clip(count - warmup, 0, decay_steps) / decay_steps) + 0.0
    return jnp.where(count < warmup, up, down)


def lr_schedule(spec: OptimizerSpec) -> optax.Schedule:
    hp = optimizer_hparams(spec)
    return lambda count: lr_at(hp, count)


def decay_mask(params):
    """Weight decay on matrices only: not on biases (incl. XLNet's r_*_bias) nor LayerNorm scales."""
    def keep(path, _):
        name = str(getattr(path[-1], "key", path[-1]))
        return not ("bias" in name or name == "scale")
    return jax.tree_util.tree_map_with_path(keep, params)


def make_optimizer(spec: OptimizerSpec, hp: dict | None = None) -> optax.GradientTransformation:
    """The optimiser of `spec`; `hp` (traced arrays inside a step) replaces the spec's HPARAMS."""
    hp = optimizer_hparams(spec) if hp is None else hp
    parts = []
    if spec.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(spec.clip_norm))
    parts.append(optax.adamw(lambda count: lr_at(hp, count), b1=spec.b1, b2=spec.b2, eps=spec.eps,
                             weight_decay=hp["weight_decay"], mask=decay_mask))
    tx = optax.chain(*parts)
    if spec.accumulation > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=spec.accumulation)
    return tx


# ---- state and steps ----------------------------------------------------------------------------

# The train state is a plain dict (what orbax saves and restores as is):
#   {"step": int32 micro-steps done, "params": pure dict of float32 arrays, "opt_state": optax state,
#    "rng": raw uint32[2] key; the dropout key of micro-step s is fold_in(rng, s)}
TrainState = dict


def split_model(model: nnx.Module):
    """(graphdef, params as a pure dict, other state) — split once, merged inside every step."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, nnx.to_pure_dict(params), rest


def _forward(graphdef, rest, params, batch, dropout_rng):
    model = nnx.merge(graphdef, params, rest)
    return model(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"),
                 dropout_rng=dropout_rng)


def make_train_step(graphdef, rest, kind: str, tx: optax.GradientTransformation | None,
                    schedule: optax.Schedule | None, accumulation: int, on_trace: Callable[[], None] | None = None,
                    structure: OptimizerSpec | None = None):
    """The pure `train_step(state, batch) -> (state, metrics)` (not yet jitted); with `structure` (and no tx,
    schedule) `train_step(state, batch, hp)`, the optimiser built inside from the arrays `hp`
    (`optimizer_hparams`), so that one executable serves every learning rate and phase length."""

    def train_step(state: TrainState, batch: dict, hp: dict | None = None) -> tuple[TrainState, dict]:
        if on_trace is not None:
            on_trace()  # runs at trace time only: counts compilations
        tx_, schedule_ = tx, schedule
        if structure is not None:
            tx_ = make_optimizer(structure, hp)
            schedule_ = lambda count: lr_at(hp, count)  # noqa: E731
        dropout_rng = jax.random.fold_in(state["rng"], state["step"])

        def loss_of(params):
            out = _forward(graphdef, rest, params, batch, dropout_rng)
            return task_loss(kind, out, batch)

        (loss, sums), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
        updates, opt_state = tx_.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        real = batch["example_mask"] > 0
        mask = batch["attention_mask"].reshape(real.shape[0], -1)
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads),
                   "learning_rate": schedule_(state["step"] // accumulation),
                   # cost accounting over the global batch: real examples and their non-padding tokens
                   "examples": real.sum(), "tokens": jnp.where(real[:, None], mask, 0).sum(), **sums}
        return {"step": state["step"] + 1, "params": params, "opt_state": opt_state, "rng": state["rng"]}, metrics

    return train_step


def make_eval_step(graphdef, rest, kind: str):
    """The pure `eval_step(params, batch) -> raw outputs` (logits, or start/end logits for QA)."""

    def eval_step(params, batch: dict) -> dict:
        out = _forward(graphdef, rest, params, batch, None)
        if kind == "qa":
            return {"start_logits": out.start_logits.astype(jnp.float32),
                    "end_logits": out.end_logits.astype(jnp.float32)}
        return {"logits": out.logits.astype(jnp.float32)}

    return eval_step


def make_forward(graphdef, rest):
    """Deterministic forward (for latency): params, input_ids, attention_mask -> the first output."""

    def forward(params, input_ids, attention_mask):
        out = _forward(graphdef, rest, params, {"input_ids": input_ids, "attention_mask": attention_mask}, None)
        return out.logits if out.logits is not None else (out.start_logits if out.start_logits is not None
                                                           else out.last_hidden_state)

    return forward
