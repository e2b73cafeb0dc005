"""RoBERTa (Liu et al., 2019) and XLM-R (Conneau et al., 2020) in Flax NNX; matches transformers'
`modeling_roberta.RobertaModel`, `modeling_xlm_roberta.XLMRobertaModel` and their heads.

Covers roberta-base and xlm-roberta-base/large (model_type "roberta" and "xlm-roberta"; the two share
every weight name and equation, only the vocabulary differs). The transformer layers are BERT's
(flax_models/bert.py: post-LN self-attention + GELU feed-forward), reused unchanged; what differs is:

    embeddings   h0 = LayerNorm(E_word[x] + E_pos[p] + E_type[s]),
                 p_t = padding_idx + cumsum(x != pad)_t for real tokens, p_t = padding_idx for pads
    sequence classification   logits = out_proj(tanh(dense(h_L[:, 0])))   (on <s>, no pooler)

The other heads are BERT's with RoBERTa's backbone: copies, each marked `# Copied from flax_models.bert...`
and kept equal to its original by tests/flax_models/test_copies.py.

Heads, with the transformers class names and layouts (`HEAD_CLASSES`; XLMRoberta* have the same layouts):
    RobertaModel                       backbone alone (with pooler, no prefix in the state dict)
    RobertaForSequenceClassification   roberta (add_pooling_layer=False) + classifier.{dense,out_proj}
    RobertaForTokenClassification      roberta (add_pooling_layer=False) + classifier
    RobertaForQuestionAnswering        roberta (add_pooling_layer=False) + qa_outputs
    RobertaForMultipleChoice           roberta (with pooler) + classifier(H -> 1); (B, C, T) -> (B, C)
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import nnx

from flax_models.bert import BertConfig, BertEncoder, BertPooler
from flax_models.modeling_utils import (
    ModelOutput,
    build_model,
    dropout,
    embed,
    flatten_choices,
    layer_norm,
    lookup,
    linear,
    make_rngs,
    prepare_inputs,
    zero_padding_rows,
)
from flax_models.pretrained import PretrainedModel

MODEL_TYPES = ("roberta", "xlm-roberta")
FAMILY = "roberta"
BACKBONE_PREFIX = "roberta"
# model_type -> transformers class prefix, so that a saved XLM-R says XLMRobertaFor... in `architectures`.
CLASS_PREFIX = {"roberta": "Roberta", "xlm-roberta": "XLMRoberta"}


@dataclasses.dataclass(frozen=True)
class RobertaConfig(BertConfig):
    """BertConfig's fields with transformers' RobertaConfig defaults (byte-level BPE vocab, <pad> = 1)."""

    vocab_size: int = 50265
    pad_token_id: int = 1

    @classmethod
    def from_hf(cls, hf_config: dict) -> "RobertaConfig":
        config = super().from_hf(hf_config)
        if config.usable_length < 1:
            raise ValueError(f"config max_position_embeddings={config.max_position_embeddings} leaves no position "
                             f"after pad_token_id={config.pad_token_id}")
        return config

    @property
    def usable_length(self) -> int | None:
        """The longest input in tokens: positions start after the padding index, so the first
        pad_token_id + 1 rows of the position table are never a token's."""
        return self.max_position_embeddings - self.pad_token_id - 1


class RobertaEmbeddings(nnx.Module):
    def __init__(self, config: RobertaConfig, *, dtype, rngs: nnx.Rngs):
        std, h = config.initializer_range, config.hidden_size
        self.word_embeddings = embed(config.vocab_size, h, std=std, dtype=dtype, rngs=rngs)
        self.position_embeddings = embed(config.max_position_embeddings, h, std=std, dtype=dtype, rngs=rngs)
        self.token_type_embeddings = embed(config.type_vocab_size, h, std=std, dtype=dtype, rngs=rngs)
        self.LayerNorm = layer_norm(h, config.layer_norm_eps, dtype=dtype, rngs=rngs)
        self.padding_idx = config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.usable_length = config.usable_length
        self.dropout_rate = config.hidden_dropout_prob

    def __call__(self, input_ids, token_type_ids, rngs):
        length = input_ids.shape[-1]
        if length > self.usable_length:
            raise ValueError(f"sequence length {length} exceeds {self.usable_length} positions "
                             f"(max_position_embeddings {self.max_positions} minus padding offset "
                             f"{self.padding_idx + 1})")
        # RoBERTa positions start at padding_idx + 1 and pads keep padding_idx (as the reference does);
        # they follow input_ids == pad_token_id, not attention_mask.
        is_token = (input_ids != self.padding_idx).astype(jnp.int32)
        positions = jnp.cumsum(is_token, axis=-1) * is_token + self.padding_idx
        # word and position tables are nn.Embedding(padding_idx=pad_token_id) in the reference
        x = (lookup(self.word_embeddings, input_ids, self.padding_idx) + self.token_type_embeddings(token_type_ids)
             + lookup(self.position_embeddings, positions, self.padding_idx))
        return dropout(self.LayerNorm(x), self.dropout_rate, rngs)


class RobertaModel(PretrainedModel):
    def __init__(self, config: RobertaConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.embeddings = RobertaEmbeddings(config, dtype=dtype, rngs=rngs)
        self.encoder = BertEncoder(config, dtype=dtype, rngs=rngs)
        self.pooler = BertPooler(config, dtype=dtype, rngs=rngs) if add_pooling_layer else None

    # Copied from flax_models.bert.BertModel.encode
    def encode(self, input_ids, attention_mask, token_type_ids, rngs):
        """(B, T) ids -> (last hidden state (B, T, H), pooled (B, H) or None)."""
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids, rngs), attention_mask, rngs)
        return hidden, None if self.pooler is None else self.pooler(hidden)

    # Copied from flax_models.bert.BertModel.__call__
    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        hidden, pooled = self.encode(input_ids, attention_mask, token_type_ids, make_rngs(dropout_rng))
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled)


