"""Command line of xtreme-transfer: `xtreme-transfer COMMAND ...` or `python -m repro COMMAND ...`.

    python -m repro plan CONFIG [a.b=value ...]       what the grid costs: examples, steps, tokens, FLOPs, device-hours
    python -m repro preflight CONFIG [a.b=value ...]  every model and data split the grid reads, checked (no training)
    python -m repro run CONFIG [a.b=value ...]        one cell (cell.* or the first value of each grid list)
    python -m repro grid CONFIG [a.b=value ...]       models × intermediate tasks × target tasks × seeds
                      [--shard I/N]                   only shard I of N (also from SLURM / Kubernetes: repro.study.shards)
    python -m repro report RESULTS_DIR [...]          tables and plots from the results files (repro.report)
    python -m repro table RESULTS_DIR                 one line per finished cell, as plain text
    python -m repro check-train-parity FOLDER [...]   our train step against a PyTorch loop (repro.training.train_parity)
    python -m repro fine-tune-parity CONFIG [a.b=v]   one cell fine-tuned both ways, dev scores (repro.study.reference_run)
    python -m repro export CELL_DIR OUT [...]         a cell's model as a transformers folder + model card (repro.study.export)
    python -m repro tensorboard RUN_DIR [--out DIR]   TensorBoard event files from train logs (repro.training.tracking)

`run` and `grid` run the preflight of their cells first (`--no-preflight` skips it).

CONFIG is a shipped preset's name (smoke, mini, paper: `xtreme-transfer grid smoke`), a YAML file
(configs/smoke.yaml) or a run folder holding config.yaml.
Errors the user can fix (config, data, output dir, checkpoint mismatch, non-finite loss) print one line
and exit 2; the log file `<output_dir>/repro.log` keeps the details.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

EXIT_USER_ERROR = 2
CONFIG_HELP = "a shipped preset's name (smoke, mini, paper), a YAML file, or a run folder with config.yaml"
EXIT_CELLS_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    prog = "xtreme-transfer" if Path(sys.argv[0]).name == "xtreme-transfer" else "python -m repro"
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_Version, help="print the version and commit, and exit")
    sub = p.add_subparsers(dest="command", required=True)
    _plan_parser(sub)
    for name, help_ in (("preflight", "check every model and data split the grid reads, before any training"),
                        ("run", "train and evaluate one cell"),
                        ("grid", "run every cell of the grid; finished cells are skipped")):
        s = sub.add_parser(name, help=help_, description=help_ + ". Overrides are a.b=value with YAML values, "
                           "e.g. target.max_steps=20 grid.seeds=[0,1] cell.intermediate_task=none.")
        s.add_argument("config", help=CONFIG_HELP)
        s.add_argument("overrides", nargs="*", metavar="a.b=value", help="config overrides")
        s.add_argument("--no-progress", action="store_true", help="no progress bars")
        if name != "preflight":
            s.add_argument("--no-preflight", action="store_true",
                           help="skip the preflight check of the cells' models and data")
        if name == "grid":
            s.add_argument("--shard", metavar="I/N", help="run only shard I (from 0) of N; without it the shard "
                           "comes from SLURM_ARRAY_TASK_* or JOB_COMPLETION_INDEX where set (docs/scaling.md)")
            s.add_argument("--shard-count", metavar="N", type=int,
                           help="the number of shards of a Kubernetes Indexed Job (else XT_SHARD_COUNT)")
    r = sub.add_parser("report", help="build the report from results files (repro.report)",
                       description="Markdown report, CSV and LaTeX tables, figures and the claims check of a run's "
                       "results files (RESULTS_DIR/cells/*/results.json).")
    r.add_argument("results_dir", metavar="RESULTS_DIR", help="the run's output folder (holds cells/)")
    r.add_argument("--out", metavar="DIR", help="where to write the report (default: RESULTS_DIR/report): an absent or empty "
                   "folder, or a previous report (replaced as a whole only when the new one is complete); "
                   "anything else is refused")
    r.add_argument("--benchmarks", metavar="BENCH.json",
                   help="a pytest-benchmark JSON (--benchmark-json) to add to the efficiency section")
    r.add_argument("--digits", type=int, default=1, choices=range(0, 5), metavar="N",
                   help="decimals of the scores in the summary and LaTeX tables (default 1, as papers print them)")
    t = sub.add_parser("table", help="print a table of the finished cells under RESULTS_DIR",
                       description="One line per finished cell under RESULTS_DIR (cells/*/results.json): model, "
                       "intermediate and target task, seed, metric, English and mean non-English scores, the transfer gap, "
                       "parameters, latency, training FLOPs and time. Plain text; `report` writes the full tables, "
                       "figures and claims check.")
    t.add_argument("results_dir", metavar="RESULTS_DIR")
    _train_parity_parser(sub)
    f = sub.add_parser("fine-tune-parity", help="one cell's target phase fine-tuned by the package and by PyTorch",
                       description="Resolves CONFIG's cell as `run` does (it must have no intermediate task), trains its "
                       "target phase twice from the same initialisation on the same batches with the recipe's dropout: "
                       "with the package's jitted step and with transformers + torch.optim.AdamW; scores both on the same "
                       "English dev examples every --eval-every steps. Prints both curves; writes JSON with --json. "
                       "Needs torch.")
    f.add_argument("config", help=CONFIG_HELP)
    f.add_argument("overrides", nargs="*", metavar="a.b=value", help="config overrides (cell.target_task=udpos, ...)")
    f.add_argument("--eval-every", type=int, default=10, help="steps between dev evaluations (default 10)")
    f.add_argument("--json", metavar="OUT", help="also write both curves and losses as JSON here")
    _export_parser(sub)
    _tensorboard_parser(sub)
    # The usage line names every subcommand, however many are added above.
    sub.metavar = "{" + ",".join(sub.choices) + "}"
    return p


class _Version(argparse.Action):
    """`--version`, computed only when asked (the commit is a git call)."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def _version() -> str:
    """The installed distribution's version and the code's commit (no jax import)."""
    from importlib import metadata
    from repro.environment import commit
    try:
        version = metadata.version("xtreme-transfer")
    except metadata.PackageNotFoundError:   # a plain checkout on PYTHONPATH
        version = "(not installed)"
    return f"xtreme-transfer {version} (commit {commit() or 'unknown'})"


