"""What tests/benchmarks and its command-line companions share: the model configs of each preset, inputs,
the PyTorch twins, the JAX calls timed, and the timing helpers (not part of any installed package).

- `CONFIGS`: model name -> config.json dict. One meaning per name across the repository: the tiny names
  (bert-tiny, roberta-tiny, xlnet-tiny) are exactly the smoke preset's models (configs/smoke.yaml, read
  from there); the full-size names are the `config.json` values of the hub checkpoints written out, so
  that the `base` preset builds them with random weights and downloads nothing.
- FLOPs and device peaks live with the models: `flax_models.flops`.

    python -m tests.benchmarks.pair bert-base-cased --batch 32 --seq-len 128    # interleaved JAX/PyTorch
"""
from __future__ import annotations

import yaml

from tests.support.paths import SMOKE

# ---------------------------------------------------------------------------------------------------
# Configs

# The smoke preset's tiny models (hidden 32, 2 layers), as the grid trains them.
TINY_MODELS = ("bert-tiny", "roberta-tiny", "xlnet-tiny")
_SMOKE_MODELS = yaml.safe_load(SMOKE.read_text())["models"]

CONFIGS: dict[str, dict] = {
    **{name: dict(_SMOKE_MODELS[name]["hf_config"]) for name in TINY_MODELS},
    # base: config.json of the hub checkpoints (fields that change the computation; no download).
    "bert-base-cased": dict(model_type="bert", vocab_size=28996, hidden_size=768, num_hidden_layers=12,
                            num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                            max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02,
                            layer_norm_eps=1e-12, pad_token_id=0),
    "bert-base-multilingual-cased": dict(model_type="bert", vocab_size=119547, hidden_size=768,
                                         num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                                         hidden_act="gelu", hidden_dropout_prob=0.1,
                                         attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                                         type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
                                         pad_token_id=0, directionality="bidi", pooler_fc_size=768,
                                         pooler_num_attention_heads=12, pooler_num_fc_layers=3,
                                         pooler_size_per_head=128, pooler_type="first_token_transform"),
    "roberta-base": dict(model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                         hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                         max_position_embeddings=514, type_vocab_size=1, initializer_range=0.02,
                         layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2),
    "xlm-roberta-base": dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                             num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                             max_position_embeddings=514, type_vocab_size=1, initializer_range=0.02,
                             layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                             output_past=True),
    "xlnet-base-cased": dict(model_type="xlnet", vocab_size=32000, d_model=768, n_layer=12, n_head=12, d_head=64,
                             d_inner=3072, ff_activation="gelu", untie_r=True, attn_type="bi", bi_data=False,
                             clamp_len=-1, mem_len=None, reuse_len=None, same_length=False,
                             initializer_range=0.02, layer_norm_eps=1e-12, dropout=0.1, pad_token_id=5,
                             bos_token_id=1, eos_token_id=2, summary_type="last", summary_use_proj=True,
                             summary_activation="tanh", summary_last_dropout=0.1, start_n_top=5,
                             end_n_top=5),
}


def family(config: dict) -> str:
    """bert | roberta | xlnet, from the same model_type registry the loader uses."""
    from flax_models.loading import family_for

    return family_for(config["model_type"]).FAMILY


# ---------------------------------------------------------------------------------------------------
# Inputs and the PyTorch twin

def head_num_labels(head: str | None) -> int | None:
    """The label count the benchmarks use per head (3: an NLI-sized classifier / a small tag set)."""
    return 3 if head in ("sequence_classification", "token_classification") else None


NUM_CHOICES = 2  # multiple-choice benchmarks: (B, 2, T) inputs, B*2 sequences through the encoder


