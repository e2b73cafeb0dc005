"""The feature cache (repro.study.feature_cache): the features it returns are featurize's, bit for bit;
its key; sharing between cells and concurrent builders; a damaged entry rebuilt; bounded building memory."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import data_prep as dp
from repro.study import feature_cache
from repro.study.feature_cache import FeatureCache

ROOT = Path(__file__).resolve().parents[2]


def _same(a: dp.Features, b: dp.Features) -> None:
    assert sorted(a.arrays) == sorted(b.arrays)
    for k in a.arrays:
        assert a.arrays[k].dtype == b.arrays[k].dtype and a.arrays[k].shape == b.arrays[k].shape, k
        np.testing.assert_array_equal(np.asarray(a.arrays[k]), np.asarray(b.arrays[k]), err_msg=k)
    for name in ("example_index", "lengths", "offsets", "word_index"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)
    assert (a.max_length, a.padding_side, a.family) == (b.max_length, b.padding_side, b.family)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "index")


@pytest.mark.parametrize("task,family,max_length", [("synth_sentiment", "bert", 32), ("synth_nli", "roberta", 32),
                                                    ("synth_tagging", "xlnet", 12), ("synth_qa", "bert", 48),
                                                    ("synth_choice", "xlnet", 32), ("synth_sts", "bert", 32)])
def test_cached_features_are_featurize_s_bit_for_bit(tmp_path, monkeypatch, task, family, max_length):
    monkeypatch.setattr(feature_cache, "CHUNK_EXAMPLES", 7)   # many chunks: rows must join up as one call's
    examples = dp.load_examples(task, "train", "en")[:60]
    tok = dp.synthetic_tokenizer(family)
    direct = dp.featurize(task, examples, tok, max_length)
    built = FeatureCache(tmp_path).features(task, examples, tok, max_length)
    _same(built, direct)
    assert isinstance(built.arrays["input_ids"], np.memmap)
    again = FeatureCache(tmp_path).features(task, examples, tok, max_length)
    _same(again, direct)
    assert len(_entries(tmp_path)) == 1
    # the Batcher gives the same batches from either
    b1 = dp.Batcher(direct, 8, seed=3)
    b2 = dp.Batcher(again, 8, seed=3)
    for x, y in zip(b1, b2):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_key_follows_what_the_arrays_depend_on(tmp_path):
    task = "synth_sentiment"
    examples = list(dp.load_examples(task, "train", "en")[:20])
    bert, roberta = dp.synthetic_tokenizer("bert"), dp.synthetic_tokenizer("roberta")
    cache = FeatureCache(tmp_path)
    cache.features(task, examples, bert, 32)
    cache.features(task, list(examples), bert, 32)                 # equal examples, another list: shared
    assert len(_entries(tmp_path)) == 1
    cache.features(task, examples, bert, 24)                       # max length
    cache.features(task, examples, roberta, 32)                    # tokenizer
    cache.features(task, examples[:19], bert, 32)                  # the selection
    changed = [examples[0].__class__(**{**examples[0].__dict__, "text": examples[0].text + " good"})] + examples[1:]
    cache.features(task, changed, bert, 32)                        # one example's text
    cache.features("synth_int_sentiment", examples, bert, 32)      # the task
    assert len(_entries(tmp_path)) == 6


def test_a_changed_featurization_code_gets_a_new_entry(tmp_path, monkeypatch):
    examples = dp.load_examples("synth_sentiment", "train", "en")[:10]
    tok = dp.synthetic_tokenizer("bert")
    FeatureCache(tmp_path).features("synth_sentiment", examples, tok, 32)
    monkeypatch.setattr(feature_cache, "FORMAT", feature_cache.FORMAT + 1)
    FeatureCache(tmp_path).features("synth_sentiment", examples, tok, 32)
    assert len(_entries(tmp_path)) == 2


@pytest.mark.parametrize("how", ["flip", "truncate", "manifest"])
def test_a_damaged_entry_is_rebuilt_with_one_line(tmp_path, caplog, how):
    examples = dp.load_examples("synth_tagging", "train", "en")[:30]
    tok = dp.synthetic_tokenizer("bert")
    direct = dp.featurize("synth_tagging", examples, tok, 32)
    FeatureCache(tmp_path).features("synth_tagging", examples, tok, 32)
    (key,) = _entries(tmp_path)
    victim = tmp_path / key / "arrays.input_ids.bin"
    data = bytearray(victim.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x40
        victim.write_bytes(bytes(data))
    elif how == "truncate":
        victim.write_bytes(bytes(data[:-4]))
    else:
        (tmp_path / key / "manifest.json").write_text("{")
    feature_cache._verified.clear()   # a new process
    with caplog.at_level(logging.WARNING, logger="repro"):
        again = FeatureCache(tmp_path).features("synth_tagging", examples, tok, 32)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "damaged" in warnings[0].getMessage() and key in warnings[0].getMessage()
    _same(again, direct)
    assert FeatureCache(tmp_path).damage(key) is None


def test_concurrent_builders_share_one_entry(tmp_path, monkeypatch):
    """Two shards asking at once: one builds (under the entry's flock), the other waits and reads it."""
    monkeypatch.setattr(feature_cache, "CHUNK_EXAMPLES", 5)
    examples = dp.load_examples("synth_sentiment", "train", "en")[:200]
    tok = dp.synthetic_tokenizer("bert")
    builds = []
    real_build = FeatureCache._build

    def counting(self, *a, **k):
        builds.append(1)
        return real_build(self, *a, **k)

    monkeypatch.setattr(FeatureCache, "_build", counting)
    out = [None, None]

    def run(i):
        out[i] = FeatureCache(tmp_path).features("synth_sentiment", examples, tok, 32)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    _same(out[0], out[1])
    assert len(_entries(tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    examples = dp.load_examples("synth_sentiment", "train", "en")[:30]
    tok = dp.synthetic_tokenizer("bert")
    monkeypatch.setattr(feature_cache, "CHUNK_EXAMPLES", 10)
    calls = []
    real = dp.featurize

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(dp, "featurize", failing)
    with pytest.raises(KeyboardInterrupt):
        FeatureCache(tmp_path).features("synth_sentiment", examples, tok, 32)
    assert _entries(tmp_path) == [] and not list(tmp_path.glob(".tmp-*"))


def test_index_says_what_is_cached(tmp_path):
    examples = dp.load_examples("synth_sentiment", "train", "en")[:10]
    tok = dp.synthetic_tokenizer("bert")
    selection = {"task": "synth_sentiment", "split": "train", "language": "en", "seed": 0}
    cache = FeatureCache(tmp_path)
    assert cache.status(selection, tok, 32) == "to build"
    cache.features("synth_sentiment", examples, tok, 32, selection=selection)
    assert cache.status(selection, tok, 32) == "cached"
    assert cache.status({**selection, "seed": 1}, tok, 32) == "to build"
    (key,) = _entries(tmp_path)
    (tmp_path / key / "lengths.bin").unlink()
    assert cache.status(selection, tok, 32) == "to build"


BUILD_SCRIPT = r"""
import json, resource, sys, tempfile
import numpy as np
sys.path.insert(0, {root!r})
from tests.benchmarks.feature_build import SyntheticReviews, build
from repro.study import feature_cache
feature_cache.CHUNK_EXAMPLES = 128
n = int(sys.argv[1])
print(json.dumps(build(SyntheticReviews(n), tempfile.mkdtemp(dir={tmp!r}))))
"""


def test_building_memory_does_not_grow_with_the_split(tmp_path):
    """The benchmark's code path (tests/benchmarks/test_feature_build.py) at 500 and 4,000 rows (chunks of 128) in
    fresh interpreters: 8x the rows must not add 8x the memory (one chunk is held at a time). Featurizing the
    4,000 rows in one call, as before the cache, adds ~160 MB (~40 kB a row: 329 MB at 8,000)."""
    script = BUILD_SCRIPT.format(root=str(ROOT), tmp=str(tmp_path))
    grown = {}
    for n in (500, 4_000):
        out = subprocess.run([sys.executable, "-c", script, str(n)], capture_output=True, text=True, timeout=300,
                             env={"JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr[-2000:]
        grown[n] = json.loads(out.stdout.strip().splitlines()[-1])
    small, large = grown[500]["build_rss_growth_mb"], grown[4_000]["build_rss_growth_mb"]
    assert grown[4_000]["features"] == 4_000
    assert large < 60, grown
    assert large < 2 * small + 50, grown


def test_preflight_says_what_is_cached_and_what_will_be_built(tmp_path):
    """preflight.feature_sets() names the selections a cell loads; featurizing one as the cell does (inputs.load_split +
    inputs.featurize) turns exactly that one to cached."""
    from repro import config
    from repro.study import inputs, preflight
    from tests.support.cli import SMOKE, tiny_overrides

    cfg = config.load(SMOKE, tiny_overrides(tmp_path)).resolved_cell()
    sets = preflight.feature_sets(cfg)
    # target train (rest) and dev, then en and x1 of the evaluation split
    assert [(s["split"], s["language"]) for _, s, _ in sets] == [("train", "en"), ("dev", "en"), ("test", "en"),
                                                                ("test", "x1")]
    first = preflight.feature_summary([cfg])
    assert "0 of 4 feature sets cached, 4 to build" in first
    task = dp.get_task("synth_sentiment")
    examples = inputs.load_split(cfg, task, "test", "x1", cfg.eval.max_examples, for_eval=True)
    inputs.featurize(cfg, task, examples, inputs.tokenizer_for(cfg))
    second = preflight.feature_summary([cfg])
    assert "1 of 4 feature sets cached, 3 to build" in second and "test/x1" not in second


def test_hashing_a_tokenizer_does_not_keep_it_alive():
    """The hash table of tokenizers holds them weakly: a grid loads one tokenizer a cell, and a strong reference
    kept each (XLM-R's: ~300 MB of native memory) for the process's life (+300 MB resident a cell)."""
    import copy
    import gc
    import weakref

    tok = copy.deepcopy(dp.synthetic_tokenizer("bert"))
    first = feature_cache.tokenizer_hash(tok)
    assert feature_cache.tokenizer_hash(tok) == first
    gone = weakref.ref(tok)
    del tok
    gc.collect()
    assert gone() is None
    other = copy.deepcopy(dp.synthetic_tokenizer("roberta"))   # a new object may reuse the dead one's id
    assert feature_cache.tokenizer_hash(other) != first
