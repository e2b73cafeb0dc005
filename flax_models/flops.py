"""The analytic FLOP model of the three families, and the dense peak FLOP/s of known devices (for MFU).

- `forward_flops(config, seq_len, head, num_labels, num_choices)`: FLOPs of one forward pass of one
  example (one multiply-add = 2 FLOPs), counting the matrix products the transformers reference computes:
  2 * (matmul parameters) * T for every projection plus the attention terms. Embedding gathers, softmax,
  layer norm, activations and biases are not counted (they are O(T*H) each, < 1 % at base size).
  `train_flops` = 3 x forward (the backward pass costs two matmuls per forward matmul). The training loop
  books its cost with train_flops; tests/benchmarks checks both against torch's FlopCounterMode.
- `peak_flops(device_kind, dtype)`: dense peak FLOP/s of known accelerators, for MFU; None when unknown
  (CPUs: pass your own peak to scripts/bench_table.py --peak-flops).

`config` is a transformers config.json dict of any family flax_models supports.
"""
from __future__ import annotations

from flax_models.bert import BertConfig
from flax_models.families import family_for
from flax_models.xlnet import XLNetConfig


def _family(config: dict) -> str:
    """bert | roberta | xlnet, from the same model_type registry the loader uses."""
    return family_for(config.get("model_type")).FAMILY


# ---------------------------------------------------------------------------------------------------
# Analytic FLOPs

def _dims(config: dict) -> tuple[int, int, int, int, int]:
    """(layers, hidden, attention width n_head*d_head, heads, intermediate), defaults as the models read them."""
    if _family(config) == "xlnet":
        x = XLNetConfig.from_hf(config)
        return x.n_layer, x.d_model, x.n_head * x.d_head, x.n_head, x.d_inner
    b = BertConfig.from_hf(config)  # RoBERTa's config differs only in vocabulary and pad id
    return b.num_hidden_layers, b.hidden_size, b.hidden_size, b.num_attention_heads, b.intermediate_size


def encoder_flops(config: dict, seq_len: int) -> int:
    """One sequence through the encoder stack (no head, no pooler).

    BERT/RoBERTa layer:  2*T*(4*H*A + 2*H*I)          Q, K, V, output and the two FFN matmuls
                       + 4*T^2*A                        Q K^T and P V
    XLNet layer (bi, no mems; the reference computes the relative-position projection per example):
                         2*T*(4*H*A + 2*H*I)          q, k, v, o and the FFN
                       + 2*(2T)*H*A                     k_r = r W_r over 2T relative positions
                       + 2*T^2*A + 2*T*(2T)*A + 2*T^2*A q k^T (ac), q k_r^T (bd, before rel_shift), P v
                       + 2*T*2*A + 2*T^2*2*n_head       segment term ef (2 segment classes)
    """
    n_layer, hidden, attn, n_head, inter = _dims(config)
    t = seq_len
    per_layer = 2 * t * (4 * hidden * attn + 2 * hidden * inter)
    if _family(config) == "xlnet":
        per_layer += 2 * (2 * t) * hidden * attn
        per_layer += 2 * t * t * attn + 2 * t * (2 * t) * attn + 2 * t * t * attn
        per_layer += 2 * t * 2 * attn + 2 * t * t * 2 * n_head
    else:
        per_layer += 4 * t * t * attn
    return n_layer * per_layer


def head_flops(config: dict, seq_len: int, head: str | None, num_labels: int | None) -> int:
    """The pooler / sequence summary and the task head for one sequence, as the transformers classes do."""
    fam = _family(config)
    _, hidden, _, _, _ = _dims(config)
    t = seq_len
    pool = 2 * hidden * hidden  # BERT/RoBERTa pooler, RoBERTa classification dense, XLNet summary proj
    if head is None:
        return 0 if fam == "xlnet" else pool  # BertModel/RobertaModel keep their pooler
    if head == "sequence_classification":
        return pool + 2 * hidden * num_labels
    if head == "token_classification":
        return 2 * t * hidden * num_labels
    if head == "question_answering":
        return 2 * t * hidden * 2
    if head == "multiple_choice":
        return pool + 2 * hidden
    raise ValueError(f"unknown head {head!r}")


def forward_flops(config: dict, seq_len: int, head: str | None = None, num_labels: int | None = None,
                  num_choices: int = 1) -> int:
    """Analytic FLOPs of one example's forward pass (num_choices sequences for multiple choice)."""
    per_sequence = encoder_flops(config, seq_len) + head_flops(config, seq_len, head, num_labels)
    return per_sequence * (num_choices if head == "multiple_choice" else 1)


def train_flops(config: dict, seq_len: int, head: str | None = None, num_labels: int | None = None,
                num_choices: int = 1) -> int:
    """Forward + backward of one example: 3 x forward (standard approximation, e.g. Kaplan et al. 2020)."""
    return 3 * forward_flops(config, seq_len, head, num_labels, num_choices)


# ---------------------------------------------------------------------------------------------------
# Device peaks, dense (no sparsity), from the vendors' datasheets. Keys are matched as lower-case
# substrings of jax's `device.device_kind`, most specific first. "float32" is the plain FP32 rate: XLA
# with matmul precision "highest" (precision: fp32) does not use TF32 tensor cores; "tensorfloat32" is the
# dense TF32 tensor-core rate (precision: tf32).

PEAK_FLOPS: list[tuple[str, dict[str, float]]] = [
    ("h100 pcie", {"bfloat16": 756e12, "tensorfloat32": 378e12, "float32": 51e12}),
    ("h100", {"bfloat16": 989e12, "tensorfloat32": 495e12, "float32": 67e12}),    # SXM
    ("h200", {"bfloat16": 989e12, "tensorfloat32": 495e12, "float32": 67e12}),
    ("a100", {"bfloat16": 312e12, "tensorfloat32": 156e12, "float32": 19.5e12}),
    ("l4", {"bfloat16": 121e12, "tensorfloat32": 60e12, "float32": 30.3e12}),
    ("a10g", {"bfloat16": 70e12, "float32": 35e12}),
    ("tpu v4", {"bfloat16": 275e12}),
    ("tpu v5 lite", {"bfloat16": 197e12}),
    ("tpu v5e", {"bfloat16": 197e12}),
    ("tpu v5", {"bfloat16": 459e12}),                   # v5p
    ("tpu v6", {"bfloat16": 918e12}),
]


def peak_flops(device_kind: str, dtype: str) -> float | None:
    kind = device_kind.lower()
    for key, peaks in PEAK_FLOPS:
        if key in kind:
            return peaks.get(dtype)
    return None
