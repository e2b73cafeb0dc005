"""report.md: the report's tables, findings, deviations, figures and benchmarks as markdown (no file writes)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from repro.report.rows import NON_ENGLISH_EXCL, TOKENISATION_CAVEAT, published_text
from repro.tables import fmt, markdown

# extra_info keys of tests/benchmarks (older names too), shown when present.
_BENCH_KEYS = ("kind", "impl", "family", "model", "head", "batch", "batch_size", "seq_len", "dtype", "device_kind")
_BENCH_EXTRA = ("params.total", "params.embedding", "params.non_embedding", "param_count.total",
                "param_count.embedding", "flops", "flops_per_batch", "tokens_per_s", "compile_s")


def _nan(v) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def ci_text(mean, lo, hi, n=None, bold_if_resolved: bool = False, few_seeds: bool = False) -> str:
    """mean [low, high] (n=k); the mean alone where there is no interval; — where there is no mean.
    bold_if_resolved: printed in bold where the interval excludes 0 (pass it only for a comparison that
    survives its multiplicity correction); few_seeds: the interval is marked † (fewer than 5 seeds)."""
    if _nan(mean) or n == 0:
        return "—"
    count = f" (n={n})" if n is not None else ""
    if _nan(lo) or _nan(hi):
        return f"{fmt(mean)}{count}, no CI"
    text = f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]{'†' if few_seeds else ''}{count}"
    return f"**{text}**" if bold_if_resolved and (lo > 0 or hi < 0) else text


def detectable_section(rows: list[dict]) -> str:
    """What the design can and cannot detect, per primary endpoint."""
    if not rows:
        return ""
    out = io.StringIO()
    out.write("## What this design can detect (primary endpoints)\n\n")
    out.write(markdown(["task", "model", "arm − baseline", "endpoint", "seeds", "difference [95 % CI]",
                        "seed / example share", "MDE (80 % power)", "δ", "verdict", "seeds for MDE ≤ δ",
                        "seeds for 1 point", "seeds for 2 points", "examples for MDE ≤ δ"],
                       [[r["target_task"] + _size(r["train_size"]), r["model"],
                         f"{r['intermediate_task']} − {r['baseline']}", r["language"].replace("_", " "), r["diff_n"],
                         ci_text(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"], None,
                                 True, bool(r["diff_few_seeds"])),
                         _shares(r), _num(r["diff_mde"]), fmt(r["diff_delta"]), r["diff_verdict"],
                         _seeds(r, "diff_seeds_needed"), _seeds(r, "diff_seeds_needed_1pt"),
                         _seeds(r, "diff_seeds_needed_2pt"), _examples(r)] for r in rows]))
    out.write("\nMDE: the smallest true difference a two-sided 5 % test finds with 80 % probability at this many "
              "seeds and examples. Seeds for MDE ≤ δ: the measured per-seed variance and example component held "
              "fixed, at this evaluation size (`> 100000` where the example component alone keeps the MDE above it); examples: "
              "the fewest per language below which no seed count reaches δ (— where not estimable). A verdict "
              "**underpowered** says the design could not have seen δ; it is not evidence of no effect.\n\n")
    return out.getvalue()


def _num(v) -> str:
    return "—" if _nan(v) else fmt(v)


def _seeds(r, key) -> str:
    v = r.get(key)
    if _nan(v):
        return "—" if r.get("diff_verdict") in (None, "no interval") or r.get("diff_n") == 1 else "> 100000"
    return str(int(v))


def _examples(r) -> str:
    v = r.get("diff_examples_needed")
    if _nan(v):
        return "—"
    have = r.get("ci_examples")
    return f"{int(v):,}" + (f" (has {int(have):,})" if not _nan(have) else "")


def _row_label(r) -> str:
    name = r["language"].replace("_", " ")
    role = r.get("role")
    return f"{name} (primary)" if role == "primary" else f"{name} (secondary)" if role == "secondary" else name


def _p_text(r) -> str:
    p, holm = r.get("diff_p"), r.get("diff_p_holm")
    if _nan(p):
        return "—"
    return f"{fmt(p)} ({fmt(holm)})" if not _nan(holm) else fmt(p)


def _shares(r) -> str:
    a, b = r.get("diff_seed_share"), r.get("diff_example_share")
    return "—" if _nan(a) or _nan(b) else f"{a:.0%} / {b:.0%}"


def _size(r) -> str:
    return f", train size {r}" if r != "all" else ""


def render(cells, tables, findings, deviations, bootstrap, bench, plots, results_dir: Path, bench_path) -> str:
    n_syn = sum(c.synthetic for c in cells)
    sizes = {r["train_size"] for r in tables["per_language"]}
    md = io.StringIO()
    w = md.write
    w(f"# xtreme-transfer report{' — SYNTHETIC RUN' if n_syn else ''}\n\n")
    if n_syn:
        w(f"> **SYNTHETIC**: {n_syn} of {len(cells)} cells ran on synthetic data with tiny models. The numbers "
          "check that the pipeline works; they say nothing about the models or the claims of the study.\n\n")
    if tables["diverged"]:
        w(f"> **{len(tables['diverged'])} cell(s) diverged** and have no score; they are in no table, average or "
          "finding (list under *Diverged cells*).\n\n")
    w(f"Results: `{results_dir}` — {len(cells)} cells, "
      f"{len({c.model.name for c in cells})} models, {len({c.target_task for c in cells})} target tasks, "
      f"seeds {', '.join(str(s) for s in sorted({c.seed for c in cells}))}. "
      "Scores are the target task's primary metric, mean over seeds with its 95 % interval [low, high] "
      "(n = seeds; † fewer than 5 seeds); a difference is an arm minus its baseline (with − without "
      "intermediate training; with a control arm also intermediate − control and control − none), paired by "
      "seed and by example. **Bold**: a target's primary endpoint whose interval excludes 0, or a language "
      "whose Holm-adjusted p is below 0.05; nothing else is bold.\n\n")

    w("## Uncertainty\n\n")
    w(f"Every interval is a {bootstrap['method']} at {bootstrap['level']:.0%}: the seed is the unit of "
      "inference (a paired difference's interval is the t interval of its per-seed differences, t with "
      "Satterthwaite's degrees of freedom), and the paired example bootstrap "
      f"({bootstrap['resamples']} resamples, RNG seed {bootstrap['seed']}: each (target task, language)'s "
      "evaluation examples drawn with replacement, the same draw for every cell of the task) adds only the "
      "part of the variance the seeds share because they score the same examples. Seeds are never resampled. "
      "With 2 seeds there is no interval; with 1 seed the interval is over examples only. Every number is "
      "defined in the repository's docs/report.md.\n\n")
    w(markdown(["task", "resampled over", "paired examples per language", "ids not in every cell"],
               [[t, "seeds and examples" if s["mode"] == "examples" else f"seeds only: {s.get('why', '')}",
                 _range(s["paired_examples"]), sum(s["unpaired_examples"].values())]
                for t, s in bootstrap["tasks"].items()]))
    w("\n")

    w("## Target scores with and without intermediate training\n\n")
    pairings = tables["same_data_pairings"]
    if pairings:
        w("> **Same data twice**: " + "; ".join(f"{p['intermediate_task']}→{p['target_task']} ({p['model']}): "
                                                 f"{p['why']}" for p in pairings)
          + ". These pairings are marked ⚠ below; they are not intermediate-task transfer and no finding uses "
          "them.\n\n")
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in tables["per_language"]}):
        rows = [r for r in tables["per_language"] if r["target_task"] == task and r["train_size"] == size]
        w(f"### {task} ({rows[0]['metric']}){_size(size)}\n\n")
        sources = sorted({r["published_source"] for r in rows if r.get("published_source")})
        w(markdown(["model", "arm", "baseline", "row", "baseline score", "arm score", "difference [95 % CI]",
                    "p (Holm)", "MDE", "seed / example share", "verdict", "published (context)"],
                   [[r["model"], r["intermediate_task"] + (" ⚠" if r.get("same_data_as_target") else ""),
                     r.get("baseline", "none"), _row_label(r),
                     ci_text(r["without_mean"], r["without_ci_low"], r["without_ci_high"], r["without_n"]),
                     ci_text(r["with_mean"], r["with_ci_low"], r["with_ci_high"], r["with_n"]),
                     ci_text(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"], r["diff_n"], r.get("diff_bold", False),
                             bool(r.get("diff_few_seeds"))),
                     _p_text(r), fmt(r.get("diff_mde")) if not _nan(r.get("diff_mde")) else "—", _shares(r),
                     r.get("diff_verdict") or "—", published_text(r)] for r in rows]))
        primary = "the non-English average" if any(r["language"] == "non_english" for r in rows) else "the average"
        w(f"\nRows: the **primary** endpoint ({primary}) is "
          "the one this target's verdict rests on; the other averages are secondary (never bold); the "
          "languages are **exploratory**: p Holm-adjusted within each (model, arm, baseline)'s languages, bold "
          "only where that adjusted p < 0.05. Verdict against δ = "
          f"{fmt(rows[0].get('diff_delta'))}: different / equivalent (TOST: 90 % interval inside ±δ) / "
          "underpowered (MDE > δ) / inconclusive.\n")
        if any(r["language"] == NON_ENGLISH_EXCL for r in rows):
            w(f"\n`non english excl ja zh`: the zero-shot average without {', '.join(TOKENISATION_CAVEAT)}, whose "
              "tagging scores are limited by tokenisation (README); both averages are shown, neither is "
              "preferred.\n")
        if sources:
            w(f"\nPublished: {'; '.join(sources)}. Other models, the paper's own split and language set: a sanity "
              "range, not a comparison. Our average is over the languages above.\n")
        else:
            w("\nPublished: no number of the XTREME papers is recorded for this task (repro/report/published.py).\n")
        suffix = "" if len({r["train_size"] for r in tables["per_language"] if r["target_task"] == task}) <= 1 \
            else f"_n{size}"
        for stem, what in (("scores", "scores"), ("heatmap", "with − without per language")):
            if f"{stem}_{task}{suffix}.png" in plots:
                w(f"\n![{task} {what}](plots/{stem}_{task}{suffix}.png)\n")
        w("\n")

    w(detectable_section(tables.get("detectable", [])))
    w("## Transfer gap (English − mean of the other languages)\n\n")
    w(markdown(["task", "model", "arm", "baseline", *(["train size"] if len(sizes) > 1 else []), "gap baseline",
                "gap arm", "difference"],
               [[r["target_task"], r["model"], r["intermediate_task"], r.get("baseline", "none"),
                 *([r["train_size"]] if len(sizes) > 1 else []),
                 ci_text(r["gap_without_mean"], r.get("gap_without_ci_low"), r.get("gap_without_ci_high"),
                         r["gap_without_n"]),
                 ci_text(r["gap_with_mean"], r.get("gap_with_ci_low"), r.get("gap_with_ci_high"), r["gap_with_n"]),
                 ci_text(r["gap_diff_mean"], r.get("gap_diff_ci_low"), r.get("gap_diff_ci_high"), r["gap_diff_n"])] for r in tables["transfer_gap"]]))
    if "transfer_gap.png" in plots:
        w("\n![transfer gap](plots/transfer_gap.png)\n")

    w("\n## Findings of the seed study\n\n")
    w("Each verdict is decided by the 95 % intervals shown: a difference counts only where its interval "
      "excludes 0, so a finding is **inconclusive** whenever a deciding interval contains 0 or does not exist. "
      "Claims 1–5 compare families on the `average` over the languages an experiment's cells share, mean over "
      "seeds; a family is the mean of its models (fixed in advance, never the best by point estimate); they "
      "run on the English-only trio (BERT, RoBERTa, XLNet base) where the grid has it, else the evidence states "
      "the pretraining-language confound. Claim 1 is read as a family ranking within the intermediate-trained "
      "regime (not claim 11's negation). Claim 11 is decided per target on its primary endpoint (the "
      "non-English average of a cross-lingual target; English-only models left out there), with its verdict "
      "against δ, and counted across targets with Dror et al.'s (2017) partial conjunction procedure (5 % "
      "family-wise for \"at least k of N tasks\"). Findings use each task's largest training size and no "
      "same-data pairing. Full numbers: `claims.json`.\n\n")
    w(markdown(["#", "claim", "verdict", "deciding differences [95 % CI]"],
               [[str(c.id), c.text, f"**{c.verdict}**", c.evidence] for c in findings]))

    w("\n## Deviations from the seed study's setup\n\n")
    w("What this run did against what the paper did (its setup claims 6–10). These describe the run; they are "
      "not findings.\n\n")
    w(markdown(["#", "setup", "paper", "this run", "as in the paper"],
               [[str(d.id), d.item, d.paper, d.run, d.follows] for d in deviations]))
    if pairings:
        w("\nPairings whose intermediate data is the target's own training data: "
          + "; ".join(f"{p['intermediate_task']}→{p['target_task']} ({p['cells']} cells)" for p in pairings) + ".\n")

    w("\n## Efficiency that can differ\n\n")
    w("Intermediate training changes what the target phase starts from, so it can change how fast the target "
      "learns and what the whole costs. The intermediate run is shared by every target of (model, "
      "intermediate task, seed): each cell carries its FLOPs divided by the cells of this run that reuse it.\n\n")
    for p in plots:
        if p.startswith("curves_"):
            w(f"![learning curves](plots/{p})\n")
    stt = tables["steps_to_target_summary"]
    w("\n### Learning-curve area and steps to 95 % of the no-intermediate twin's final English dev score\n\n")
    if stt:
        w(markdown(["task", "model", "intermediate", "train size", "AUC with − twin [95 % CI]", "AUC verdict",
                    "goal dev", "reached (seeds)", "twin reached", "steps with − twin [95 % CI]",
                    "total FLOPs / twin's: amortized", "marginal"],
                   [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"],
                     ci_text(r.get("auc_diff_mean"), r.get("auc_diff_ci_low"), r.get("auc_diff_ci_high"),
                             r["with_curve"], True),
                     r.get("auc_verdict", "—"), r.get("goal_dev"), _reached(r),
                     f"{r['twin_reached']} of {r['with_curve']}" if r["with_curve"] else "—",
                     ci_text(r.get("steps_diff_mean"), r.get("steps_diff_ci_low"), r.get("steps_diff_ci_high"),
                             r["with_curve"]) + (" (censored: a bound)" if r.get("censored") else ""),
                     r.get("total_flops_ratio"), r.get("total_flops_ratio_marginal")] for r in stt]))
        w("\nAUC: the area under the English dev curve over the target's steps divided by their span (its mean "
          "dev score), paired by seed, with − twin (t interval over seeds; verdict against δ). Goal: 95 % of "
          "the twin's final smoothed dev score (the mean of its last 3 evaluations); steps to it over every "
          "seed, an arm that never reaches it counted at its last step (censored: the difference is then a "
          "bound). FLOPs to the goal over the twin's: amortized (the intermediate run divided among this "
          "folder's targets) and marginal (one target pays all of it). Per seed: `tables/steps_to_target.csv`.\n")
    else:
        w("No cell has a no-intermediate twin (same model, target, train size and seed).\n")
    w("\n### Total training cost and the zero-shot change per unit of it\n\n")
    ce = tables["cost_effect"]
    if ce:
        w(markdown(["task", "model", "intermediate", "train size", "Δ non-English average [95 % CI]",
                    "total FLOPs with (amortized)", "total FLOPs without", "cost ratio: amortized (targets sharing)",
                    "marginal (one target)", "Δ per extra PFLOP [95 % CI]"],
                   [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"],
                     ci_text(r["delta_non_english"], r["delta_ci_low"], r["delta_ci_high"], None, True),
                     r["total_flops_with"], r["total_flops_without"],
                     f"{fmt(r['cost_ratio'])} ({r.get('intermediate_shared_by', '—')})", r.get("cost_ratio_marginal"),
                     ci_text(r["delta_per_pflop"], r["delta_per_pflop_ci_low"], r["delta_per_pflop_ci_high"])]
                    for r in ce]))
        w("\nAmortized: the intermediate run's FLOPs divided among the targets of this folder that reuse it, so "
          "it falls as a folder holds more targets; marginal: what one target pays when it alone uses the "
          "intermediate run.\n")
    else:
        w("No cross-lingual target has both arms.\n")
    w("\n### Training compute per phase\n\n")
    w(markdown(["task", "model", "intermediate", "train size", "phase", "phase task", "examples", "epochs", "steps",
                "tokens", "FLOPs", "wall time s", "n"],
               [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"], r["phase"], r["phase_task"],
                 r["train_examples_mean"], r["epochs_mean"], r["steps_mean"], r["tokens_mean"], r["flops_mean"],
                 r["wall_time_s_mean"], r["n"]] for r in tables["training_cost"]]))
    w("\nPer cell: `tables/cost.csv` (target FLOPs, the intermediate run's FLOPs, how many cells share it, the "
      "share, the total; wall time per phase split into compile, dev evaluation, checkpoints and steps).\n")
    if "training_flops.png" in plots:
        w("\n![training FLOPs](plots/training_flops.png)\n")
    if "wall_time.png" in plots:
        w("\n![wall time](plots/wall_time.png)\n\nWall time depends on the machine and its load and includes "
          "XLA compilation (shown apart): it is not a measure of training cost, FLOPs are.\n")
    se = tables.get("sample_efficiency", [])
    if se:
        w("\n### Sample efficiency: score against the target's training size\n\n")
        w(markdown(["task", "model", "intermediate", "train size", "examples", "score", "mean [95 % CI]",
                    "with − without [95 % CI]"],
                   [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"], r["train_examples"],
                     r["score"].replace("_", " "), ci_text(r["mean"], r["ci_low"], r["ci_high"], r["n"]),
                     ci_text(r.get("diff_mean"), r.get("diff_ci_low"), r.get("diff_ci_high"))]
                    for r in se]))
        w("\n" + "".join(f"![sample efficiency](plots/{p})\n" for p in plots if p.startswith("sample_efficiency_")))

    w("\n## Parameters and inference latency: identical by construction\n\n")
    w("Intermediate training changes weights, not the network: with and without it a cell has the same "
      "parameters and runs the same computation, so neither is a result for either arm. Stated once per model "
      "and target head; the check below confirms that the measurements agree: parameters exactly, latency "
      "as an equivalence test (TOST: the 90 % interval of with − without inside ±3 % of the without mean; "
      "\"no\" means equality is not shown, not that the arms differ).\n\n")
    w(markdown(["task", "model", "total", "embedding", "non-embedding", "trainable", "batch", "seq", "dtype", "device"],
               [[r["target_task"], r["model"], r["params_total"], r["params_embedding"], r["params_non_embedding"],
                 r["params_trainable"], r["batch_size"], r["seq_len"], r["dtype"], r["device"]]
                for r in tables["efficiency"]]))
    w("\n")
    w(markdown(["task", "model", "cells", "parameters equal", "latency with ms", "latency without ms", "difference ms",
                "90 % CI ms", "±3 % margin ms", "equivalent"],
               [[r["target_task"], r["model"], r["cells"], r["params_equal"], r["latency_with_ms"],
                 r["latency_without_ms"], r["latency_diff_ms"],
                 "—" if r["latency_ci90_low_ms"] is None else f"[{fmt(r['latency_ci90_low_ms'])}, "
                 f"{fmt(r['latency_ci90_high_ms'])}]", r["latency_margin_ms"], r["latency_equivalent"]]
                for r in tables["identical_by_construction"]]))

    if bench_path is not None:
        w(f"\n### Benchmarks (`{bench_path}`)\n\n")
        cols = [k for k in _BENCH_KEYS if any(k in r for r in bench)]
        extra = [k for k in _BENCH_EXTRA if any(k in r for r in bench)]
        w(markdown(["name", *cols, "median ms", "mean ms", "std ms", "rounds", *extra],
                   [[r["name"], *(r.get(k) for k in cols), r["median_ms"], r["mean_ms"], r["stddev_ms"],
                     r.get("rounds"), *(r.get(k) for k in extra)] for r in bench]))
        if "benchmark_latency.png" in plots:
            w("\n![benchmarks](plots/benchmark_latency.png)\n")

    w("\n## Checkpoint selection\n\n")
    w("Every score above is of the checkpoint with the best **English** dev score (xtreme's protocol, the "
      "primary one here). Target-language (\"oracle\") selection, which Keung et al. (2020) show can change "
      "zero-shot conclusions, is **not computed**: the results files record the English dev curve only and the "
      "scores of the English-selected checkpoint, not target-language dev scores per checkpoint, so there is "
      "nothing to select from without re-running the cells.\n")

    if tables["missing_languages"] or tables["dropped"]:
        w("\n## Data not scored\n\n")
    if tables["missing_languages"]:
        w("Languages of a target that were not evaluated (the data source lacks them; `eval.missing_languages: "
          "skip`). They are in no average above.\n\n")
        w(markdown(["task", "language", "why", "cells"],
                   [[r["target_task"], r["language"], r["why"], r["cells"]] for r in tables["missing_languages"]]))
        w("\n")
    if tables["dropped"]:
        w("Rows the loaders dropped (no gold label, answer text not in its context), per cell and split.\n\n")
        w(markdown(["cell", "part", "reason", "rows"],
                   [[r["cell_id"], r["part"], r["reason"], r["rows"]] for r in tables["dropped"]]))
        w("\n")

    if tables["diverged"]:
        w("\n## Diverged cells\n\n")
        w("A non-finite loss or gradient norm stopped these cells (`on_divergence: record`, `diverged.json`); "
          "they have no score. Every comparison above uses only the cells that finished.\n\n")
        w(markdown(["cell", "phase", "step", "last checkpoint kept"],
                   [[r["cell_id"], r["phase"], r["step"], r["last_checkpoint"] or "none"] for r in tables["diverged"]]))
        w("\n")

    w("\n## Environment\n\n")
    w(markdown(["cell", "synthetic", "device", "CPU", "jax", "flax", "python", "commit", "finished"],
               [[r["cell_id"], r["synthetic"], r["device"] if r["device"] != "gpu" else f"gpu ({r['device_kind']})",
                 r.get("cpu") or "—", r["jax"], r["flax"], r["python"], r["commit"], r["finished_at"]]
                for r in tables["environment"]]))
    w(environment_details(tables["environment"]))
    w("\n### Config (`configs.json` has every cell's full config)\n\nOne value in every cell that has the key:\n\n")
    w(markdown(["key", "value", "cells"],
               [[r["key"], fmt(r["value"]), r["cells"]] for r in tables["config_common"]]))
    varying = tables["config_varying"]
    if varying and len(varying[0]) > 1:
        keys = [k for k in varying[0] if k != "cell_id"]
        w("\nDiffering between cells:\n\n")
        w(markdown(["cell", *keys], [[r["cell_id"], *(fmt(r[k]) for k in keys)] for r in varying]))
    return md.getvalue()


def environment_details(rows: list[dict]) -> str:
    """Each distinct host (CPU and its vector flags, GPU stack) and library set once, with its cell count:
    XLA:CPU compiles for the host's instruction set, so two CPUs can differ in the last digits."""
    if not rows:
        return ""
    out = io.StringIO()
    hosts: dict[tuple, int] = {}
    for r in rows:
        gpu = r.get("gpu") or {}
        key = (r.get("cpu") or "not recorded", r.get("cpu_vector_flags") or "—", r.get("cpu_logical_cores"),
               ", ".join(f"{k} {gpu[k]}" for k in ("cuda_runtime", "cudnn", "driver") if gpu.get(k)) or "—")
        hosts[key] = hosts.get(key, 0) + 1
    out.write("\nHosts (XLA:CPU compiles for the CPU's vector instructions):\n\n")
    out.write(markdown(["CPU", "vector flags", "logical cores", "CUDA / cuDNN / driver", "cells"],
                       [[*k, n] for k, n in hosts.items()]))
    libs: dict[str, dict[str, int]] = {}
    for r in rows:
        for name, version in (r.get("libraries") or {}).items():
            libs.setdefault(name, {})
            libs[name][version or "not installed"] = libs[name].get(version or "not installed", 0) + 1
    if libs:
        out.write("\nLibraries that shape the numbers (versions, with the cells that used each):\n\n")
        out.write(markdown(["library", "version (cells)"],
                           [[name, ", ".join(f"{v} ({n})" for v, n in sorted(vs.items()))]
                            for name, vs in libs.items()]))
    else:
        out.write("\nLibrary versions beyond jax and flax: not recorded (results written before issue 34).\n")
    return out.getvalue()


def _reached(r) -> str:
    if not r["with_curve"]:
        return "no curve (schema < 3)"
    text = f"{r['reached']} of {r['with_curve']}"
    return text if r["reached"] else f"never ({text})"


def _range(counts: dict[str, int]) -> str:
    if not counts:
        return "—"
    lo, hi = min(counts.values()), max(counts.values())
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"