# `plan --from` choices (repro.study.plan.BASES; named here so that parsing imports no jax).
PLAN_BASES = ("auto", "data", "sizes")

# The heads the study trains (repro.training.train_parity.HEAD_KIND; named here so that parsing imports no jax).
TRAIN_PARITY_HEADS = ("sequence_classification", "token_classification", "question_answering", "multiple_choice")


def _train_parity_parser(sub) -> None:
    s = sub.add_parser("check-train-parity", help="our jitted train step against a transformers + torch loop",
                       description="Trains FOLDER's model for --steps micro-steps with our jitted train step and with "
                       "a plain PyTorch loop (transformers' class for the head, torch.optim.AdamW, the linear warm-up "
                       "schedule), same weights, batches and hyper-parameters, dropout off; prints per-step loss, "
                       "gradient-norm and learning-rate differences, the final-parameter max-abs difference, and "
                       "PASS/FAIL. Exit 0 PASS, 1 FAIL, 2 bad input. Needs torch.")
    s.add_argument("model", metavar="FOLDER", help="a transformers folder (config.json + weights) or a hub id")
    s.add_argument("--head", choices=TRAIN_PARITY_HEADS, default="sequence_classification")
    s.add_argument("--num-labels", type=int, default=None, help="labels of a classification head (default: 2)")
    s.add_argument("--steps", type=int, default=20, help="micro-steps (default 20)")
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--length", type=int, default=32, help="padded sequence length")
    s.add_argument("--learning-rate", type=float, default=1e-4)
    s.add_argument("--weight-decay", type=float, default=0.01)
    s.add_argument("--warmup-fraction", type=float, default=0.1)
    s.add_argument("--clip-norm", type=float, default=1.0, help="0 = no clipping")
    s.add_argument("--accumulation", type=int, default=1, help="micro-batches per update")
    s.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="our compute dtype")
    s.add_argument("--tolerance", type=float, default=None,
                   help="per-step loss relative difference allowed (default 1e-4 float32, 3e-2 bfloat16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", metavar="OUT", help="also write the result as JSON here")


