"""Pieces every model family shares: the output type, activations, dropout, initialisers, the input and
config-value checks, head names and `build_model`.

Each family module (`bert.py`, `roberta.py`, `xlnet.py`) is self-contained apart from this file and
flax_models/pretrained.py (the base class), and follows one contract so that loading, export and parameter
counting are generic (flax_models/families.py is the registry):

    MODEL_TYPES: tuple[str, ...]       # HF `model_type` values the module handles
    FAMILY: str                        # "bert" | "roberta" | "xlnet"
    BACKBONE_PREFIX: str               # "bert" | "roberta" | "transformer": the HF base_model_prefix
    CONFIG_CLASS: type                 # frozen dataclass; `from_hf(hf_config)` checks every value it reads,
                                       # `.usable_length` is the longest input in tokens (None: unbounded)
    MODEL_CLASSES: dict[str | None, type]  # head -> our class, named as the transformers PyTorch class of
                                           # the same layout (None: the backbone alone)
    HEAD_CLASSES: dict[str | None, str]    # head -> that transformers class name
    def head_class_name(model_type, head) -> str          # the class name a saved checkpoint declares
    def build(hf_config: dict, head, num_labels, dtype, rngs: nnx.Rngs) -> nnx.Module   # via build_model

The built module's attribute tree mirrors the transformers state dict (see docs/design.md), its
`__call__(input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None)` returns
`ModelOutput`, and the backbone lives under the attribute named `BACKBONE_PREFIX` (with head=None the
module is the bare backbone, as transformers' `BertModel` has no prefix: loading and saving accept both).
Top-level modules subclass `pretrained.PretrainedModel` (so `save_pretrained` is a method) and carry
`config` (an `HFConfig`), `family`, `head`, `num_labels` and `hf_class`; `set_model_info` sets them.
Optional: `PADDING_SIDE = "left"` where the family's tokenizer pads on the left (XLNet).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

HEADS = (None, "sequence_classification", "token_classification", "question_answering", "multiple_choice")
MAX_LABELS = 100_000  # a label map is written out name by name (id2label); XTREME's largest has 47


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ModelOutput:
    """What every model returns; fields a head does not produce stay None."""

    last_hidden_state: jax.Array
    pooler_output: jax.Array | None = None
    logits: jax.Array | None = None
    start_logits: jax.Array | None = None
    end_logits: jax.Array | None = None


class HFConfig(dict):
    """The HF config.json contents as a read-only, hashable dict.

    Hashable so that `nnx.split(model)[0]` (the GraphDef, which holds this as static data) can be a static
    argument of `jax.jit`; read-only so that the hash cannot go stale. Copy with `dict(model.config)`.
    """

    def __hash__(self):
        return hash(json.dumps(self, sort_keys=True, default=str))

    def _read_only(self, *args, **kwargs):
        raise TypeError("model.config is read-only; edit dict(model.config) and build a new model")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = _read_only  # type: ignore[assignment]


def build_model(model_classes: dict, config, hf_config: dict, family: str, head: str | None,
                num_labels: int | None, *, dtype, rngs: nnx.Rngs) -> nnx.Module:
    """The family's class for `head` (the backbone for None) built from its config dataclass, with model info."""
    num_labels = check_head(head, num_labels)
    if head is None:
        model = model_classes[None](config, dtype=dtype, rngs=rngs)
    else:
        model = model_classes[head](config, num_labels, dtype=dtype, rngs=rngs)
    return set_model_info(model, hf_config, family, head, num_labels)


def set_model_info(model: nnx.Module, config: dict, family: str, head: str | None,
                   num_labels: int | None) -> nnx.Module:
    model.config = HFConfig(config)
    model.family = family
    model.head = head
    model.num_labels = num_labels
    model.hf_class = type(model).__name__  # what a saved checkpoint declares; a family may rename it (XLM-R)
    return model


def _gelu_exact(x):
    return jax.nn.gelu(x, approximate=False)


def _gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


# The activation names transformers configs use (`hidden_act`, `ff_activation`, `summary_activation`).
ACT2FN: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": _gelu_exact,
    "gelu_python": _gelu_exact,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACT2FN:
        raise ValueError(f"unsupported activation {name!r}; supported: {', '.join(sorted(ACT2FN))}")
    return ACT2FN[name]


