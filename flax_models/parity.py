"""Parity with the reference: our port and the transformers PyTorch class on the same weights and inputs.

`compare(name_or_dir, head=...)` loads the checkpoint twice — into our model (from_pretrained) and into
the transformers class named for the head — copies our freshly initialised head weights (those the
checkpoint lacks) into the PyTorch model, runs both on one padded batch with two segments and returns
the max-abs differences of last_hidden_state and of the logits. The same check is the CLI
`python -m flax_models check-parity NAME_OR_DIR` (flax_models/__main__.py).

The reference is always float32, whatever dtype the checkpoint stores: transformers 5 loads a model in its
checkpoint's dtype, so a correct bfloat16 folder would be judged against a bfloat16 PyTorch run (2e-2 apart
where the port is 5e-7 from float32). Both sides widen the stored values exactly (bfloat16/float16 -> float32);
`stored_dtype` and `reference_dtype` in the result say what was compared.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flax_models import loading, remote_code
from flax_models.families import family_for, head_class_name, usable_length
from flax_models.pretrained import hf_state_dict
from flax_models.weights import CONFIG_NAME, WEIGHTS_NAME, weight_files

DEFAULT_TOLERANCE = 1e-4        # float32 against float32 PyTorch
BF16_TOLERANCE = 1e-1           # bfloat16 compute against float32 PyTorch (measured figures: docs/models.md)


@dataclasses.dataclass(frozen=True)
class ParityResult:
    source: str
    family: str
    model_type: str
    head: str | None
    hf_class: str
    dtype: str
    batch_shape: tuple[int, ...]
    padding_side: str
    max_abs_hidden: float
    max_abs_logits: float | None     # None for the bare backbone
    tolerance: float
    stored_dtype: str = "float32"    # the checkpoint's parameter dtype(s), as stored
    reference_dtype: str = "float32"  # the PyTorch reference's parameters, as run

    @property
    def max_abs(self) -> float:
        return max(self.max_abs_hidden, self.max_abs_logits or 0.0)

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "max_abs": self.max_abs, "passed": self.passed}


def padding_side(model_type: str) -> str:
    return getattr(family_for(model_type), "PADDING_SIDE", "right")


def make_batch(config: dict, head: str | None = None, *, batch_size: int = 3, length: int = 16,
               num_choices: int = 3, side: str = "right", seed: int = 0) -> dict[str, np.ndarray]:
    """A padded batch of random ids in two segments (token types 0/1 where the model has two types).

    Rows have different lengths (the first is full, the others padded on `side`); ids avoid pad_token_id,
    so RoBERTa's position ids count only real tokens. Multiple choice gets (batch, choices, length).
    """
    pad = config.get("pad_token_id") or 0
    vocab = config["vocab_size"]
    if usable_length(config) is not None:
        length = min(length, usable_length(config))
    rows = batch_size * num_choices if head == "multiple_choice" else batch_size
    rng = np.random.default_rng(seed)
    lengths = [length] + [int(n) for n in rng.integers(max(2, length // 3), length + 1, rows - 1)]
    ids = rng.integers(0, vocab - 1, (rows, length))
    ids = np.where(ids >= pad, ids + 1, ids)  # never the pad id inside a sequence
    mask = np.zeros((rows, length), np.int32)
    types = np.zeros((rows, length), np.int32)
    two_types = config.get("type_vocab_size", 2) >= 2
    for r, n in enumerate(lengths):
        span = slice(0, n) if side == "right" else slice(length - n, length)
        mask[r, span] = 1
        if two_types:
            types[r, span] = (np.arange(n) >= n // 2).astype(np.int32)  # second segment: the second half
    ids = np.where(mask == 1, ids, pad).astype(np.int32)
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if head == "multiple_choice":
        batch = {k: v.reshape(batch_size, num_choices, length) for k, v in batch.items()}
    return batch


def _torch_outputs(folder, hf_class: str, model, batch) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        import torch
        import transformers
    except ImportError:
        raise ImportError("the parity check runs the PyTorch reference: install the test extra "
                          "(pip install -e '.[test]')") from None
    kwargs = {"num_labels": model.num_labels} if model.head in ("sequence_classification",
                                                                  "token_classification",
                                                                  "question_answering") else {}
    # float32 whatever the checkpoint stores (transformers >= 4.56 names it `dtype`, before `torch_dtype`).
    kwargs["dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"] = torch.float32
    reference = remote_code.reference_model(hf_class, folder, **kwargs).eval()   # no code of the folder runs
    widths = {p.dtype for p in reference.parameters() if p.is_floating_point()}
    if widths != {torch.float32}:
        raise ValueError(f"{hf_class} loaded with parameters in {sorted(map(str, widths))}, not float32")
    # Head weights the checkpoint lacks are fresh in both models: give PyTorch ours.
    ours = hf_state_dict(model)
    fresh = {k: torch.tensor(ours[k]) for k in getattr(model, "loading_info").missing if k in ours}
    if fresh:
        result = reference.load_state_dict(fresh, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{hf_class} has no weights named {', '.join(result.unexpected_keys)}")
    with torch.no_grad():
        out = reference(**{k: torch.from_numpy(np.asarray(v, np.int64)) for k, v in batch.items()},
                        output_hidden_states=True)
    hidden = out.last_hidden_state if model.head is None else out.hidden_states[-1]
    if model.head == "question_answering":
        logits = torch.stack([out.start_logits, out.end_logits], -1)
    else:
        logits = None if model.head is None else out.logits
    return hidden.float().numpy(), None if logits is None else logits.float().numpy()


def _version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= wanted


def stored_dtype(folder) -> str:
    """The dtype(s) the checkpoint stores its parameters in: from the safetensors headers, else config.json's
    `dtype` / `torch_dtype` (a pytorch_model.bin is not opened twice), else "unknown"."""
    import json

    from flax_models import safetensors_format
    from flax_models.weights import is_parameter

    files = weight_files(folder)
    if files[0].name.endswith(".safetensors") or files[0].name == WEIGHTS_NAME:
        found = set()
        for file in files:
            for name, entry in safetensors_format.read_header(file).items():
                if is_parameter(name, entry.dtype):
                    found.add(np.dtype(entry.dtype).name)
        return "+".join(sorted(found)) or "unknown"
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return "unknown"
    return str(config.get("dtype") or config.get("torch_dtype") or "unknown")


def compare(name_or_dir, head: str | None = None, num_labels: int | None = None, dtype=jnp.float32,
            tolerance: float | None = None, batch: dict[str, np.ndarray] | None = None,
            seed: int = 0) -> ParityResult:
    """Max-abs differences between our port and the transformers class for `head` on one batch."""
    folder = loading.resolve(name_or_dir)
    model = loading.from_pretrained(folder, head=head, num_labels=num_labels, dtype=dtype, seed=seed)
    model_type = model.config["model_type"]
    side = padding_side(model_type)
    if batch is None:
        batch = make_batch(dict(model.config), head, side=side, seed=seed)
    hf_class = head_class_name(model_type, head)
    ref_hidden, ref_logits = _torch_outputs(folder, hf_class, model, batch)
    precision = "highest" if jnp.dtype(dtype) == jnp.float32 else "default"
    with jax.default_matmul_precision(precision):
        out = model(**{k: jnp.asarray(v) for k, v in batch.items()})
    hidden = np.asarray(out.last_hidden_state, np.float32)
    if head == "question_answering":
        logits = np.stack([np.asarray(out.start_logits), np.asarray(out.end_logits)], -1)
    else:
        logits = None if out.logits is None else np.asarray(out.logits)
    if hidden.shape != ref_hidden.shape or (logits is not None and logits.shape != ref_logits.shape):
        raise ValueError(f"output shapes differ: ours {hidden.shape}/{None if logits is None else logits.shape}, "
                         f"{hf_class} {ref_hidden.shape}/{None if ref_logits is None else ref_logits.shape}")
    # Compare real tokens only: padded positions are read by no head (and drift more; docs/models.md).
    real = np.asarray(batch["attention_mask"]).reshape(-1, hidden.shape[1]) == 1
    hidden_error = np.abs(hidden - ref_hidden)[real]
    logits_error = None if logits is None else np.abs(logits - ref_logits)
    if logits_error is not None and head in ("token_classification", "question_answering"):
        logits_error = logits_error[real]
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCE if jnp.dtype(dtype) == jnp.float32 else BF16_TOLERANCE
    return ParityResult(
        source=str(name_or_dir), family=model.family, model_type=model_type, head=head, hf_class=hf_class,
        dtype=jnp.dtype(dtype).name, batch_shape=tuple(batch["input_ids"].shape), padding_side=side,
        max_abs_hidden=float(hidden_error.max()),
        max_abs_logits=None if logits_error is None else float(logits_error.max()),
        tolerance=float(tolerance), stored_dtype=stored_dtype(folder), reference_dtype="float32")
