"""The model families by HF `model_type`, and the facts each family module owns about its models.

    family_for("xlm-roberta")                       -> flax_models.roberta
    head_class_name("xlm-roberta", "token_classification")   -> "XLMRobertaForTokenClassification"
    usable_length(model or config dict)             -> longest input in tokens (None: unbounded)
"""
from __future__ import annotations

from types import ModuleType

from flax_models import bert, roberta, xlnet

FAMILY_MODULES = (bert, roberta, xlnet)


def family_modules() -> dict[str, ModuleType]:
    """model_type -> family module."""
    return {model_type: module for module in FAMILY_MODULES for model_type in module.MODEL_TYPES}


def family_for(model_type: str | None) -> ModuleType:
    registry = family_modules()
    if not isinstance(model_type, str) or model_type not in registry:
        raise ValueError(f"unknown model_type {model_type!r}; supported: {', '.join(sorted(registry))}")
    return registry[model_type]


def head_class_name(model_type: str, head: str | None) -> str:
    """The transformers PyTorch class with the same layout as our (model_type, head)."""
    return family_for(model_type).head_class_name(model_type, head)


def usable_length(model_or_config) -> int | None:
    """The longest input, in tokens, a model takes (None: no limit), by its family's rule: BERT
    max_position_embeddings; RoBERTa/XLM-R that minus pad_token_id + 1 (its positions start after the padding
    index); XLNet unbounded (relative positions). Takes a model or an HF config dict with `model_type`."""
    config = getattr(model_or_config, "config", model_or_config)
    return family_for(config.get("model_type")).CONFIG_CLASS.from_hf(config).usable_length
