"""XLNet encoder and fine-tuning heads in Flax NNX, matching transformers' `XLNetModel` and `XLNetFor*`.

XLNet (Yang et al., 2019) is a Transformer-XL encoder. Fine-tuning and evaluation run only the content
stream h; the query stream g (two-stream attention), permutation masks, `target_mapping` and the
segment-recurrence memory (`mems`, `mem_len`) exist for pre-training and generation only and are not
implemented here: passing `mems=`, `perm_mask=`, `target_mapping=` (or any other extra keyword) raises.

Per layer, with heads q, k, v = h W_q, h W_k, h W_v, relative-position keys k_r = R W_r (R the sinusoid
table of relative distances i - j, Transformer-XL eq. in Dai et al. 2019, sec. 3.3) and s_ij = 1 when
tokens i and j lie in different segments (XLNet sec. 2.5, relative segment encodings):

    AC_ij = (q_i + r_w_bias) . k_j                         content term
    BD_ij = rel_shift((q_i + r_r_bias) . k_r)_ij            position term, shifted so column j holds i - j
    EF_ij = (q_i + r_s_bias) . seg_embed[s_ij]              segment term (only with token_type_ids)
    a     = softmax((AC + BD + EF) / sqrt(d_head) + mask) v
    h     = LayerNorm(h + a W_o^T)
    h     = LayerNorm(h + W_2 act(W_1 h))

Reference: `transformers.models.xlnet.modeling_xlnet.XLNetModel` (`XLNetRelativeAttention`,
`XLNetFeedForward`) and its heads `XLNetForSequenceClassification` (`sequence_summary` + `logits_proj`),
`XLNetForTokenClassification` (`classifier`), `XLNetForQuestionAnsweringSimple` (`qa_outputs`) and
`XLNetForMultipleChoice`, one class each here under the same name. Parameter names and layouts are those of
the transformers state dict (see docs/design.md), so the generic loader maps checkpoints with no
XLNet-specific code. Activations are
(B, T, ...) throughout; the reference's (T, B, ...) layout is an implementation detail of the original
TensorFlow code. XLNet has no maximum sequence length (relative positions are computed, not looked up).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from flax_models import modeling_utils as mu
from flax_models.pretrained import PretrainedModel

MODEL_TYPES = ("xlnet",)
FAMILY = "xlnet"
BACKBONE_PREFIX = "transformer"
PADDING_SIDE = "left"  # the XLNet tokenizer pads on the left, so <sep> <cls> stay the last tokens

# The transformers forward arguments that only pre-training or generation use.
_PRETRAINING_ONLY = ("mems", "perm_mask", "target_mapping", "use_mems", "input_mask")
_ATTN_TYPES = ("bi", "uni")
_SUMMARY_TYPES = ("last", "first", "mean", "cls_index")
_MASKED = -1e30  # the reference subtracts 1e30 from masked scores
# Old config.json names that transformers' XLNetConfig still maps (its attribute_map).
_ALIASES = {"n_token": "vocab_size", "hidden_size": "d_model", "num_attention_heads": "n_head",
            "num_hidden_layers": "n_layer"}
# Fields where the reference reads an explicit null as "off" (`if config.summary_use_proj:`); any other null
# means the default.
_NULL_MEANS = {"summary_activation": None, "summary_use_proj": False, "summary_proj_to_labels": False,
               "bi_data": False, "same_length": False}


@dataclasses.dataclass(frozen=True)
class XLNetConfig:
    """The config.json fields the model reads, with transformers' XLNetConfig defaults."""

    vocab_size: int = 32000
    d_model: int = 1024
    n_layer: int = 24
    n_head: int = 16
    d_head: int | None = None           # d_model // n_head; the only value the reference accepts
    d_inner: int = 4096
    ff_activation: str = "gelu"
    attn_type: str = "bi"
    bi_data: bool = False
    clamp_len: int = -1
    same_length: bool = False
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    summary_type: str = "last"
    summary_use_proj: bool = True
    summary_activation: str | None = "tanh"   # None (or "") = no activation, as the reference
    summary_proj_to_labels: bool = False
    summary_first_dropout: float = 0.0
    summary_last_dropout: float = 0.1

    @classmethod
    def from_hf(cls, hf_config: dict) -> "XLNetConfig":
        """The config with transformers' defaults filled in, checked for what we cannot run."""
        values = {_ALIASES[k]: v for k, v in hf_config.items() if k in _ALIASES and v is not None}
        for field in dataclasses.fields(cls):
            if hf_config.get(field.name) is not None:
                values[field.name] = hf_config[field.name]
            elif field.name in hf_config and field.name in _NULL_MEANS:
                values[field.name] = _NULL_MEANS[field.name]
        config = cls(**values)
        mu.check_config_values(config, sizes=("vocab_size", "d_model", "n_head", "d_inner"), layers="n_layer",
                               probabilities=("dropout", "summary_first_dropout", "summary_last_dropout"),
                               reals=("initializer_range", "layer_norm_eps"))
        if not mu.is_int(config.clamp_len):
            raise ValueError(f"config clamp_len={config.clamp_len!r:.40} must be an integer")
        if config.d_model % config.n_head:
            raise ValueError(f"XLNet d_model {config.d_model} is not a multiple of n_head {config.n_head}")
        if config.d_head is None:
            config = dataclasses.replace(config, d_head=config.d_model // config.n_head)
        if config.d_head != config.d_model // config.n_head:
            raise ValueError(f"XLNet d_head {config.d_head} must equal d_model // n_head")
        if config.attn_type not in _ATTN_TYPES:
            raise ValueError(f"unsupported XLNet attn_type {config.attn_type!r}; supported: {', '.join(_ATTN_TYPES)}")
        if config.summary_type not in _SUMMARY_TYPES:
            raise ValueError(f"unsupported XLNet summary_type {config.summary_type!r}; "
                             f"supported: {', '.join(_SUMMARY_TYPES)}")
        mu.activation(config.ff_activation)
        return config

    @property
    def usable_length(self) -> None:
        """No longest input: positions are relative distances, computed, not looked up in a table."""
        return None


def _param(shape, std: float, rngs: nnx.Rngs) -> nnx.Param:
    return nnx.Param(mu.normal_init(std)(rngs.params(), shape, jnp.float32))


class XLNetRelativeAttention(nnx.Module):
    """Relative positional multi-head attention, content stream only, with post-attention LayerNorm."""

    def __init__(self, config: XLNetConfig, *, dtype, rngs: nnx.Rngs):
        d_model, n_head, d_head = config.d_model, config.n_head, config.d_head
        std = config.initializer_range
        self.n_head, self.d_head, self.dtype = n_head, d_head, dtype
        self.dropout_rate = config.dropout
        self.scale = 1.0 / d_head**0.5
        # (d_model, n_head, d_head) projections, as the reference stores them (einsum "ibh,hnd->ibnd").
        for name in ("q", "k", "v", "o", "r"):
            setattr(self, name, _param((d_model, n_head, d_head), std, rngs))
        # One set of biases per layer whatever `untie_r` says: the transformers port has no shared
        # variant (its converter copies TF's shared biases into every layer), so checkpoints map 1:1.
        self.r_r_bias = _param((n_head, d_head), std, rngs)
        self.r_s_bias = _param((n_head, d_head), std, rngs)
        self.r_w_bias = _param((n_head, d_head), std, rngs)
        self.seg_embed = _param((2, n_head, d_head), std, rngs)
        self.layer_norm = mu.layer_norm(d_model, config.layer_norm_eps, dtype=dtype, rngs=rngs)

    @staticmethod
    def rel_shift_bnij(x: jax.Array, klen: int) -> jax.Array:
        """(B, N, Q, R) scores against positions klen, klen-1, ... -> (B, N, Q, klen) against keys j.

        The reference's reshape trick: view as (R, Q), drop the first row, view back as (Q, R - 1) and
        keep klen columns, so that column j of row i holds relative distance i - j.
        """
        b, n, q, r = x.shape
        x = x.reshape(b, n, r, q)[:, :, 1:, :]
        return x.reshape(b, n, q, r - 1)[:, :, :, :klen]

    def __call__(self, h, pos_emb, seg_diff, mask, rngs):
        dtype = self.dtype
        cast = lambda p: p[...].astype(dtype)  # noqa: E731
        q = jnp.einsum("bih,hnd->bind", h, cast(self.q))
        k = jnp.einsum("bjh,hnd->bjnd", h, cast(self.k))
        v = jnp.einsum("bjh,hnd->bjnd", h, cast(self.v))

        # Scores accumulate and stay in float32 whatever the compute dtype (halves the bf16 error).
        f32 = dict(preferred_element_type=jnp.float32)
        ac = jnp.einsum("bind,bjnd->bnij", q + cast(self.r_w_bias), k, **f32)
        q_r = q + cast(self.r_r_bias)
        if pos_emb.shape[0] == 1:
            k_r = jnp.einsum("rh,hnd->rnd", pos_emb[0], cast(self.r))
            bd = jnp.einsum("bind,rnd->bnir", q_r, k_r, **f32)
        else:  # bi_data: the first half of the batch sees forward positions, the second half backward
            k_r = jnp.einsum("prh,hnd->prnd", pos_emb, cast(self.r))
            half = q_r.shape[0] // 2
            bd = jnp.concatenate([jnp.einsum("bind,rnd->bnir", q_r[:half], k_r[0], **f32),
                                  jnp.einsum("bind,rnd->bnir", q_r[half:], k_r[1], **f32)], axis=0)
        bd = self.rel_shift_bnij(bd, klen=ac.shape[-1])

        score = ac + bd
        if seg_diff is not None:
            ef = jnp.einsum("bind,snd->bnis", q + cast(self.r_s_bias), cast(self.seg_embed), **f32)
            score = score + jnp.where(seg_diff[:, None], ef[..., 1:2], ef[..., 0:1])

        score = score * self.scale
        if mask is not None:
            score = jnp.where(mask, score, _MASKED)
        prob = jax.nn.softmax(score, axis=-1).astype(dtype)
        prob = mu.dropout(prob, self.dropout_rate, rngs)

        attn = jnp.einsum("bnij,bjnd->bind", prob, v)
        out = jnp.einsum("bind,hnd->bih", attn, cast(self.o))
        out = mu.dropout(out, self.dropout_rate, rngs)
        return self.layer_norm(out + h)


class XLNetFeedForward(nnx.Module):
    def __init__(self, config: XLNetConfig, *, dtype, rngs: nnx.Rngs):
        std = config.initializer_range
        self.layer_norm = mu.layer_norm(config.d_model, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.layer_1 = mu.linear(config.d_model, config.d_inner, std=std, dtype=dtype, rngs=rngs)
        self.layer_2 = mu.linear(config.d_inner, config.d_model, std=std, dtype=dtype, rngs=rngs)
        self.act = mu.activation(config.ff_activation)
        self.dropout_rate = config.dropout

    def __call__(self, x, rngs):
        y = mu.dropout(self.act(self.layer_1(x)), self.dropout_rate, rngs)
        y = mu.dropout(self.layer_2(y), self.dropout_rate, rngs)
        return self.layer_norm(y + x)


class XLNetLayer(nnx.Module):
    def __init__(self, config: XLNetConfig, *, dtype, rngs: nnx.Rngs):
        self.rel_attn = XLNetRelativeAttention(config, dtype=dtype, rngs=rngs)
        self.ff = XLNetFeedForward(config, dtype=dtype, rngs=rngs)

    def __call__(self, h, pos_emb, seg_diff, mask, rngs):
        return self.ff(self.rel_attn(h, pos_emb, seg_diff, mask, rngs), rngs)


def _inputs(input_ids, attention_mask, token_type_ids, ndim: int, unsupported: dict):
    """prepare_inputs without defaults (None skips the mask / segment term), after refusing pre-training-only
    arguments and unknown keywords in one line each."""
    for name in unsupported:
        if name in _PRETRAINING_ONLY:
            raise ValueError(f"XLNet `{name}` is for pre-training/generation only and is not supported here")
        raise ValueError(f"unsupported XLNet argument `{name}`")
    return mu.prepare_inputs(input_ids, attention_mask, token_type_ids, ndim, fill_defaults=False)


class XLNetModel(PretrainedModel):
    """The backbone: word embedding, relative positions, segment differences, masks, n_layer layers."""

    def __init__(self, config: XLNetConfig, *, dtype=jnp.float32, rngs: nnx.Rngs):
        std = config.initializer_range
        self.dtype = dtype
        self.d_model = config.d_model
        self.attn_type = config.attn_type
        self.bi_data = bool(config.bi_data)
        self.clamp_len = config.clamp_len
        self.same_length = bool(config.same_length)
        self.dropout_rate = config.dropout
        self.word_embedding = mu.embed(config.vocab_size, config.d_model, std=std, dtype=dtype, rngs=rngs)
        self.mask_emb = _param((1, 1, config.d_model), std, rngs)  # query-stream input; kept so checkpoints map
        self.layer = nnx.List([XLNetLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.n_layer)])
        self.remat = False   # jax.checkpoint each layer (modeling_utils.configure_compute)

    def relative_positional_encoding(self, qlen: int, klen: int, bsz: int) -> jax.Array:
        """Sinusoids of the distances klen, ..., -qlen + 1 ("bi") or klen, ..., 0 ("uni"): (P, R, d_model).

        P is 1, or 2 with `bi_data` (forward and backward distances), which the reference applies to the
        two halves of the batch in eval as in training.
        """
        inv_freq = 1.0 / jnp.power(10000.0, jnp.arange(0, self.d_model, 2, dtype=jnp.float32) / self.d_model)
        end = -qlen if self.attn_type == "bi" else -1
        fwd = jnp.arange(klen, end, -1, dtype=jnp.float32)
        seqs = [fwd, -fwd] if self.bi_data else [fwd]
        if self.bi_data and bsz % 2:
            raise ValueError(f"bi_data=True splits the batch into forward and backward halves; got odd batch {bsz}")
        if self.clamp_len > 0:
            seqs = [jnp.clip(s, -self.clamp_len, self.clamp_len) for s in seqs]
        tables = []
        for s in seqs:
            angle = s[:, None] * inv_freq[None, :]
            tables.append(jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1))
        return jnp.stack(tables).astype(self.dtype)

    def attention_mask(self, attention_mask, qlen: int):
        """Boolean (B or 1, 1, Q, K) "may attend" mask, or None when everything may attend.

        As the reference: a padded key is hidden from every query but itself (so pad rows stay finite),
        and "uni" adds the causal mask (with `same_length`, each query also loses the keys before it).
        """
        if self.attn_type == "bi" and attention_mask is None:
            return None
        i = jnp.arange(qlen)[:, None]
        j = jnp.arange(qlen)[None, :]
        allowed = jnp.ones((1, 1, qlen, qlen), bool)
        if self.attn_type == "uni":
            blocked = (j > i) | ((j < i) if self.same_length else False)
            allowed = ~blocked[None, None]
        if attention_mask is not None:
            allowed = allowed & (attention_mask.astype(bool)[:, None, None, :] | (i == j)[None, None])
        return allowed

    def encode(self, input_ids, attention_mask, token_type_ids, rngs) -> jax.Array:
        """(B, T) ids -> last hidden state (B, T, d_model); None mask / token types: none applied."""
        bsz, qlen = input_ids.shape
        h = mu.dropout(self.word_embedding(input_ids), self.dropout_rate, rngs)
        # Segment encoding only says whether two tokens share a segment (1 = different).
        seg_diff = None
        if token_type_ids is not None:
            seg_diff = token_type_ids[:, :, None] != token_type_ids[:, None, :]
        # One dropout mask on the (R, d_model) table; the reference draws one per batch column.
        pos_emb = mu.dropout(self.relative_positional_encoding(qlen, qlen, bsz), self.dropout_rate, rngs)
        mask = self.attention_mask(attention_mask, qlen)
        for layer in self.layer:
            h = mu.call_layer(layer, self.remat, h, pos_emb, seg_diff, mask, rngs)
        return mu.dropout(h, self.dropout_rate, rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None,
                 **unsupported) -> mu.ModelOutput:
        input_ids, attention_mask, token_type_ids = _inputs(input_ids, attention_mask, token_type_ids, 2,
                                                            unsupported)
        return mu.ModelOutput(last_hidden_state=self.encode(input_ids, attention_mask, token_type_ids,
                                                            mu.make_rngs(dropout_rng)))