class KeyStream:
    """The `params` key stream of nnx.Rngs(seed): key n is fold_in(key(seed), n), n = 0, 1, ... (rnglib.py).

    Passed as `rngs` when building a model. nnx.Rngs counts in a Variable, and under jit or eval_shape every
    count update searches the whole trace (an error message built in advance), so a traced build costs time
    quadratic in the number of parameters; this counts in Python and gives the same keys.
    """

    def __init__(self, seed):
        self._key = jax.random.key(seed)
        self._count = 0

    def params(self) -> jax.Array:
        key = jax.random.fold_in(self._key, self._count)
        self._count += 1
        return key


def normal_init(std: float):
    """nnx.initializers.normal(std), with the draw kept apart from the scaling (optimization_barrier) so a
    jitted build rounds exactly as an eager one: under one jit XLA folds the normal's own sqrt(2) and `std`
    into one constant, which moves a quarter of the values by an ulp."""
    def init(key, shape, dtype=jnp.float32):
        return jax.lax.optimization_barrier(jax.random.normal(key, shape, dtype)) * jnp.array(std, dtype)
    return init


def make_rngs(dropout_rng: jax.Array | None) -> nnx.Rngs | None:
    """Call-time dropout RNG: None means deterministic (eval)."""
    return None if dropout_rng is None else nnx.Rngs(dropout=dropout_rng)


def dropout(x: jax.Array, rate: float, rngs: nnx.Rngs | None) -> jax.Array:
    """Inverted dropout drawn from the call-time stream; the identity when rngs is None."""
    if rngs is None or rate <= 0.0:
        return x
    keep = bernoulli(rngs.dropout(), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds (Salmon et al., 2011), as jax._src.random.threefry2x32 computes it."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ (jax.lax.shift_left(x1, np.uint32(r)) | jax.lax.shift_right_logical(x1, np.uint32(32 - r)))
        x0, x1 = x0 + ks[(i + 1) % 3], x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def bernoulli(key: jax.Array, p: float, shape: tuple[int, ...]) -> jax.Array:
    """`jax.random.bernoulli(key, p, shape)`, bit for bit, computed in one pass.

    On CPU JAX lowers threefry as a 5-step while loop that writes the whole (shape) state to memory each
    step; for a (32, 12, 128, 128) attention mask that is 9x slower than the same rounds unrolled, which
    XLA fuses with the comparison into one loop. The bits are the same: jax's partitionable threefry
    layout (counter hi = 0, lo = flat index; bits = out0 ^ out1) and its uniform float32 (23 mantissa bits
    over [1, 2) minus 1). Any other key type, layout or float width (x64) goes to jax.random.bernoulli.
    """
    size = math.prod(shape)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not (typed and str(jax.random.key_impl(key)) == "threefry2x32" and key.shape == ()
            and jax.config.jax_threefry_partitionable and not jax.config.jax_enable_x64 and 0 < size < 2**32):
        return jax.random.bernoulli(key, p, shape)
    k = jax.random.key_data(key)
    counter = jax.lax.iota(np.uint32, size).reshape(shape)
    b0, b1 = _threefry2x32(k[0], k[1], jnp.zeros_like(counter), counter)
    mantissa = jax.lax.shift_right_logical(b0 ^ b1, np.uint32(9)) | np.uint32(0x3F800000)
    uniform = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)
    return uniform < jnp.float32(p)


def check_head(head: str | None, num_labels: int | None) -> int | None:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(str(h) for h in HEADS)}")
    if head in ("sequence_classification", "token_classification"):
        if not is_int(num_labels) or num_labels < 1:
            raise ValueError(f"head {head!r} needs num_labels >= 1, got {num_labels!r:.40}")
        if num_labels > MAX_LABELS:
            raise ValueError(f"num_labels={num_labels} is over the {MAX_LABELS:,}-label limit")
        return int(num_labels)
    if head == "question_answering":
        return 2
    if head == "multiple_choice":
        return 1
    return num_labels


def labels_for_head(config: dict, head: str | None, num_labels: int | None) -> tuple[dict, int | None]:
    """The config as the head sees it: num_labels defaults to the config's (id2label, else 2, as HF)."""
    config = dict(config)
    if not isinstance(config.get("id2label") or {}, dict):
        raise ValueError(f"config id2label={config['id2label']!r:.40} is not an object")
    if head in ("sequence_classification", "token_classification"):
        if num_labels is None:
            num_labels = len(config["id2label"]) if config.get("id2label") else config.get("num_labels", 2)
    elif head == "question_answering":
        num_labels = 2  # qa_outputs is (H -> 2) and the reference sizes it from config.num_labels
    num_labels = check_head(head, num_labels)
    if head in ("sequence_classification", "token_classification", "question_answering"):
        id2label = config.get("id2label") or {}
        if len(id2label) != num_labels:
            id2label = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        config["id2label"] = {str(k): v for k, v in id2label.items()}
        config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
        config["num_labels"] = num_labels
    if head == "sequence_classification" and num_labels == 1:
        config["problem_type"] = "regression"
    elif head == "sequence_classification" and config.get("problem_type") == "regression":
        config.pop("problem_type")
    return config, num_labels


