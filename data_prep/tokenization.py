"""Tokenizers: the model's own HF fast tokenizer, or an offline word-level one over the synthetic
vocabulary that follows a family's conventions exactly (special tokens, pair template, token types,
padding side):

    bert     [CLS] A [SEP] B [SEP]        types 0..0 1..1, pads right
    roberta  <s> A </s></s> B </s>        types all 0 (type_vocab_size 1), pads right
    xlnet    A <sep> B <sep> <cls>        types 0..0 1..1 2, pads LEFT with pad type 3
"""
from __future__ import annotations

import functools

from tokenizers import Tokenizer, models, pre_tokenizers, processors

try:   # transformers 5 (importing it via `transformers` would pull in torch through the auto classes)
    from transformers.tokenization_utils_tokenizers import TokenizersBackend as PreTrainedTokenizerFast
except ImportError:   # transformers 4
    from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

FAMILIES = ("bert", "roberta", "xlnet")

_SPECIALS = {
    "bert": dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                 mask_token="[MASK]"),
    "roberta": dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                    cls_token="<s>", sep_token="</s>", mask_token="<mask>"),
    "xlnet": dict(unk_token="<unk>", bos_token="<s>", eos_token="</s>", cls_token="<cls>",
                  sep_token="<sep>", pad_token="<pad>", mask_token="<mask>"),
}
_ORDER = {"bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
          "roberta": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
          "xlnet": ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]}


def load_tokenizer(name_or_dir: str):
    """The HF fast tokenizer of a model (hub name or local folder); "synthetic:<family>" gives
    `synthetic_tokenizer(family)`. A hub name is fetched first (its config and tokenizer files only), so
    that the folder is inspected before transformers reads it: no code of the folder ever runs
    (flax_models/remote_code.py; a folder naming code is a RemoteCodeError, a ValueError)."""
    if name_or_dir.startswith("synthetic:"):
        return synthetic_tokenizer(name_or_dir.split(":", 1)[1])
    from flax_models.loading import resolve
    from flax_models.remote_code import auto_tokenizer

    tok = auto_tokenizer(resolve(name_or_dir, weights=False))
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{name_or_dir}: no fast tokenizer (offsets are needed for tagging and QA)")
    return tok


@functools.lru_cache(maxsize=None)
def _synthetic_tokenizer(family: str):
    from .synthetic import vocabulary

    specials = _ORDER[family]
    vocab = {tok: i for i, tok in enumerate(specials + [w for w in vocabulary() if w not in specials])}
    sp = _SPECIALS[family]
    core = Tokenizer(models.WordLevel(vocab, unk_token=sp["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls, sep = sp["cls_token"], sp["sep_token"]
    ids = {t: vocab[t] for t in (cls, sep)}
    if family == "bert":
        post = processors.TemplateProcessing(single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
                                             special_tokens=list(ids.items()))
    elif family == "roberta":
        post = processors.TemplateProcessing(single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
                                             special_tokens=list(ids.items()))
    else:
        post = processors.TemplateProcessing(single=f"$A {sep} {cls}:2",
                                             pair=f"$A {sep} $B:1 {sep}:1 {cls}:2",
                                             special_tokens=list(ids.items()))
    core.post_processor = post
    tok = PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=512,
                                  padding_side="left" if family == "xlnet" else "right",
                                  model_input_names=["input_ids", "token_type_ids", "attention_mask"],
                                  **sp)
    if family == "xlnet":
        tok._pad_token_type_id = 3   # XLNetTokenizer pads token types with 3
    tok.init_kwargs["synthetic_family"] = family
    return tok


def synthetic_tokenizer(family: str):
    if family not in FAMILIES:
        raise ValueError(f"unknown tokenizer family {family!r} (one of {', '.join(FAMILIES)})")
    return _synthetic_tokenizer(family)


def tokenizer_family(tok) -> str:
    """bert | roberta | xlnet, from the tokenizer's special tokens."""
    cls = tok.cls_token
    if cls == "<cls>":
        return "xlnet"
    if cls == "<s>":
        return "roberta"
    return "bert"