class XLNetSequenceSummary(nnx.Module):
    """transformers' `XLNetSequenceSummary`: pick a token (the last one for XLNet), project, tanh."""

    def __init__(self, config: XLNetConfig, num_labels: int, *, dtype, rngs: nnx.Rngs):
        self.summary_type = config.summary_type
        d_model, std = config.d_model, config.initializer_range
        out = num_labels if config.summary_proj_to_labels and num_labels > 0 else d_model
        self.summary = (mu.linear(d_model, out, std=std, dtype=dtype, rngs=rngs)
                        if config.summary_use_proj else None)
        act = config.summary_activation
        self.act = mu.activation(act) if act else (lambda x: x)
        self.first_dropout = config.summary_first_dropout or 0.0
        self.last_dropout = config.summary_last_dropout or 0.0

    def __call__(self, h, rngs):
        if self.summary_type == "first":
            x = h[:, 0]
        elif self.summary_type == "mean":
            x = h.mean(axis=1)
        else:  # "last", and "cls_index" without an index, both read the last token (XLNet's <cls>)
            x = h[:, -1]
        x = mu.dropout(x, self.first_dropout, rngs)
        if self.summary is not None:
            x = self.summary(x)
        return mu.dropout(self.act(x), self.last_dropout, rngs)


class XLNetForSequenceClassification(PretrainedModel):
    def __init__(self, config: XLNetConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.transformer = XLNetModel(config, dtype=dtype, rngs=rngs)
        self.sequence_summary = XLNetSequenceSummary(config, num_labels, dtype=dtype, rngs=rngs)
        self.logits_proj = mu.linear(config.d_model, num_labels, std=config.initializer_range, dtype=dtype,
                                     rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None, **unsupported):
        input_ids, attention_mask, token_type_ids = _inputs(input_ids, attention_mask, token_type_ids, 2,
                                                            unsupported)
        rngs = mu.make_rngs(dropout_rng)
        h = self.transformer.encode(input_ids, attention_mask, token_type_ids, rngs)
        logits = self.logits_proj(self.sequence_summary(h, rngs))
        return mu.ModelOutput(last_hidden_state=h, logits=logits.astype(jnp.float32))


class XLNetForTokenClassification(PretrainedModel):
    def __init__(self, config: XLNetConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.transformer = XLNetModel(config, dtype=dtype, rngs=rngs)
        self.classifier = mu.linear(config.d_model, num_labels, std=config.initializer_range, dtype=dtype,
                                    rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None, **unsupported):
        input_ids, attention_mask, token_type_ids = _inputs(input_ids, attention_mask, token_type_ids, 2,
                                                            unsupported)
        h = self.transformer.encode(input_ids, attention_mask, token_type_ids, mu.make_rngs(dropout_rng))
        return mu.ModelOutput(last_hidden_state=h, logits=self.classifier(h).astype(jnp.float32))


class XLNetForQuestionAnsweringSimple(PretrainedModel):
    def __init__(self, config: XLNetConfig, num_labels: int = 2, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.transformer = XLNetModel(config, dtype=dtype, rngs=rngs)
        self.qa_outputs = mu.linear(config.d_model, 2, std=config.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None, **unsupported):
        input_ids, attention_mask, token_type_ids = _inputs(input_ids, attention_mask, token_type_ids, 2,
                                                            unsupported)
        h = self.transformer.encode(input_ids, attention_mask, token_type_ids, mu.make_rngs(dropout_rng))
        logits = self.qa_outputs(h).astype(jnp.float32)
        return mu.ModelOutput(last_hidden_state=h, start_logits=logits[..., 0], end_logits=logits[..., 1])


class XLNetForMultipleChoice(PretrainedModel):
    def __init__(self, config: XLNetConfig, num_labels: int = 1, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.transformer = XLNetModel(config, dtype=dtype, rngs=rngs)
        self.sequence_summary = XLNetSequenceSummary(config, num_labels, dtype=dtype, rngs=rngs)
        self.logits_proj = mu.linear(config.d_model, 1, std=config.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None, **unsupported):
        input_ids, attention_mask, token_type_ids = _inputs(input_ids, attention_mask, token_type_ids, 3,
                                                            unsupported)
        num_choices = input_ids.shape[1]
        rngs = mu.make_rngs(dropout_rng)
        h = self.transformer.encode(*map(mu.flatten_choices, (input_ids, attention_mask, token_type_ids)), rngs)
        logits = self.logits_proj(self.sequence_summary(h, rngs)).reshape(-1, num_choices)
        return mu.ModelOutput(last_hidden_state=h, logits=logits.astype(jnp.float32))


MODEL_CLASSES = {
    None: XLNetModel,
    "sequence_classification": XLNetForSequenceClassification,
    "token_classification": XLNetForTokenClassification,
    "question_answering": XLNetForQuestionAnsweringSimple,
    "multiple_choice": XLNetForMultipleChoice,
}
HEAD_CLASSES = {head: cls.__name__ for head, cls in MODEL_CLASSES.items()}
CONFIG_CLASS = XLNetConfig


def head_class_name(model_type: str, head: str | None) -> str:
    return HEAD_CLASSES[head]


def build(hf_config: dict, head: str | None, num_labels: int | None, dtype, rngs: nnx.Rngs) -> PretrainedModel:
    config = XLNetConfig.from_hf(hf_config)
    return mu.build_model(MODEL_CLASSES, config, hf_config, FAMILY, head, num_labels, dtype=dtype, rngs=rngs)