MAX_DIM = 2**31 - 1   # token ids and positions are int32
MAX_LAYERS = 1024     # the deepest published encoders have 48; a thousand is a typo or a hostile file


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config_values(config, *, sizes: tuple[str, ...], layers: str, probabilities: tuple[str, ...],
                        reals: tuple[str, ...]) -> None:
    """A one-line ValueError naming the first config field whose value no model can have: sizes are
    integers in 1..MAX_DIM (layers up to MAX_LAYERS), dropout probabilities in [0, 1) or null, the other
    numbers finite and >= 0. Memory is checked later, on the whole model (flax_models/loading.py)."""
    for name in (*sizes, layers):
        value = getattr(config, name)
        if not is_int(value) or value < 1:
            raise ValueError(f"config {name}={value!r:.40} must be a positive integer")
        if value > MAX_DIM:
            raise ValueError(f"config {name}={value} is over {MAX_DIM:,} (ids and positions are int32)")
    if getattr(config, layers) > MAX_LAYERS:
        raise ValueError(f"config {layers}={getattr(config, layers)} is over the {MAX_LAYERS}-layer limit")
    for name in probabilities:
        value = getattr(config, name)
        if value is not None and not (_is_real(value) and 0 <= value < 1):
            raise ValueError(f"config {name}={value!r:.40} must be a probability in [0, 1)")
    for name in reals:
        value = getattr(config, name)
        if not (_is_real(value) and value >= 0):
            raise ValueError(f"config {name}={value!r:.40} must be a finite number >= 0")


def linear(in_features: int, out_features: int, *, std: float, dtype, rngs: nnx.Rngs,
           use_bias: bool = True) -> nnx.Linear:
    """nnx.Linear initialised as transformers does (normal(std), zero bias), fp32 params."""
    return nnx.Linear(in_features, out_features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
                      kernel_init=normal_init(std), bias_init=nnx.initializers.zeros,
                      rngs=rngs)


class Embed(nnx.Embed):
    """nnx.Embed that gathers rows from the float32 table and casts only them to the compute dtype.

    nnx.Embed casts the whole table first, so under bf16 its gradient is a scatter-add into a bf16 copy of
    the table (a 250k-row XLM-R table: repeated tokens' updates rounded to 8 bits before they reach the
    fp32 master weights). Here the scatter-add stays in float32; the forward values are the same."""

    def __call__(self, inputs, out_sharding=None):
        if out_sharding is not None or not jnp.issubdtype(inputs.dtype, jnp.integer):
            return super().__call__(inputs, out_sharding=out_sharding)
        return jnp.take(self.embedding[...], inputs, axis=0).astype(self.dtype or self.param_dtype)


def embed(num: int, features: int, *, std: float, dtype, rngs: nnx.Rngs) -> nnx.Embed:
    return Embed(num, features, dtype=dtype, param_dtype=jnp.float32,
                 embedding_init=normal_init(std), rngs=rngs)


def lookup(table: nnx.Embed, ids: jax.Array, padding_idx: int | None) -> jax.Array:
    """`table(ids)` with the gradient of torch's nn.Embedding(padding_idx=...): the padding row gets none.

    The forward is unchanged; only a head that reads padded positions (QA logits over the whole padded
    length) sends a gradient there, and transformers' reference drops it (tests/repro/test_train_parity.py)."""
    x = table(ids)
    if padding_idx is None:
        return x
    return jnp.where((ids == padding_idx)[..., None], jax.lax.stop_gradient(x), x)