def make_inputs(config: dict, head: str | None, batch: int, seq_len: int, seed: int = 0) -> dict:
    """Fixed-seed random token ids with realistic padding, as numpy int32 arrays.

    Row 0 fills the length bucket; the other rows have lengths uniform in [T/2, T], padded on the
    family's side (XLNet left, BERT/RoBERTa right) with the config's pad id. Two segments (token types
    0/1) for BERT and XLNet (XLNet's <cls> segment 2 and pad segment 3, as its tokenizer writes them);
    all zeros for RoBERTa/XLM-R, whose type vocabulary has one entry.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    fam = family(config)
    shape = (batch, NUM_CHOICES, seq_len) if head == "multiple_choice" else (batch, seq_len)
    rows = int(np.prod(shape[:-1]))
    lengths = rng.integers(seq_len // 2, seq_len + 1, size=rows)
    lengths[0] = seq_len
    pad = int(config.get("pad_token_id", 0) or 0)
    ids = rng.integers(10, config["vocab_size"], size=(rows, seq_len))
    mask = np.zeros((rows, seq_len), np.int32)
    types = np.zeros((rows, seq_len), np.int32)
    for r, n in enumerate(lengths):
        cols = slice(seq_len - n, seq_len) if fam == "xlnet" else slice(0, n)
        mask[r, cols] = 1
        if fam != "roberta":
            seg = np.zeros(n, np.int32)
            seg[n // 2:] = 1
            if fam == "xlnet":
                seg[-1] = 2
            types[r, cols] = seg
    ids = np.where(mask == 1, ids, pad)
    if fam == "xlnet":
        types = np.where(mask == 1, types, 3)
    return {"input_ids": ids.astype(np.int32).reshape(shape), "attention_mask": mask.reshape(shape),
            "token_type_ids": types.reshape(shape)}


def make_labels(head: str | None, inputs: dict, num_labels: int | None, seed: int = 0) -> dict:
    """Fixed-seed labels for a training step of the head (token labels -100 on padding)."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    b = inputs["input_ids"].shape[0]
    t = inputs["input_ids"].shape[-1]
    if head == "sequence_classification":
        return {"labels": rng.integers(0, num_labels, b).astype(np.int32)}
    if head == "token_classification":
        labels = rng.integers(0, num_labels, (b, t)).astype(np.int32)
        return {"labels": np.where(inputs["attention_mask"] == 1, labels, -100).astype(np.int32)}
    if head == "question_answering":
        return {"start_positions": rng.integers(0, t // 2, b).astype(np.int32),
                "end_positions": rng.integers(t // 2, t, b).astype(np.int32)}
    if head == "multiple_choice":
        return {"labels": rng.integers(0, NUM_CHOICES, b).astype(np.int32)}
    raise ValueError(f"no training loss for head {head!r}")


def torch_class_name(config: dict, head: str | None) -> str:
    """The transformers class of the same layout (XLMRobertaFor... for xlm-roberta), as the loader names it."""
    from flax_models.loading import head_class_name

    return head_class_name(config["model_type"], head)


def build_torch_model(config: dict, head: str | None, num_labels: int | None, seed: int = 0):
    """transformers PyTorch model of the head, random weights drawn under torch.manual_seed(seed)."""
    import torch
    import transformers

    cfg = dict(config)
    if num_labels is not None:
        cfg["num_labels"] = num_labels
    hf_config = transformers.AutoConfig.for_model(**cfg)
    torch.manual_seed(seed)
    cls = getattr(transformers, torch_class_name(config, head))
    return cls(hf_config).eval()


def torch_param_counts(torch_model) -> dict:
    """total / embedding (nn.Embedding weights) / non_embedding / trainable, as fm.param_count splits them."""
    import torch

    total = sum(p.numel() for p in torch_model.parameters())
    trainable = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    embedding = sum(m.weight.numel() for m in torch_model.modules() if isinstance(m, torch.nn.Embedding))
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding, "trainable": trainable}


def xla_cpu_threads() -> int:
    """Threads XLA's CPU client runs an executable on: one per CPU this process may be scheduled on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def cost_analysis_flops(compiled) -> float | None:
    """XLA's own FLOP count of a compiled executable (None where the backend does not report one)."""
    try:
        cost = compiled.cost_analysis()
    except (NotImplementedError, RuntimeError):  # backends without a cost model (JaxRuntimeError is a RuntimeError)
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


# ---------------------------------------------------------------------------------------------------
# JAX: a pure forward and a pure train step over the model's parameter pytree

def jax_forward(model):
    """(forward(params, input_ids, attention_mask, token_type_ids) -> ModelOutput, params)."""
    from flax import nnx

    graphdef, params = nnx.split(model, nnx.Param)

    def forward(params, input_ids, attention_mask, token_type_ids):
        return nnx.merge(graphdef, params)(input_ids, attention_mask, token_type_ids)

    return forward, params


# The task kind whose loss repro.training.steps trains each head with.
KIND_OF_HEAD = {"sequence_classification": "classification", "token_classification": "tagging",
                "question_answering": "qa", "multiple_choice": "multiple_choice"}


def jax_train_step(model, head: str, learning_rate: float = 2e-5, clip_norm: float = 1.0):
    """(train_step(state, batch) -> (state, metrics), state): the pipeline's own step, not a twin of it.

    repro.training.steps builds it (AdamW with decay mask, global-norm clipping, schedule, dropout on), so the
    benchmark times what training runs. The batch needs `example_mask` (B,) besides inputs and labels;
    donate the state (argument 0) when jitting.
    """
    import jax
    import jax.numpy as jnp

    from repro.training import steps

    graphdef, params, rest = steps.split_model(model)
    spec = steps.OptimizerSpec(learning_rate=learning_rate, weight_decay=0.01, warmup_fraction=0.0,
                               clip_norm=clip_norm, accumulation=1, total_updates=1000)
    tx = steps.make_optimizer(spec)
    step = steps.make_train_step(graphdef, rest, KIND_OF_HEAD[head], tx, steps.lr_schedule(spec), 1)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
             "rng": jax.random.PRNGKey(0)}
    return step, state


def train_batch(config: dict, head: str, batch: int, seq_len: int) -> dict:
    """A benchmark train step's batch as numpy arrays: inputs, labels and example_mask (all rows real)."""
    import numpy as np

    inputs = make_inputs(config, head, batch, seq_len)
    labels = make_labels(head, inputs, head_num_labels(head))
    return {**inputs, **labels, "example_mask": np.ones(inputs["input_ids"].shape[0], np.float32)}


def jax_train_call(model, head: str, batch: dict, info: dict):
    """The benchmarked JAX train call: the pipeline's step, AOT-compiled with the state donated, on `batch`
    (train_batch). Lower and compile time and XLA's FLOP count go into `info`; returns (call, compiled)."""
    import time

    import jax
    import jax.numpy as jnp

    step, state = jax_train_step(model, head)
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    # The model's own arrays must stay valid: the step donates (and so deletes) its input state.
    state = jax.tree.map(jnp.copy, state)
    jax.block_until_ready((state, batch))
    t0 = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=0).lower(state, batch)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    info.update(lower_s=t1 - t0, compile_s=t2 - t1, xla_flops_per_batch=cost_analysis_flops(compiled),
                weights_dtype="float32")
    plant = planted_slowdown()
    holder = [state]

    def call():
        for _ in range(plant):
            holder[0], metrics = compiled(holder[0], batch)
        return jax.block_until_ready(metrics["loss"])

    return call, compiled


