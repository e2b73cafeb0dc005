"""Building the features of an amazon_polarity-sized training set through the feature cache, as a cell does,
with its peak memory: tests/benchmarks/test_feature_build.py (3.6 M rows) and the small-scale check in
tests/repro/test_feature_cache.py run this code path in a fresh interpreter.

    python -m tests.benchmarks.feature_build 3600000 [--tokenizer FOLDER] [--dir DIR]

The rows follow amazon_polarity's schema as data_prep.hub reads it (text = title + " " + content, label
positive/negative), drawn from the synthetic vocabulary (the synthetic BERT tokenizer maps every word to an
id) with amazon_polarity's lengths: a 1-12 word title and a 15-190 word review (the dataset's contents are
~75 words on average). They are made on demand, block by block, so the rows themselves are never all in
memory: what is measured is the cache's building, not a list of 3.6 M Python objects.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Sequence

import numpy as np

import data_prep as dp

BLOCK = 1024


class SyntheticReviews(Sequence):
    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed = n, seed
        from data_prep.synthetic import vocabulary

        self.words = np.asarray(vocabulary())
        self._block = (None, None)

    def __len__(self):
        return self.n

    def _rows(self, b: int) -> list:
        if self._block[0] == b:
            return self._block[1]
        rng = np.random.default_rng([self.seed, b])
        size = min(BLOCK, self.n - b * BLOCK)
        title_len, body_len = rng.integers(1, 13, size), rng.integers(15, 191, size)
        ids = rng.integers(0, len(self.words), int((title_len + body_len).sum()))
        labels = rng.integers(0, 2, size)
        rows, pos = [], 0
        for i in range(size):
            title = " ".join(self.words[ids[pos:pos + title_len[i]]])
            pos += title_len[i]
            body = " ".join(self.words[ids[pos:pos + body_len[i]]])
            pos += body_len[i]
            rows.append(dp.Example(id=f"amazon-{b * BLOCK + i}", language="en", text=f"{title} {body}",
                                   label=("negative", "positive")[labels[i]]))
        self._block = (b, rows)
        return rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(self.n)
            if step != 1:
                raise ValueError("SyntheticReviews: slices with a step are not supported")
            out = []
            for b in range(start // BLOCK, (stop - 1) // BLOCK + 1 if stop > start else start // BLOCK):
                rows = self._rows(b)
                lo, hi = max(start - b * BLOCK, 0), min(stop - b * BLOCK, len(rows))
                out.extend(rows[lo:hi])
            return out
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self._rows(i // BLOCK)[i % BLOCK]

    def __iter__(self):
        for b in range((self.n + BLOCK - 1) // BLOCK):
            yield from self._rows(b)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def build(examples, cache_dir: str, tokenizer=None, task: str = "amazon_polarity") -> dict:
    """Builds the features of `examples` through repro.study.feature_cache; returns sizes, time and memory:
    `build_rss_growth_mb` = the process's peak resident memory during the build minus its resident memory
    before it (imports, tokenizer), `peak_rss_mb` = the peak itself (Linux /proc)."""
    from repro.study.feature_cache import FeatureCache

    tok = tokenizer or dp.synthetic_tokenizer("bert")
    spec = dp.get_task(task)
    tok("warm up")   # the tokenizer's own first-call allocations are not the build's
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    feats = FeatureCache(cache_dir).features(spec, examples, tok, spec.max_length)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    size = sum(os.path.getsize(os.path.join(dp_, f)) for dp_, _, fs in os.walk(cache_dir) for f in fs)
    return {"rows": len(examples), "features": len(feats), "max_length": spec.max_length, "seconds": round(seconds, 1),
            "rows_per_s": round(len(examples) / seconds), "rss_before_mb": round(before / 1024),
            "peak_rss_mb": round(peak / 1024), "build_rss_growth_mb": round((peak - before) / 1024),
            "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cache_bytes": size}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", type=int, nargs="?", default=3_600_000)
    ap.add_argument("--tokenizer", help="an HF tokenizer folder (default: the synthetic BERT tokenizer)")
    ap.add_argument("--dir", default=None, help="cache folder (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    import shutil
    import tempfile

    tok = dp.load_tokenizer(args.tokenizer) if args.tokenizer else None
    folder = args.dir or tempfile.mkdtemp(prefix="xt-feature-bench-")
    try:
        print(json.dumps(build(SyntheticReviews(args.rows), folder, tok)))
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
