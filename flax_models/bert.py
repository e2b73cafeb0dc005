"""BERT (Devlin et al., 2019) in Flax NNX; matches transformers' `modeling_bert.BertModel` and its heads.

Covers bert-base-(un)cased, bert-base-multilingual-cased and MiniLM (a BERT with fewer, narrower layers).

    embeddings   h0 = LayerNorm(E_word[x] + E_pos[t] + E_type[s])            t = 0 .. T-1
    attention    A  = softmax(Q K^T / sqrt(d_head) + mask) V,  Q, K, V = h W_{q,k,v} + b   (per head)
    layer        h' = LayerNorm(h + A W_o);  h'' = LayerNorm(h' + act(h' W_1) W_2)       (post-LN)
    pooler       p  = tanh(h_L[:, 0] W_p)                                               ([CLS] token)

Heads, with the transformers class names and layouts (`HEAD_CLASSES`):
    BertModel                          backbone alone (no prefix in the state dict)
    BertForSequenceClassification      bert (with pooler) + classifier; regression when num_labels == 1
    BertForTokenClassification         bert (add_pooling_layer=False) + classifier on every token
    BertForQuestionAnswering           bert (add_pooling_layer=False) + qa_outputs -> start, end logits
    BertForMultipleChoice              bert (with pooler) + classifier(H -> 1); (B, C, T) -> (B, C)

Attribute names mirror the transformers state dict (`bert.encoder.layer.0.attention.self.query.weight`),
so loading and saving are a rename (see flax_models/loading.py). Parameters are float32; `dtype` is the
compute dtype. Attention scores (the Q K^T product's output, `preferred_element_type`) and softmax are
float32 whatever the compute dtype. `modeling_utils.configure_compute` picks the attention implementation
(written out, or jax.nn.dot_product_attention: XLA or cuDNN, without attention-probability dropout) and
per-layer rematerialisation.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from flax_models.modeling_utils import (
    ModelOutput,
    activation,
    attention_bias,
    call_layer,
    build_model,
    check_config_values,
    dropout,
    embed,
    flatten_choices,
    layer_norm,
    lookup,
    linear,
    make_rngs,
    prepare_inputs,
    scaled_dot_attention_scale,
    zero_padding_rows,
)
from flax_models.pretrained import PretrainedModel

MODEL_TYPES = ("bert",)
FAMILY = "bert"
BACKBONE_PREFIX = "bert"


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The config.json fields the model reads, with transformers' BertConfig defaults."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None

    @classmethod
    def from_hf(cls, hf_config: dict) -> "BertConfig":
        """The config with transformers' defaults filled in, every value it reads checked (one line each)."""
        kind = hf_config.get("position_embedding_type", "absolute")
        if kind not in (None, "absolute"):
            raise ValueError(f"position_embedding_type {kind!r} is not supported; only 'absolute'")
        fields = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in hf_config.items() if k in fields and v is not None})
        check_config_values(
            config, sizes=("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                           "max_position_embeddings", "type_vocab_size"), layers="num_hidden_layers",
            probabilities=("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"),
            reals=("initializer_range", "layer_norm_eps"))
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of "
                             f"num_attention_heads {config.num_attention_heads}")
        if not (isinstance(config.pad_token_id, int) and 0 <= config.pad_token_id < config.vocab_size):
            raise ValueError(f"config pad_token_id={config.pad_token_id!r:.40} is not a token id "
                             f"(vocab_size {config.vocab_size})")
        return config

    @property
    def usable_length(self) -> int | None:
        """The longest input in tokens: one position embedding per token."""
        return self.max_position_embeddings

    @property
    def head_dropout(self) -> float:
        return self.classifier_dropout if self.classifier_dropout is not None else self.hidden_dropout_prob


