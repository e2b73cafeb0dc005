"""What `repro plan` uses when it cannot read the data or the model: the training splits of the hub datasets
and the dimensions of the paper's hub checkpoints, as published. Every number the plan takes from here is
marked (basis "sizes") and the table's own sources are below.

TRAIN_EXAMPLES counts what the loader yields, not the raw rows: rows without gold and rows the task drops
(data_prep.hub: SNLI's -1 labels, 3-star reviews, amazon_polarity's 5,000 dev rows held out of train) are
taken off. A QA example is counted as one feature (one window of max_length); the few SQuAD contexts longer
than 384 tokens give a second window, which only the data (`--from data`) counts.
"""
from __future__ import annotations

from typing import NamedTuple


class Size(NamedTuple):
    examples: int
    source: str


# (task, split, language) -> examples the hub loader yields.
TRAIN_EXAMPLES: dict[tuple[str, str, str], Size] = {
    # English intermediate tasks
    ("imdb", "train", "en"): Size(25_000, "stanfordnlp/imdb card: train 25,000"),
    ("mnli", "train", "en"): Size(392_702, "nyu-mll/glue mnli card: train 392,702"),
    ("qqp", "train", "en"): Size(363_846, "nyu-mll/glue qqp card: train 363,846"),
    ("sst2", "train", "en"): Size(67_349, "nyu-mll/glue sst2 card: train 67,349"),
    ("stsb", "train", "en"): Size(5_749, "nyu-mll/glue stsb card: train 5,749"),
    ("squad", "train", "en"): Size(87_599, "rajpurkar/squad card: train 87,599"),
    ("siqa", "train", "en"): Size(33_410, "lighteval/siqa: train 33,410 (Sap et al. 2019, Social IQa)"),
    # Targets, trained on English (xquad and mlqa train on squad: repro.study.inputs.TRAIN_TASK)
    ("xnli", "train", "en"): Size(392_702, "facebook/xnli en card: train 392,702 (= MultiNLI train)"),
    ("pawsx", "train", "en"): Size(49_401, "google-research-datasets/paws-x en card: train 49,401"),
    ("paws", "train", "en"): Size(49_401, "google-research-datasets/paws labeled_final card: train 49,401"),
    ("panx", "train", "en"): Size(20_000, "unimelb-nlp/wikiann en card: train 20,000"),
    ("udpos", "train", "en"): Size(21_253, "google/xtreme udpos.English: train 21,253 sentences "
                                           "(shared xtreme README: 'train-en: 5,000 of 21,253')"),
    ("tydiqa", "train", "en"): Size(3_696, "TyDi QA GoldP English train 3,696 (secondary_task rows "
                                           "whose id starts with 'english-')"),
    ("xcopa", "train", "en"): Size(400, "COPA (aps/super_glue copa): train 400"),
    ("amazon_reviews_multi", "train", "en"): Size(
        160_000, "mteb/AmazonReviewsClassification en: train 200,000, 40,000 per star; the 40,000 3-star "
                 "reviews are dropped (neither polarity)"),
    ("amazon_polarity", "train", "en"): Size(
        3_595_000, "fancyzhx/amazon_polarity card: train 3,600,000, less the 5,000 held out as dev"),
    ("snli", "train", "en"): Size(549_367, "stanfordnlp/snli card: train 550,152, less 785 pairs labelled -1 "
                                           "(no annotator consensus)"),
}

# Hub id -> the config.json fields the FLOP model reads (flax_models.flops), from the checkpoints'
# config.json on the hub (tests/repro/test_plan.py checks them against tests/benchmarks/harness.CONFIGS).
_BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
MODEL_CONFIGS: dict[str, dict] = {
    "bert-base-cased": dict(model_type="bert", vocab_size=28996, **_BERT_BASE),
    "bert-base-multilingual-cased": dict(model_type="bert", vocab_size=119547, **_BERT_BASE),
    "roberta-base": dict(model_type="roberta", vocab_size=50265, **_BERT_BASE),
    "xlm-roberta-base": dict(model_type="xlm-roberta", vocab_size=250002, **_BERT_BASE),
    "xlnet-base-cased": dict(model_type="xlnet", vocab_size=32000, d_model=768, n_layer=12, n_head=12,
                             d_head=64, d_inner=3072),
}
