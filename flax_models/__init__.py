"""Flax NNX ports of BERT, RoBERTa/XLM-R and XLNet with transformers-compatible checkpoints.

    model = from_pretrained("xlm-roberta-base", head="sequence_classification", num_labels=3)
    out = model(input_ids, attention_mask, token_type_ids)        # ModelOutput(last_hidden_state, logits, ...)
    model.save_pretrained(out_dir)                                 # loadable by XLMRobertaForSequenceClassification
    usable_length(model)                                           # 512: the longest input it takes

See docs/design.md (the contract) and docs/models.md (usage, parity figures).
"""
from flax_models.errors import CheckpointError, MissingWeightsError
from flax_models.families import usable_length
from flax_models.loading import LoadingInfo, abstract_model, from_config, from_pretrained, transfer_encoder
from flax_models.modeling_utils import ATTENTION_IMPLEMENTATIONS, HEADS, ModelOutput, compute_settings, configure_compute
from flax_models.params import ParamCount, param_count
from flax_models.pretrained import save_pretrained

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "HEADS",
    "CheckpointError",
    "LoadingInfo",
    "MissingWeightsError",
    "ModelOutput",
    "ParamCount",
    "abstract_model",
    "compute_settings",
    "configure_compute",
    "from_config",
    "from_pretrained",
    "param_count",
    "save_pretrained",
    "transfer_encoder",
    "usable_length",
]