class BertEmbeddings(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        std, h = config.initializer_range, config.hidden_size
        self.word_embeddings = embed(config.vocab_size, h, std=std, dtype=dtype, rngs=rngs)
        self.position_embeddings = embed(config.max_position_embeddings, h, std=std, dtype=dtype, rngs=rngs)
        self.token_type_embeddings = embed(config.type_vocab_size, h, std=std, dtype=dtype, rngs=rngs)
        self.LayerNorm = layer_norm(h, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.usable_length = config.usable_length
        self.dropout_rate = config.hidden_dropout_prob
        self.padding_idx = config.pad_token_id   # nn.Embedding(padding_idx=pad_token_id): no gradient to that row

    def __call__(self, input_ids, token_type_ids, rngs):
        length = input_ids.shape[-1]
        if length > self.usable_length:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings {self.usable_length}")
        positions = jnp.arange(length)[None, :]
        x = (lookup(self.word_embeddings, input_ids, self.padding_idx) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(positions))
        return dropout(self.LayerNorm(x), self.dropout_rate, rngs)


class BertSelfAttention(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        std, h = config.initializer_range, config.hidden_size
        self.query = linear(h, h, std=std, dtype=dtype, rngs=rngs)
        self.key = linear(h, h, std=std, dtype=dtype, rngs=rngs)
        self.value = linear(h, h, std=std, dtype=dtype, rngs=rngs)
        self.num_heads = config.num_attention_heads
        self.head_dim = h // config.num_attention_heads
        self.dropout_rate = config.attention_probs_dropout_prob
        self.attention_implementation = "einsum"   # modeling_utils.ATTENTION_IMPLEMENTATIONS

    def __call__(self, x, bias, rngs):
        """`bias`: the additive (B, 1, 1, T) float32 mask for "einsum", the boolean one for jax.nn's."""
        batch, length, _ = x.shape
        split = lambda t: t.reshape(batch, length, self.num_heads, self.head_dim)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        if self.attention_implementation != "einsum":   # no attention-probability dropout on this path
            context = jax.nn.dot_product_attention(q, k, v, mask=bias, scale=scaled_dot_attention_scale(self.head_dim),
                                                   implementation=self.attention_implementation)
            return context.reshape(batch, length, self.num_heads * self.head_dim)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
        scores = scores * scaled_dot_attention_scale(self.head_dim) + bias
        probs = dropout(jax.nn.softmax(scores, axis=-1), self.dropout_rate, rngs)
        context = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v)
        return context.reshape(batch, length, self.num_heads * self.head_dim)


class BertSelfOutput(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        h = config.hidden_size
        self.dense = linear(h, h, std=config.initializer_range, dtype=dtype, rngs=rngs)
        self.LayerNorm = layer_norm(h, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.dropout_rate = config.hidden_dropout_prob

    def __call__(self, x, residual, rngs):
        return self.LayerNorm(dropout(self.dense(x), self.dropout_rate, rngs) + residual)


class BertAttention(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.self = BertSelfAttention(config, dtype=dtype, rngs=rngs)  # `attention.self.query` as in the reference
        self.output = BertSelfOutput(config, dtype=dtype, rngs=rngs)

    def __call__(self, x, bias, rngs):
        return self.output(self.self(x, bias, rngs), x, rngs)


class BertIntermediate(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.dense = linear(config.hidden_size, config.intermediate_size, std=config.initializer_range,
                            dtype=dtype, rngs=rngs)
        self.act = activation(config.hidden_act)

    def __call__(self, x):
        return self.act(self.dense(x))


class BertOutput(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.dense = linear(config.intermediate_size, config.hidden_size, std=config.initializer_range,
                            dtype=dtype, rngs=rngs)
        self.LayerNorm = layer_norm(config.hidden_size, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.dropout_rate = config.hidden_dropout_prob

    def __call__(self, x, residual, rngs):
        return self.LayerNorm(dropout(self.dense(x), self.dropout_rate, rngs) + residual)


class BertLayer(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.attention = BertAttention(config, dtype=dtype, rngs=rngs)
        self.intermediate = BertIntermediate(config, dtype=dtype, rngs=rngs)
        self.output = BertOutput(config, dtype=dtype, rngs=rngs)

    def __call__(self, x, bias, rngs):
        x = self.attention(x, bias, rngs)
        return self.output(self.intermediate(x), x, rngs)


class BertEncoder(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([BertLayer(config, dtype=dtype, rngs=rngs)
                               for _ in range(config.num_hidden_layers)])
        self.remat = False   # jax.checkpoint each layer (modeling_utils.configure_compute)

    def __call__(self, x, attention_mask, rngs):
        if self.layer and self.layer[0].attention.self.attention_implementation != "einsum":
            bias = attention_mask[:, None, None, :].astype(bool)   # jax.nn.dot_product_attention's mask
        else:
            bias = attention_bias(attention_mask, jnp.float32)
        for layer in self.layer:
            x = call_layer(layer, self.remat, x, bias, rngs)
        return x


class BertPooler(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        h = config.hidden_size
        self.dense = linear(h, h, std=config.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, hidden):
        return jnp.tanh(self.dense(hidden[:, 0]))


class BertModel(PretrainedModel):
    def __init__(self, config: BertConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.embeddings = BertEmbeddings(config, dtype=dtype, rngs=rngs)
        self.encoder = BertEncoder(config, dtype=dtype, rngs=rngs)
        self.pooler = BertPooler(config, dtype=dtype, rngs=rngs) if add_pooling_layer else None

    def encode(self, input_ids, attention_mask, token_type_ids, rngs):
        """(B, T) ids -> (last hidden state (B, T, H), pooled (B, H) or None)."""
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids, rngs), attention_mask, rngs)
        return hidden, None if self.pooler is None else self.pooler(hidden)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        hidden, pooled = self.encode(input_ids, attention_mask, token_type_ids, make_rngs(dropout_rng))
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled)


class BertForSequenceClassification(PretrainedModel):
    def __init__(self, config: BertConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.bert = BertModel(config, dtype=dtype, rngs=rngs)
        self.classifier = linear(config.hidden_size, num_labels, std=config.initializer_range, dtype=dtype,
                                 rngs=rngs)
        self.dropout_rate = config.head_dropout

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        rngs = make_rngs(dropout_rng)
        hidden, pooled = self.bert.encode(input_ids, attention_mask, token_type_ids, rngs)
        logits = self.classifier(dropout(pooled, self.dropout_rate, rngs))
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled, logits=logits.astype(jnp.float32))


class BertForTokenClassification(PretrainedModel):
    def __init__(self, config: BertConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.bert = BertModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.classifier = linear(config.hidden_size, num_labels, std=config.initializer_range, dtype=dtype,
                                 rngs=rngs)
        self.dropout_rate = config.head_dropout

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        rngs = make_rngs(dropout_rng)
        hidden, _ = self.bert.encode(input_ids, attention_mask, token_type_ids, rngs)
        logits = self.classifier(dropout(hidden, self.dropout_rate, rngs))
        return ModelOutput(last_hidden_state=hidden, logits=logits.astype(jnp.float32))


class BertForQuestionAnswering(PretrainedModel):
    def __init__(self, config: BertConfig, num_labels: int = 2, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.bert = BertModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.qa_outputs = linear(config.hidden_size, 2, std=config.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        hidden, _ = self.bert.encode(input_ids, attention_mask, token_type_ids, make_rngs(dropout_rng))
        logits = self.qa_outputs(hidden).astype(jnp.float32)  # no dropout before qa_outputs (as the reference)
        return ModelOutput(last_hidden_state=hidden, start_logits=logits[..., 0], end_logits=logits[..., 1])


class BertForMultipleChoice(PretrainedModel):
    def __init__(self, config: BertConfig, num_labels: int = 1, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.bert = BertModel(config, dtype=dtype, rngs=rngs)
        self.classifier = linear(config.hidden_size, 1, std=config.initializer_range, dtype=dtype, rngs=rngs)
        self.dropout_rate = config.head_dropout

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 3)
        num_choices = input_ids.shape[1]
        rngs = make_rngs(dropout_rng)
        hidden, pooled = self.bert.encode(flatten_choices(input_ids), flatten_choices(attention_mask),
                                          flatten_choices(token_type_ids), rngs)
        logits = self.classifier(dropout(pooled, self.dropout_rate, rngs)).reshape(-1, num_choices)
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled, logits=logits.astype(jnp.float32))


MODEL_CLASSES = {
    None: BertModel,
    "sequence_classification": BertForSequenceClassification,
    "token_classification": BertForTokenClassification,
    "question_answering": BertForQuestionAnswering,
    "multiple_choice": BertForMultipleChoice,
}
HEAD_CLASSES = {head: cls.__name__ for head, cls in MODEL_CLASSES.items()}
CONFIG_CLASS = BertConfig


def head_class_name(model_type: str, head: str | None) -> str:
    return HEAD_CLASSES[head]


def build(hf_config: dict, head: str | None, num_labels: int | None, dtype, rngs: nnx.Rngs) -> PretrainedModel:
    config = BertConfig.from_hf(hf_config)
    model = build_model(MODEL_CLASSES, config, hf_config, FAMILY, head, num_labels, dtype=dtype, rngs=rngs)
    zero_padding_rows(config.pad_token_id, (model if head is None else model.bert).embeddings.word_embeddings)
    return model