def _export_parser(sub) -> None:
    s = sub.add_parser("export", help="a finished cell's fine-tuned model as a transformers folder with a model card",
                       description="Writes OUT: config.json + model.safetensors of the cell's evaluated (best English "
                       "dev) checkpoint, loadable by transformers' AutoModelFor<head>, its tokenizer (AutoTokenizer), "
                       "and README.md, a model card with the hub's metadata (every language's score with its 95 %% "
                       "interval over the evaluation examples, the intermediate task, the recipe, the version and "
                       "commit, the data's licence). OUT must be absent, empty or a previous export; it is replaced "
                       "as a whole. --push-to-hub uploads it (huggingface_hub; needs a token: HF_TOKEN or "
                       "`huggingface-cli login`).")
    s.add_argument("cell_dir", metavar="CELL_DIR", help="a finished cell's folder: RUN/cells/<cell_id>")
    s.add_argument("out", metavar="OUT", help="the folder to write")
    s.add_argument("--push-to-hub", metavar="REPO", help="also upload OUT to this hub model repository (user/name)")
    s.add_argument("--private", action="store_true", help="create the hub repository private")


def _export(args) -> int:
    from repro.errors import UserError, one_line
    try:
        from repro.study import export
        out = export.export_cell(args.cell_dir, args.out)
    except UserError as e:
        return _error(f"export: {one_line(e)}")
    except OSError as e:   # a read-only or full disk: OUT is left as it was
        return _error(f"export: cannot write {args.out}: {e.strerror or e}; OUT is unchanged")
    print(f"export: wrote {out} (transformers folder and model card README.md)")
    if args.push_to_hub:
        try:
            url = export.push_to_hub(Path(out), args.push_to_hub, private=args.private)
        except Exception as e:  # noqa: BLE001 - hub errors (auth, network, name) are many types; one line, the export stays
            return _error(f"export: the upload to {args.push_to_hub} failed ({one_line(e)}); {out} is written")
        print(f"export: pushed to {args.push_to_hub} ({url})")
    return 0


def _tensorboard_parser(sub) -> None:
    s = sub.add_parser("tensorboard", help="TensorBoard event files from a run's train_log.jsonl files",
                       description="Writes TensorBoard event files (loss, learning rate, gradient norm, English dev "
                       "scores) for every training phase under RUN_DIR that has a train_log.jsonl: into the phase's "
                       "tensorboard/ folder where it has none (runs trained before tracking, or with "
                       "tracking.tensorboard=false), or with --out into DIR/<phase path>/tensorboard. Runs write them "
                       "while they train by default (tracking.tensorboard), with throughput too. Then: "
                       "tensorboard --logdir RUN_DIR (or DIR).")
    s.add_argument("run_dir", metavar="RUN_DIR", help="a run's output folder (or any folder above train logs)")
    s.add_argument("--out", metavar="DIR", help="write every phase's event files under DIR (absent, empty or a "
                   "previous output of this command) instead of beside each log")


