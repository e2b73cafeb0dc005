"""Device-hours priced from measured train steps instead of an assumed MFU (`repro plan --benchmarks BENCH_JSON`).

BENCH_JSON is the package's own pytest-benchmark output (tests/benchmarks/test_train.py, e.g. from
scripts/bench_gpu.sh or scripts/bench_quick.py on the device the grid will run on). For each of the grid's
models, the JAX train-step benchmark of that model at the grid's compute dtype gives a measured rate:

    rate  = analytic training FLOPs of the benchmark's batch / its median step time      (FLOP/s)
    hours = the model's planned training FLOPs / rate / 3600

A model matches a benchmark when the benchmark's `model` is the model's name in the config, its
name_or_path, or that path's last part; several shapes of one model: the largest batch x seq_len (the
closest to training). The rate carries over to the run's other lengths and heads as FLOPs-proportional
(the measured MFU is assumed to hold): an estimate, said so in the output. A model without a benchmark is
priced at the assumed MFU when --device/--peak-flops is given, else left unpriced; the table says which.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from repro import tables
from repro.config import Config
from repro.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class MeasuredRate:
    benchmark: str               # the benchmark's model name
    dtype: str
    batch: int
    seq_len: int
    step_s: float                # median train step time
    flops_per_batch: float
    device: str

    @property
    def flops_per_s(self) -> float:
        return self.flops_per_batch / self.step_s


# precision -> the benchmarks' dtype that measures it (tests/conftest.py runs float32 at matmul precision
# "highest", which is precision fp32; no benchmark case measures TF32)
BENCH_DTYPE = {"fp32": "float32", "bf16": "bfloat16"}


def load_rates(path: str | Path, precision: str) -> dict[str, MeasuredRate]:
    """benchmark model name -> its measured JAX train-step rate at `precision` (the largest shape)."""
    if precision not in BENCH_DTYPE:
        raise ConfigError(f"plan: --benchmarks has no {precision} cases (the benchmarks measure "
                          f"{', '.join(BENCH_DTYPE)}); price precision={precision} with --device and --mfu")
    dtype = BENCH_DTYPE[precision]
    from repro.report import load_benchmarks

    rows = load_benchmarks(Path(path))   # a file that is not one: a one-line ResultsError naming it
    best: dict[str, MeasuredRate] = {}
    for r in rows:
        if r.get("kind") != "train" or r.get("impl") != "jax" or r.get("dtype") != dtype:
            continue
        rate = MeasuredRate(benchmark=str(r["model"]), dtype=dtype, batch=int(r["batch"]), seq_len=int(r["seq_len"]),
                            step_s=r["median_ms"] / 1e3, flops_per_batch=float(r["flops_per_batch"]),
                            device=str(r.get("device_kind") or r.get("platform") or "?"))
        old = best.get(rate.benchmark)
        if old is None or rate.batch * rate.seq_len > old.batch * old.seq_len:
            best[rate.benchmark] = rate
    if not best:
        raise ConfigError(f"plan: --benchmarks {path} has no JAX train-step benchmark at {dtype} "
                          f"(tests/benchmarks/test_train.py cases)")
    return best


def match(cfg: Config, name: str, rates: dict[str, MeasuredRate]) -> MeasuredRate | None:
    m = cfg.models[name]
    for key in (name, m.name_or_path, Path(m.name_or_path).name if m.name_or_path else None):
        if key and key in rates:
            return rates[key]
    return None


def price(cfg: Config, phases, rates: dict[str, MeasuredRate], dev=None) -> tuple[list[dict], str]:
    """(per-model rows, summary line) of the grid's device-hours from the measured rates; `dev` (plan.Device)
    prices the models without a benchmark at its assumed MFU."""
    flops: dict[str, int] = {}
    for p in phases:
        flops[p.model] = flops.get(p.model, 0) + (p.flops or 0)
    out, measured_h, assumed_h = [], 0.0, 0.0
    for model, total in flops.items():
        rate = match(cfg, model, rates)
        if rate is not None:
            hours = total / rate.flops_per_s / 3600
            measured_h += hours
            source = (f"measured: {rate.benchmark} train step {rate.batch}x{rate.seq_len} {rate.dtype} "
                      f"{rate.step_s * 1e3:.4g} ms on {rate.device}")
        elif dev is not None:
            hours = dev.hours(total)
            assumed_h += hours
            source = f"assumed: MFU {dev.mfu} x {tables.fmt(dev.peak / 1e12)} TFLOP/s peak ({dev.name})"
        else:
            hours, source = None, "unpriced: no benchmark of this model (and no --device for an assumed MFU)"
        out.append({"model": model, "FLOPs": float(total), "TFLOP/s": rate.flops_per_s / 1e12 if rate else None,
                    "device-h": hours, "priced from": source})
    summary = (f"device-hours from measurements: {tables.fmt(measured_h)} (models with a benchmark)"
               + (f" + {tables.fmt(assumed_h)} at the assumed MFU" if assumed_h else "")
               + "; each rate assumes the benchmark's achieved FLOP/s holds at the run's lengths and heads")
    return out, summary


def render(rows: list[dict], summary: str, fmt: str = "text") -> str:
    if fmt == "csv":
        return tables.csv_text(rows)
    draw = tables.markdown if fmt == "markdown" else tables.text
    header = list(rows[0]) if rows else ["model"]
    return draw(header, [[r[k] for k in header] for r in rows]).rstrip("\n") + "\n" + summary