def layer_norm(features: int, eps: float, *, dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Two-pass variance as torch computes it; one-pass E[x^2] - E[x]^2 cancels badly when the mean is large.
    return nnx.LayerNorm(features, epsilon=eps, dtype=dtype, param_dtype=jnp.float32, use_fast_variance=False,
                         rngs=rngs)


def prepare_inputs(input_ids, attention_mask, token_type_ids, ndim: int, *, fill_defaults: bool = True):
    """The three inputs as jnp arrays, checked: input_ids of rank `ndim` ((batch, length), or (batch, choices,
    length) for multiple choice) and a mask / token types of the same shape.

    `fill_defaults`: a missing mask becomes all ones and missing token types all zeros (BERT, RoBERTa, as the
    reference); XLNet keeps them None, where its reference skips the mask and the segment term.
    """
    input_ids = jnp.asarray(input_ids)
    if input_ids.ndim != ndim:
        want = "(batch, choices, length)" if ndim == 3 else "(batch, length)"
        raise ValueError(f"input_ids must be {want}, got shape {tuple(input_ids.shape)}")
    checked = []
    for name, x in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if x is not None:
            x = jnp.asarray(x)
            if x.shape != input_ids.shape:
                raise ValueError(f"{name} shape {tuple(x.shape)} differs from input_ids shape {tuple(input_ids.shape)}")
        checked.append(x)
    attention_mask, token_type_ids = checked
    if fill_defaults:
        attention_mask = jnp.ones_like(input_ids) if attention_mask is None else attention_mask
        token_type_ids = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    return input_ids, attention_mask, token_type_ids


def zero_padding_rows(padding_idx: int | None, *tables: nnx.Embed) -> None:
    """transformers initialises the padding_idx row of an nn.Embedding(padding_idx=...) to zeros."""
    if padding_idx is None:
        return
    for table in tables:
        if 0 <= padding_idx < table.num_embeddings:
            table.embedding[...] = table.embedding[...].at[padding_idx].set(0.0)


def flatten_choices(x: jax.Array | None) -> jax.Array | None:
    """(B, C, T) -> (B*C, T) for multiple choice, as the transformers classes do."""
    return None if x is None else x.reshape(-1, x.shape[-1])


# How a BERT/RoBERTa self-attention computes softmax(Q K^T / sqrt(d) + mask) V (`configure_compute`):
#   einsum  the written-out equations (scores and softmax in float32), with attention-probability dropout
#   xla     jax.nn.dot_product_attention(implementation="xla"): the same equations in one XLA op
#   cudnn   jax.nn.dot_product_attention(implementation="cudnn"): cuDNN's fused flash attention (GPU only)
# The two jax.nn paths have no attention-probability dropout: training differs from the reference there
# (attention_probs_dropout_prob is not applied); evaluation is the same function.
ATTENTION_IMPLEMENTATIONS = ("einsum", "xla", "cudnn")


def configure_compute(model: nnx.Module, *, attention: str = "einsum", remat: bool = False) -> dict:
    """Sets how `model` computes attention and whether each layer is rematerialised in the backward pass
    (jax.checkpoint per layer: its activations are recomputed, not stored). Returns what the model will
    actually use: {"attention", "attention_dropout", "remat"}. A family with its own attention (XLNet's
    two-stream relative attention does not fit jax.nn.dot_product_attention) keeps it and says so."""
    if attention not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention implementation {attention!r} is not one of "
                         f"{', '.join(ATTENTION_IMPLEMENTATIONS)}")
    for _, module in model.iter_modules():
        if hasattr(module, "attention_implementation"):
            module.attention_implementation = attention
        if hasattr(module, "remat"):
            module.remat = bool(remat)
    return compute_settings(model)


def compute_settings(model: nnx.Module) -> dict:
    """What `model` computes with, read back from its modules (results.json `compute`)."""
    used = {m.attention_implementation for _, m in model.iter_modules() if hasattr(m, "attention_implementation")}
    remat = {m.remat for _, m in model.iter_modules() if hasattr(m, "remat")}
    attention = "/".join(sorted(used)) or "own"   # own: XLNet's relative attention, written out, with dropout
    return {"attention": attention, "attention_dropout": attention in ("einsum", "own"), "remat": any(remat)}


def call_layer(layer: nnx.Module, remat: bool, *args):
    """`layer(*args)`, rematerialised (nnx.remat = jax.checkpoint) when `remat`: the same values, the
    layer's activations recomputed in the backward pass instead of kept (dropout keys included)."""
    if not remat:
        return layer(*args)
    return nnx.remat(lambda module, *a: module(*a))(layer, *args)


def attention_bias(attention_mask: jax.Array, dtype) -> jax.Array:
    """(B, T) 1/0 mask -> additive (B, 1, 1, T) bias using the dtype's most negative finite value."""
    neg = jnp.finfo(dtype).min
    return jnp.where(attention_mask[:, None, None, :].astype(bool), jnp.zeros((), dtype), neg).astype(dtype)


def scaled_dot_attention_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)