def _tensorboard(args) -> int:
    from repro import outputs
    from repro.errors import OutputDirError, UserError, one_line
    from repro.training import tracking
    run = Path(args.run_dir)
    try:
        if not run.is_dir():
            raise OutputDirError(f"RUN_DIR {run} is not a folder")
        if args.out is None:
            done = tracking.convert(run)
        else:
            out = outputs.check_output_dir(args.out, "tensorboard", sources=(run,))
            outputs.recover(out, "tensorboard")
            tmp = outputs.new_temp_dir(out, "tensorboard")
            try:
                done = tracking.convert(run, tmp)
                outputs.replace_dir(tmp, out, "tensorboard")
            except BaseException:
                import shutil
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except UserError as e:
        return _error(f"tensorboard: {one_line(e)}")
    except OSError as e:
        return _error(f"tensorboard: cannot write: {e.strerror or e}")
    if not done:
        return _error(f"tensorboard: no train_log.jsonl under {run}")
    for phase, folder, n in done:
        rel = phase.relative_to(run)
        if folder is None:
            print(f"{rel}: has event files already (left as they are)")
        else:
            shown = folder if args.out is None else Path(args.out) / folder.relative_to(tmp)
            print(f"{rel}: {n} scalars -> {shown}")
    print(f"view: tensorboard --logdir {args.out or run}")
    return 0


def _quiet_transformers() -> None:
    """No load bars or fresh-head warnings: both sides of a parity check start from a fresh head on purpose."""
    try:
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass
    logging.getLogger("flax_models").setLevel(logging.ERROR)


def _check_train_parity(args) -> int:
    import jax.numpy as jnp
    from repro import outputs
    from repro.errors import OutputDirError
    from repro.training import train_parity
    _quiet_transformers()
    try:
        _host_memory()
        if args.json:   # refused before the run, not after it (repro.outputs)
            outputs.check_json_output(args.json, "check-train-parity")
        result = train_parity.compare_training(
            args.model, args.head, num_labels=args.num_labels, steps_count=args.steps, batch_size=args.batch_size,
            length=args.length, seed=args.seed, loss_tolerance=args.tolerance,
            dtype=jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32,
            recipe=train_parity.Recipe(learning_rate=args.learning_rate, weight_decay=args.weight_decay,
                                       warmup_fraction=args.warmup_fraction, clip_norm=args.clip_norm,
                                       accumulation=args.accumulation))
    except (OSError, ValueError, ImportError, OutputDirError) as e:   # a missing folder, a bad argument, no torch
        return _error(f"check-train-parity: {' '.join(str(e).split())}")
    print(train_parity.render(result))
    if args.json:
        try:
            outputs.write_json_output(args.json, result.as_dict(), "check-train-parity")
        except OutputDirError as e:
            return _error(f"check-train-parity: {e}")
    return 0 if result.passed else EXIT_CELLS_FAILED


def _fine_tune_parity(args) -> int:
    from repro import config, outputs
    from repro.errors import UserError, one_line
    try:
        _host_memory()
        cfg = config.load(args.config, args.overrides).resolved_cell()
        if args.eval_every < 1:
            raise config.ConfigError(f"fine-tune-parity: --eval-every={args.eval_every} must be >= 1")
        if args.json:   # refused before the run, not after it (repro.outputs)
            outputs.check_json_output(args.json, "fine-tune-parity")
        from repro.study import inputs, reference_run
        inputs.check_tasks(cfg)
        _quiet_transformers()
        result = reference_run.fine_tune_both(cfg, eval_every=args.eval_every)
    except (UserError, OSError, ValueError, ImportError) as e:
        return _error(f"fine-tune-parity: {one_line(e)}")
    print(reference_run.render(result))
    if args.json:
        try:
            outputs.write_json_output(args.json, result, "fine-tune-parity")
        except UserError as e:
            return _error(f"fine-tune-parity: {e}")
    return 0


