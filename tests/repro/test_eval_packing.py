"""The zero-shot evaluation runs every language's features through the eval step together (inference.pack):
fewer padded rows, the same outputs. A row's outputs must not depend on which rows share its batch, so the
packed outputs equal one-language-at-a-time outputs bit for bit, for a tagging, a classification and a
multiple-choice head."""
from __future__ import annotations

import numpy as np
import pytest

import data_prep as dp
import flax_models as fm
from repro.training import distributed, inference, loop, steps

SMOKE_BERT = {"model_type": "bert", "vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 64, "hidden_act": "gelu",
              "max_position_embeddings": 64, "type_vocab_size": 2, "pad_token_id": 0, "initializer_range": 0.02,
              "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
LANGS = ("en", "x1", "x2")


@pytest.mark.parametrize("task_name", ["synth_tagging", "synth_sentiment", "synth_choice"])
def test_packed_languages_give_each_language_its_own_outputs_bit_for_bit(task_name):
    task = dp.get_task(task_name)
    head, num_labels = steps.head_for(task)
    model = fm.from_config(SMOKE_BERT, head=head, num_labels=num_labels, seed=0)
    graphdef, params, rest = steps.split_model(model)
    spec = steps.OptimizerSpec(learning_rate=1e-3, weight_decay=0.0, warmup_fraction=0.0, clip_norm=1.0,
                               accumulation=1, total_updates=1)
    mesh = distributed.make_mesh(1)
    comp = loop.compiled_steps(graphdef, rest, task.kind, spec, mesh)
    tok = dp.synthetic_tokenizer("bert")
    buckets = (16, 32, 64)
    # Languages of different sizes, so that each bucket's last batch is partly filled in every language.
    test = {lang: dp.load_examples(task, "test", lang, source="synthetic")[:n] for lang, n in zip(LANGS, (37, 50, 23))}
    featurize = lambda ex: dp.featurize(task, ex, tok, max_length=64)   # noqa: E731

    scores, per_language, (kind, rows) = inference.zero_shot_eval(task, test, featurize, params, comp, 16,
                                                                  buckets, mesh)
    for lang, examples in test.items():
        feats = featurize(examples)
        raw = inference.predict(params, feats, comp, 16, buckets, mesh)
        alone, alone_scores, (_, alone_rows) = inference.score_with_rows(task, feats, raw, examples, lang)
        assert per_language[lang] == alone and scores[lang] == alone_scores
        assert rows[lang] == ([e.id for e in examples], alone_rows)
    # ... and packing did fill batches: fewer eval batches than one language at a time.
    packed, bounds = inference.pack([featurize(ex) for ex in test.values()])
    assert bounds == [(0, 37), (37, 87), (87, 110)] and len(packed) == 110
    one_by_one = sum(len(dp.Batcher(featurize(ex), 16, buckets=buckets, shuffle=False)) for ex in test.values())
    assert len(dp.Batcher(packed, 16, buckets=buckets, shuffle=False)) < one_by_one