class RobertaClassificationHead(nnx.Module):
    def __init__(self, config: RobertaConfig, num_labels: int, *, dtype, rngs: nnx.Rngs):
        std, h = config.initializer_range, config.hidden_size
        self.dense = linear(h, h, std=std, dtype=dtype, rngs=rngs)
        self.out_proj = linear(h, num_labels, std=std, dtype=dtype, rngs=rngs)
        self.dropout_rate = config.head_dropout

    def __call__(self, hidden, rngs):
        x = dropout(hidden[:, 0], self.dropout_rate, rngs)  # the <s> token, RoBERTa's [CLS]
        x = dropout(jnp.tanh(self.dense(x)), self.dropout_rate, rngs)
        return self.out_proj(x)


class RobertaForSequenceClassification(PretrainedModel):
    def __init__(self, config: RobertaConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.roberta = RobertaModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.classifier = RobertaClassificationHead(config, num_labels, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        rngs = make_rngs(dropout_rng)
        hidden, _ = self.roberta.encode(input_ids, attention_mask, token_type_ids, rngs)
        return ModelOutput(last_hidden_state=hidden, logits=self.classifier(hidden, rngs).astype(jnp.float32))


# Copied from flax_models.bert.BertForTokenClassification with Bert->Roberta,bert->roberta
class RobertaForTokenClassification(PretrainedModel):
    def __init__(self, config: RobertaConfig, num_labels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.roberta = RobertaModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.classifier = linear(config.hidden_size, num_labels, std=config.initializer_range, dtype=dtype,
                                 rngs=rngs)
        self.dropout_rate = config.head_dropout

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        rngs = make_rngs(dropout_rng)
        hidden, _ = self.roberta.encode(input_ids, attention_mask, token_type_ids, rngs)
        logits = self.classifier(dropout(hidden, self.dropout_rate, rngs))
        return ModelOutput(last_hidden_state=hidden, logits=logits.astype(jnp.float32))


# Copied from flax_models.bert.BertForQuestionAnswering with Bert->Roberta,bert->roberta
class RobertaForQuestionAnswering(PretrainedModel):
    def __init__(self, config: RobertaConfig, num_labels: int = 2, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.roberta = RobertaModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.qa_outputs = linear(config.hidden_size, 2, std=config.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 2)
        hidden, _ = self.roberta.encode(input_ids, attention_mask, token_type_ids, make_rngs(dropout_rng))
        logits = self.qa_outputs(hidden).astype(jnp.float32)  # no dropout before qa_outputs (as the reference)
        return ModelOutput(last_hidden_state=hidden, start_logits=logits[..., 0], end_logits=logits[..., 1])


# The reference's dropout here is hidden_dropout_prob: it ignores classifier_dropout.
# Copied from flax_models.bert.BertForMultipleChoice with Bert->Roberta,bert->roberta,head_dropout->hidden_dropout_prob
class RobertaForMultipleChoice(PretrainedModel):
    def __init__(self, config: RobertaConfig, num_labels: int = 1, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.roberta = RobertaModel(config, dtype=dtype, rngs=rngs)
        self.classifier = linear(config.hidden_size, 1, std=config.initializer_range, dtype=dtype, rngs=rngs)
        self.dropout_rate = config.hidden_dropout_prob

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, dropout_rng=None):
        input_ids, attention_mask, token_type_ids = prepare_inputs(input_ids, attention_mask, token_type_ids, 3)
        num_choices = input_ids.shape[1]
        rngs = make_rngs(dropout_rng)
        hidden, pooled = self.roberta.encode(flatten_choices(input_ids), flatten_choices(attention_mask),
                                             flatten_choices(token_type_ids), rngs)
        logits = self.classifier(dropout(pooled, self.dropout_rate, rngs)).reshape(-1, num_choices)
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled, logits=logits.astype(jnp.float32))


MODEL_CLASSES = {
    None: RobertaModel,
    "sequence_classification": RobertaForSequenceClassification,
    "token_classification": RobertaForTokenClassification,
    "question_answering": RobertaForQuestionAnswering,
    "multiple_choice": RobertaForMultipleChoice,
}
HEAD_CLASSES = {head: cls.__name__ for head, cls in MODEL_CLASSES.items()}
CONFIG_CLASS = RobertaConfig


def head_class_name(model_type: str, head: str | None) -> str:
    """The transformers class of the same layout: RobertaFor... or XLMRobertaFor..."""
    return HEAD_CLASSES[head].replace("Roberta", CLASS_PREFIX.get(model_type, "Roberta"), 1)


def build(hf_config: dict, head: str | None, num_labels: int | None, dtype, rngs: nnx.Rngs) -> PretrainedModel:
    config = RobertaConfig.from_hf(hf_config)
    model = build_model(MODEL_CLASSES, config, hf_config, FAMILY, head, num_labels, dtype=dtype, rngs=rngs)
    model.hf_class = head_class_name(hf_config.get("model_type", "roberta"), head)
    embeddings = (model if head is None else model.roberta).embeddings
    zero_padding_rows(config.pad_token_id, embeddings.word_embeddings, embeddings.position_embeddings)
    return model