def _plan_parser(sub) -> None:
    s = sub.add_parser("plan", help="what the grid costs: examples, steps, tokens, FLOPs and device-hours per run",
                       description="Examples, steps, tokens and training FLOPs of every training run of the grid "
                       "(intermediate runs once), and device-hours at a device's peak x MFU.")
    s.add_argument("config", help=CONFIG_HELP)
    s.add_argument("overrides", nargs="*", metavar="a.b=value", help="config overrides")
    s.add_argument("--device", help="accelerator whose peak prices the device-hours: h100, a100, l4, 'tpu v5e', ... "
                   "(flax_models.flops.PEAK_FLOPS) at the config's precision")
    s.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation assumed (default 0.4)")
    s.add_argument("--peak-flops", type=float, help="the device's peak FLOP/s, instead of the table's")
    s.add_argument("--from", dest="basis", choices=PLAN_BASES, default="auto",
                   help="data: featurize the training data as the run will; sizes: the known split sizes "
                   "(repro.study.known_sizes); auto (default): data unless data.source=hub")
    s.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    s.add_argument("--shards", type=int, metavar="N", help="also show how `grid --shard I/N` would split it")
    s.add_argument("--benchmarks", metavar="BENCH_JSON", help="price each model from its measured JAX train step "
                   "in this pytest-benchmark JSON (tests/benchmarks/test_train.py on the target device) instead of "
                   "an assumed MFU (repro/study/measured.py)")
    s.add_argument("--memory", action="store_true", help="also compile each training shape's train step from "
                   "abstract shapes and show XLA's memory analysis, whether it fits --device (h100, h200, "
                   "a100-40gb, a100-80gb, l4) or --device-memory, and what makes it fit (repro/study/memory.py)")
    s.add_argument("--device-memory", type=float, metavar="GIB", help="device memory to fit, in GiB")
    s.add_argument("--pilot", metavar="RESULTS_DIR", help="a pilot's results folder: the seeds each primary "
                   "endpoint needs for a 1- and 2-point MDE (80 %% power), and this grid priced at them "
                   "(repro/study/pilot.py)")


def _plan(args) -> int:
    from repro import config
    from repro.study import inputs, plan, shards
    from repro import tables
    from repro.errors import UserError, one_line

    try:
        cfg = config.load(args.config, args.overrides)
        inputs.check_tasks(cfg)
        dev = (plan.device(args.device or "custom", cfg.precision, args.mfu, args.peak_flops)
               if args.device or args.peak_flops else None)
        if args.shards is not None and args.shards < 1:
            raise shards.ShardError(f"plan: --shards {args.shards} must be at least 1")
        cells = cfg.cells()
        if args.pilot:   # first: a bad pilot folder fails before the grid is priced
            from repro.study import pilot
            endpoints = pilot.pilot_endpoints(args.pilot)
        phases = plan.plan_grid(cfg, args.basis, cells)
    except UserError as e:
        return _error(one_line(e))
    print(plan.render(phases, args.format, dev))
    try:
        if args.benchmarks:
            from repro.study import measured
            rates = measured.load_rates(args.benchmarks, cfg.precision)
            print("\n" + measured.render(*measured.price(cfg, phases, rates, dev), args.format))
        if args.memory:
            from repro.study import memory
            print("\n" + memory.report(cfg, args.device, args.device_memory, args.format))
    except UserError as e:
        return _error(one_line(e))
    if args.pilot:
        print("\n" + pilot.render(endpoints, float(plan.total(phases)), pilot.grid_seed_count(cfg), dev))
    if args.shards:
        parts = shards.split(cells, phases, args.shards)
        header = ["shard", "units", "cells", "FLOPs"] + (["device-h"] if dev else [])
        body = [[p["index"], len(p["units"]), len(p["cells"]), float(p["flops"])]
                + ([dev.hours(p["flops"])] if dev else []) for p in parts]
        draw = tables.markdown if args.format == "markdown" else tables.text
        print(f"\n{draw(header, body).rstrip()}\nthe slowest shard sets the wall time: "
              f"{tables.fmt(max(float(p['flops']) for p in parts) / max(total := plan.total(phases), 1) * 100)} % "
              f"of the grid's {tables.fmt(float(total))} FLOPs")
    return 0