def torch_train_call(torch_model, head: str, batch: dict, dtype: str, info: dict):
    """The benchmarked PyTorch train call: loss from the transformers head, global-norm clipping at 1.0 and
    AdamW, as the JAX step; torch.autocast(bfloat16) for bf16. `torch_model` is trained in place."""
    import contextlib

    import torch

    device = torch_device()
    torch_model.train()
    kwargs = {k: torch.from_numpy(v).long().to(device) for k, v in batch.items() if k != "example_mask"}
    opt = torch.optim.AdamW(torch_model.parameters(), lr=2e-5, weight_decay=0.01)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if dtype == "bfloat16"
                else contextlib.nullcontext())
    info.update(weights_dtype="float32",
                torch_attn_implementation=getattr(torch_model.config, "_attn_implementation", None))
    plant = planted_slowdown()

    def call():
        for _ in range(plant):
            with autocast:
                loss = torch_model(**kwargs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(torch_model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch_sync()
        return loss.detach()

    return call


# ---------------------------------------------------------------------------------------------------
# Timing

PLANT_ENV = "XT_BENCH_PLANT_SLOWDOWN"


def planted_slowdown() -> int:
    """TEST HOOK for the regression gate: XT_BENCH_PLANT_SLOWDOWN=N makes every benchmarked call run its
    operation N times (an N x slowdown), so that `scripts/bench_gate.sh check` can be shown to fail.
    Never set it for real measurements; its value is recorded in each benchmark's extra_info."""
    import os

    value = os.environ.get(PLANT_ENV, "1") or "1"
    n = int(value)
    if n < 1:
        raise ValueError(f"{PLANT_ENV} must be a positive integer, got {value!r}")
    return n


def run_pedantic(benchmark, fn, *, warmup: int, min_rounds: int, max_rounds: int, seconds: float):
    """Time `fn` (which must block until its result is ready) with pytest-benchmark's pedantic mode.

    `warmup` untimed calls first; then rounds = clip(seconds / one call, min_rounds, max_rounds), one
    iteration per round (each call is long against the timer's resolution). Returns fn's last result.
    """
    import math
    import time

    result = None
    for _ in range(max(warmup - 1, 0)):
        result = fn()
    start = time.perf_counter()
    result = fn()
    once = max(time.perf_counter() - start, 1e-9)
    rounds = int(min(max(math.ceil(seconds / once), min_rounds), max_rounds))
    out = benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0, iterations=1)
    return out if out is not None else result


def median_seconds(benchmark) -> float | None:
    """The median of the timed rounds, or None when benchmarking is disabled (xdist, --benchmark-disable)."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


def torch_device() -> str:
    """PyTorch runs where JAX runs: the GPU when JAX has one (and torch sees it), else the CPU."""
    import jax
    import torch

    return "cuda" if jax.devices()[0].platform == "gpu" and torch.cuda.is_available() else "cpu"


def torch_device_kind() -> str:
    """The GPU's name (as jax's device_kind spells it on NVIDIA), or "cpu" as jax's CPU device_kind."""
    import torch

    return torch.cuda.get_device_name() if torch_device() == "cuda" else "cpu"


def cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_sync() -> None:
    import torch

    if torch_device() == "cuda":
        torch.cuda.synchronize()
