#!/usr/bin/env python
"""The device check that takes minutes: does the package run on this GPU, and how fast (issue 33).

    PYTHONPATH=. python scripts/bench_quick.py [--out DIR] [--tiny] [--pieces latency,train,parity,smoke]
    scripts/bench_gpu.sh --quick [DIR]                      # the same, with the GPU checks of bench_gpu.sh

Runs from the checkout, installs nothing, needs no network and no optional package (datasets, wandb): jax,
flax, optax, torch and transformers only. Models are random inits from config (no hub). Pieces, in order:

    latency  bf16 forward, B=1 and B=32 at T=128, BERT-base and XLM-R-base, JAX vs PyTorch (eager, autocast)
    train    bf16 train step (AdamW, clipping, dropout on) at B=32/T=128, same models: ms, tokens/s, MFU
    parity   fp32 forward on the device: our BERT-base vs transformers on the same weights (max |diff|)
    smoke    one smoke cell (bert-tiny, synthetic sentiment) through `python -m repro run`: wall time, score

Writes DIR/summary.json (every figure, the device, the versions), DIR/summary.md (the table it prints) and
DIR/bench.json (the train and latency figures in pytest-benchmark's format, so `repro plan --benchmarks
DIR/bench.json` prices a grid from them). A piece that fails is recorded with its error and the others
still run; the exit status is 1 when any failed. The runtime budget per piece is in docs/benchmarks.md.
--tiny runs the same pieces on the test suite's tiny configs and small shapes (the CPU test of this script).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PIECES = ("latency", "train", "parity", "smoke")
HEAD = "sequence_classification"


def _median_s(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Check:
    def __init__(self, tiny: bool):
        from tests.benchmarks import harness

        self.h = harness
        self.tiny = tiny
        self.models = ("bert-tiny", "roberta-tiny") if tiny else ("bert-base-cased", "xlm-roberta-base")
        self.shapes = ((1, 16), (4, 16)) if tiny else ((1, 128), (32, 128))
        self.repeats, self.warmup = (3, 1) if tiny else (10, 3)
        import jax
        import torch

        self.jax, self.torch = jax, torch
        self.device = harness.torch_device()
        dev = jax.devices()[0]
        self.device_kind = dev.device_kind
        self.platform = dev.platform
        self.rows: list[dict] = []   # pytest-benchmark rows

    def _record(self, kind, impl, model, dtype, batch, seq_len, seconds, extra=None):
        from flax_models import flops

        config = self.h.CONFIGS[model]
        fn = flops.forward_flops if kind == "forward" else flops.train_flops
        per_example = fn(config, seq_len, HEAD, 3)
        info = {"kind": kind, "impl": impl, "model": model, "head": HEAD, "dtype": dtype, "batch": batch,
                "seq_len": seq_len, "flops_per_example": per_example, "flops_per_batch": per_example * batch,
                "tokens": batch * seq_len, "platform": self.platform,
                "device_kind": self.device_kind if impl == "jax" else self.h.torch_device_kind(), **(extra or {})}
        self.rows.append({"name": f"bench_quick[{model}-{kind}-{dtype}-b{batch}-t{seq_len}-{impl}]",
                          "stats": {"median": seconds, "rounds": self.repeats}, "extra_info": info})
        return info

    def latency(self) -> list[dict]:
        import jax.numpy as jnp

        import flax_models as fm
        from repro.training import precision, steps

        out = []
        for model in self.models:
            config = self.h.CONFIGS[model]
            jm = fm.from_config(config, head=HEAD, num_labels=3, dtype=jnp.bfloat16)
            tm = self.h.build_torch_model(config, HEAD, 3).to(self.device).eval()
            graphdef, params, rest = steps.split_model(jm)
            with precision.scope("bf16"):
                forward = self.jax.jit(steps.make_forward(graphdef, rest))
                for batch, seq_len in self.shapes:
                    inputs = self.h.make_inputs(config, HEAD, batch, seq_len)
                    ids, mask = jnp.asarray(inputs["input_ids"]), jnp.asarray(inputs["attention_mask"])
                    jax_s = _median_s(lambda: self.jax.block_until_ready(forward(params, ids, mask)),
                                      self.repeats, self.warmup)
                    t_in = {k: self.torch.from_numpy(v).long().to(self.device) for k, v in inputs.items()}

                    def torch_call():
                        with self.torch.no_grad(), self.torch.autocast(self.device, dtype=self.torch.bfloat16):
                            tm(**t_in)
                        self.h.torch_sync()

                    torch_s = _median_s(torch_call, self.repeats, self.warmup)
                    self._record("forward", "jax", model, "bfloat16", batch, seq_len, jax_s)
                    self._record("forward", "torch", model, "bfloat16", batch, seq_len, torch_s)
                    out.append({"model": model, "batch": batch, "seq_len": seq_len, "jax_ms": jax_s * 1e3,
                                "torch_ms": torch_s * 1e3, "jax_over_torch": jax_s / torch_s})
        return out

    def train(self) -> list[dict]:
        import flax_models as fm
        import jax.numpy as jnp
        from flax_models.flops import peak_flops
        from repro.training import precision

        out = []
        batch, seq_len = self.shapes[-1]
        for model in self.models:
            config = self.h.CONFIGS[model]
            data = self.h.train_batch(config, HEAD, batch, seq_len)
            jm = fm.from_config(config, head=HEAD, num_labels=3, dtype=jnp.bfloat16)
            info: dict = {}
            with precision.scope("bf16"):
                call, _ = self.h.jax_train_call(jm, HEAD, data, info)
                jax_s = _median_s(call, self.repeats, self.warmup)
            tm = self.h.build_torch_model(config, HEAD, 3).to(self.device)
            torch_s = _median_s(self.h.torch_train_call(tm, HEAD, data, "bfloat16", {}), self.repeats, self.warmup)
            rec = self._record("train", "jax", model, "bfloat16", batch, seq_len, jax_s,
                               {"compile_s": info.get("compile_s")})
            self._record("train", "torch", model, "bfloat16", batch, seq_len, torch_s)
            peak = peak_flops(self.device_kind, "bfloat16")
            achieved = rec["flops_per_batch"] / jax_s
            out.append({"model": model, "batch": batch, "seq_len": seq_len, "jax_ms": jax_s * 1e3,
                        "torch_ms": torch_s * 1e3, "jax_over_torch": jax_s / torch_s,
                        "tokens_per_s": batch * seq_len / jax_s, "tflops_per_s": achieved / 1e12,
                        "mfu": achieved / peak if peak else None, "compile_s": info.get("compile_s")})
        return out

    def parity(self) -> dict:
        from flax_models import parity

        model = self.models[0]
        tm = self.h.build_torch_model(self.h.CONFIGS[model], HEAD, 3).eval()
        with tempfile.TemporaryDirectory() as folder:
            tm.save_pretrained(folder)
            result = parity.compare(folder, head=HEAD, num_labels=3)
        return {"model": model, "device": self.device_kind, "max_abs_hidden": result.max_abs_hidden,
                "max_abs_logits": result.max_abs_logits, "tolerance": result.tolerance,
                "passed": max(result.max_abs_hidden, result.max_abs_logits or 0.0) <= result.tolerance}

    def smoke(self, out_dir: Path) -> dict:
        run_dir = out_dir / "smoke-run"
        overrides = [f"output_dir={run_dir}", "grid.models=[bert-tiny]", "grid.intermediate_tasks=[none]",
                     "grid.target_tasks=[synth_sentiment]", "grid.seeds=[0]", "target.max_steps=30",
                     "precision=bf16"]
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "repro", "grid", "smoke", "--no-preflight", *overrides], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t
        if r.returncode != 0:
            raise RuntimeError(f"smoke cell exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
        (results,) = run_dir.glob("cells/*/results.json")
        res = json.loads(results.read_text())
        return {"cell": res["cell_id"], "wall_s": wall, "device": res["environment"].get("device_kind"),
                "average": res["average"], "compute": res.get("compute"),
                "train_steps": res["training"]["target"]["steps"]}


def run(pieces, out_dir: Path, tiny: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    check = Check(tiny)
    import flax
    import transformers

    summary: dict = {"device": check.device_kind, "platform": check.platform, "torch_device": check.device,
                     "versions": {"jax": check.jax.__version__, "flax": flax.__version__,
                                  "torch": check.torch.__version__, "transformers": transformers.__version__,
                                  "python": platform.python_version()},
                     "tiny": tiny, "pieces": {}, "seconds": {}, "errors": {}}
    for piece in pieces:
        t = time.perf_counter()
        print(f"bench_quick: {piece} ...", file=sys.stderr, flush=True)
        try:
            summary["pieces"][piece] = check.smoke(out_dir) if piece == "smoke" else getattr(check, piece)()
        except Exception as e:   # noqa: BLE001 - a failed piece is recorded and the others still run
            summary["errors"][piece] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            (out_dir / f"{piece}.traceback.txt").write_text(traceback.format_exc())
        summary["seconds"][piece] = round(time.perf_counter() - t, 1)
    (out_dir / "bench.json").write_text(json.dumps({"benchmarks": check.rows}, indent=1) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = render(summary)
    (out_dir / "summary.md").write_text(table)
    return summary


def _f(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def render(summary: dict) -> str:
    """The compact table of summary.json (markdown)."""
    p, lines = summary["pieces"], []
    v = summary["versions"]
    lines.append(f"device: {summary['device']} ({summary['platform']}); jax {v['jax']}, torch {v['torch']}, "
                 f"transformers {v['transformers']}, python {v['python']}"
                 + (" — tiny shapes" if summary["tiny"] else ""))
    lines.append("")
    lines.append("| piece | model | shape | JAX ms | PyTorch ms | JAX/PyTorch | other |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in p.get("latency", []):
        lines.append(f"| bf16 forward | {r['model']} | {r['batch']}x{r['seq_len']} | {_f(r['jax_ms'])} | "
                     f"{_f(r['torch_ms'])} | {_f(r['jax_over_torch'], 3)} | |")
    for r in p.get("train", []):
        lines.append(f"| bf16 train step | {r['model']} | {r['batch']}x{r['seq_len']} | {_f(r['jax_ms'])} | "
                     f"{_f(r['torch_ms'])} | {_f(r['jax_over_torch'], 3)} | MFU {_f(r['mfu'], 3)}, "
                     f"{_f(r['tflops_per_s'], 3)} TFLOP/s, compile {_f(r['compile_s'], 3)} s |")
    if "parity" in p:
        r = p["parity"]
        lines.append(f"| fp32 parity | {r['model']} | | | | | max abs {_f(r['max_abs_hidden'], 2)} (hidden), "
                     f"{_f(r['max_abs_logits'], 2)} (logits): {'PASS' if r['passed'] else 'FAIL'} |")
    if "smoke" in p:
        r = p["smoke"]
        lines.append(f"| smoke cell | bert-tiny | | | | | {_f(r['wall_s'], 3)} s, {r['train_steps']} steps, "
                     f"average {_f(r['average'], 4)} |")
    for piece, err in summary["errors"].items():
        lines.append(f"| {piece} | FAILED | | | | | {err} |")
    lines.append("")
    lines.append("seconds per piece: " + ", ".join(f"{k} {_f(s, 3)}" for k, s in summary["seconds"].items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ap.add_argument("--out", type=Path, default=Path(f"results/bench-quick-{stamp}"))
    ap.add_argument("--tiny", action="store_true", help="tiny configs and shapes (the CPU test of this script)")
    ap.add_argument("--pieces", default=",".join(PIECES), help=f"comma-separated subset of {','.join(PIECES)}")
    args = ap.parse_args(argv)
    pieces = [p for p in args.pieces.split(",") if p]
    unknown = [p for p in pieces if p not in PIECES]
    if unknown:
        print(f"bench_quick: unknown piece(s) {', '.join(unknown)}; pieces: {', '.join(PIECES)}", file=sys.stderr)
        return 2
    summary = run(pieces, args.out, args.tiny)
    print(render(summary), end="")
    print(f"bench_quick: wrote {args.out}/summary.json, summary.md, bench.json", file=sys.stderr)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