class _OneLine(logging.Formatter):
    """Console records without tracebacks: those go to repro.log only."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(record.getMessage().split())


def _setup_logging(log_path: Path, command: str) -> None:
    # A log that cannot be written (a full disk) must not print tracebacks over the one-line error.
    logging.raiseExceptions = False
    logger = logging.getLogger("repro")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    from repro import console
    terminal = logging.StreamHandler(console.stream())
    terminal.setLevel(logging.WARNING)
    terminal.setFormatter(_OneLine("%(message)s"))
    logger.addHandler(terminal)
    # Libraries' loggers (absl: orbax and jax; asyncio; transformers) write to repro.log only, never the console.
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.WARNING)
    absl = logging.getLogger("absl")
    for h in list(absl.handlers):
        absl.removeHandler(h)
    absl.propagate = True
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    root.addHandler(handler)
    logger.info("=== %s %s", command, " ".join(sys.argv[1:]))


def _preflight(cfg, command: str, cells, shard=None) -> int | None:
    """Checks the cells of `command`; an exit status when it must stop there, None to go on.

    Every process of a multi-host run checks (each reads the data itself); process 0 writes and prints, and
    all stop when any finds a problem."""
    from repro import console
    from repro.training import distributed
    from repro.study import preflight

    findings = preflight.run(cells)
    out = Path(cfg.output_dir)
    path = out / (f"preflight.{shard.tag}.json" if shard else "preflight.json")
    main = distributed.is_main()
    if main:
        preflight.write_json(findings, path)
    blocking = preflight.blocking(findings)
    if main and findings and (blocking or command == "preflight"):
        print(preflight.report(findings))
    summary = preflight.summary(findings)
    logging.getLogger("repro").info("%s (%s)", summary, path.name)
    if blocking:
        console.say(f"error: {summary}; see the causes above and {path}")
    if distributed.max_over_processes(int(bool(blocking))):
        if not blocking:
            console.say("error: the preflight of another process of this run found problems (see its output)")
        return EXIT_USER_ERROR
    if command == "preflight":
        if main:
            print(f"{summary} (details: {path})")
            print(preflight.feature_summary(cells))   # what is tokenized already, what a run will build
        return 0
    return None


def _host_memory() -> str:
    from repro.training import host_memory
    return host_memory.retain_freed_memory()


def _error(msg: str) -> int:
    from repro import console
    console.say(f"error: {msg}")
    return EXIT_USER_ERROR


def _report(args) -> int:
    from repro.report import build_report, plots   # no jax: the report reads results files only
    from repro.errors import ConfigError, OutputDirError
    from repro.results import ResultsError
    out_dir = Path(args.out) if args.out else Path(args.results_dir) / "report"
    try:
        plots.plot_workers(), plots.plot_formats()   # a bad XT_PLOT_* stops the report before it writes anything
    except ConfigError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        out = build_report(args.results_dir, args.out, args.benchmarks, digits=args.digits)
    except (ResultsError, OutputDirError) as e:   # bad results, or an --out that is not a report's to replace
        print(f"report: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:   # a read-only or full disk: the previous report, if any, is left as it was
        print(f"report: error: cannot write {out_dir}: {e.strerror or e}; the previous report is unchanged",
              file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"report: wrote {out / 'report.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    # Overrides after an option (`grid CONFIG a=1 --shard 0/4 b=2`): argparse leaves those after it over.
    if rest and hasattr(args, "overrides") and not any(r.startswith("-") for r in rest):
        args.overrides += rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "plan":
        return _plan(args)
    if args.command == "report":
        return _report(args)
    if args.command == "check-train-parity":
        return _check_train_parity(args)
    if args.command == "fine-tune-parity":
        return _fine_tune_parity(args)
    if args.command == "export":
        return _export(args)
    if args.command == "tensorboard":
        return _tensorboard(args)
    if args.command == "table":
        from repro.report import results_table
        from repro.results import ResultsError
        try:
            print(results_table(args.results_dir))
        except ResultsError as e:
            return _error(str(e))
        return 0

    from repro import console, signals
    signals.install()
    try:
        return _train(args)
    except signals.Stopped as e:   # before the run folder was known (loading the config, importing jax)
        console.say(signals.stop_message())
        return e.exit_code


def _train(args) -> int:
    """`run` and `grid`: the config, the checks, then the cell or the grid."""
    from repro import config
    from repro import console, signals
    from repro.errors import UserError, one_line

    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        allocator = _host_memory()   # before jax's first computation: its threads must share the main heap
        cfg = config.load(args.config, args.overrides)
        from repro.training.tracking import check_available
        check_available(cfg.tracking)   # tensorboardX / wandb installed, before any step
    except config.ConfigError as e:
        return _error(str(e))
    except ValueError as e:   # XT_HOST_ALLOCATOR
        return _error(str(e))

    from repro.training import distributed
    from repro.study import inputs, shards
    from repro import outputs
    try:
        shard = shards.resolve(args.shard, args.shard_count) if args.command == "grid" else None
        distributed.maybe_initialize()
    except UserError as e:
        return _error(one_line(e))
    if cfg.compilation_cache_dir:
        import jax
        jax.config.update("jax_compilation_cache_dir", cfg.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    out = Path(cfg.output_dir)
    try:
        inputs.check_tasks(cfg)
        outputs.claim_run_dir(out)   # absent, empty or a run of this package; never a folder of other files
    except UserError as e:
        return _error(one_line(e))
    log = logging.getLogger("repro")
    log_path = out / _log_name(shard, distributed.process_id())
    main = distributed.process_id() == 0
    with console.capture_stray_output(log_path):   # library noise -> the log, not the console
        _setup_logging(log_path, args.command)
        log.info("host memory: %s (%s; repro.training.host_memory)", allocator, "XT_HOST_ALLOCATOR")
        try:
            distributed.connect()
            if args.command == "run":
                cells = [cfg.resolved_cell()]
            elif shard is not None:
                cells, assignment = shards.select(cfg, shard)
                part = assignment["shards"][shard.index]["flops"] / max(sum(x["flops"] for x in assignment["shards"]), 1)
                note = (f"grid {cfg.name} {shard} ({shard.source}): {len(cells)} of {assignment['cells']} cells, "
                        f"{100 * part:.0f} % of the grid's training FLOPs (assignment {assignment['path']})")
                log.info("%s", note)
                if main:
                    console.say(note)
            else:
                cells = cfg.cells()
            if args.command == "preflight" or not args.no_preflight:
                code = _preflight(cfg, args.command, cells, shard)
                if code is not None:
                    return code
            if args.command == "run":
                from repro.study.cell import CellDiverged, run_cell
                try:
                    results = run_cell(cfg)
                except CellDiverged as e:   # on_divergence: record: the outcome is recorded, not an error
                    console.say(f"DIVERGED {one_line(e)}")
                    return 0
                if main:
                    print(f"{results.cell_id}: {results.metric} " +
                          " ".join(f"{k}={v:.2f}" for k, v in results.per_language.items()))
                return 0
            from repro.study.grid import run_grid
            ran, skipped, failed = run_grid(cfg, cells if shard is not None else None)
        except signals.Stopped as e:
            log.warning("%s (%s)", signals.stop_message(), e)
            return e.exit_code
        except UserError as e:
            log.info("error: %s", one_line(e), exc_info=True)
            return _error(one_line(e))
        except Exception as e:  # noqa: BLE001 - a bug: the traceback goes to the log, one line to the user
            log.info("failed: %s", one_line(e), exc_info=True)   # repro.log only
            console.say(f"error: {one_line(e)} (traceback in {log_path})")
            return EXIT_CELLS_FAILED
        if main:
            print(f"grid {cfg.name}{f' {shard}' if shard else ''}: {len(ran)} ran, {len(skipped)} already finished, "
                  f"{len(failed)} failed (results in {out / 'cells'})")
        for cell_id, reason in failed.items():
            console.say(f"FAILED {cell_id}: {reason}")
        return EXIT_CELLS_FAILED if failed else 0


def _log_name(shard, process: int) -> str:
    """repro.log; a shard's own log beside it (shards share the folder, and appends from several hosts are
    not atomic on a network file system); processes other than 0 of a multi-host run likewise."""
    parts = ["repro"] + ([shard.tag] if shard else []) + ([f"process-{process}"] if process else [])
    return ".".join(parts) + ".log"


if __name__ == "__main__":
    sys.exit(main())
