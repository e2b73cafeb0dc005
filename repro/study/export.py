"""A finished cell's fine-tuned target model as a transformers folder with a model card.

    python -m repro export CELL_DIR OUT [--push-to-hub REPO [--private]]

writes OUT/ with
    config.json, model.safetensors   the best English-dev checkpoint (the one the cell evaluated), loadable by the
                                     transformers class in `architectures` (AutoModelFor... of the head)
    tokenizer files                  the tokenizer the cell trained with (AutoTokenizer)
    README.md                        the model card: the hub's metadata header (languages, licence, tags, datasets,
                                     metrics, model-index with every language's score) and the task, the languages
                                     with their scores and 95 % intervals over the evaluation examples, the
                                     intermediate task, the recipe, the package version and commit, the data's
                                     licence
    xtreme_transfer.json             the cell's results.json, as exported
    xtreme_transfer_config.yaml      the cell's config.yaml (`python -m repro run` on it repeats the cell)

OUT is written as a whole (a temporary sibling, then one rename) and only where nothing of the user's can be lost
(repro.outputs): absent, empty, or an export this command wrote. `--push-to-hub` then uploads OUT with
huggingface_hub's HfApi (create_repo, upload_folder).
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from repro import outputs
from repro.errors import UserError
from repro.results import RESULTS_NAME, CellResults, ResultsError, load_cell, load_predictions

log = logging.getLogger("repro")
KIND = "export"
CARD_NAME = "README.md"
RESULTS_COPY = "xtreme_transfer.json"
CONFIG_COPY = "xtreme_transfer_config.yaml"
RESAMPLES, SEED, LEVEL = 2000, 0, 0.95
# The hub's pipeline tags per head (multiple choice has none).
PIPELINE_TAGS = {"sequence_classification": "text-classification", "token_classification": "token-classification",
                 "question_answering": "question-answering"}


class ExportError(UserError):
    """The cell cannot be exported (not finished, its checkpoint missing or damaged); one line naming it."""


# ---- the model ----------------------------------------------------------------------------------------

def load_best_model(cell_dir: Path, cfg, results: CellResults):
    """The cell's model with the parameters of its evaluated (best English dev) checkpoint, and its tokenizer."""
    import jax
    import orbax.checkpoint as ocp
    from flax import nnx

    import data_prep as dp
    import flax_models as fm
    from repro.study import inputs
    from repro.training import checkpoint, steps

    step_dir = Path(results.checkpoint or "")
    if not step_dir.is_absolute() and not step_dir.exists():
        step_dir = cell_dir / "target" / "ckpt" / "best" / step_dir.name
    if not (step_dir / "state").is_dir():
        best = cell_dir / "target" / "ckpt" / "best"
        found = sorted(p for p in best.glob("*") if p.name.isdigit()) if best.is_dir() else []
        if not found:
            raise ExportError(f"{cell_dir}: no best checkpoint ({results.checkpoint} is missing); it cannot be "
                              "exported")
        step_dir = found[-1]
    why = checkpoint.damage(step_dir)
    if why is not None:
        raise ExportError(f"checkpoint {step_dir} is damaged ({why}); it cannot be exported")
    tokenizer = inputs.tokenizer_for(cfg)
    head, num_labels = steps.head_for(dp.get_task(cfg.cell.target_task))
    m = cfg.model
    source = m.hf_config if m.hf_config is not None else fm.loading.resolve(m.name_or_path)
    model = fm.from_config(source, head=head, num_labels=num_labels, seed=cfg.cell.seed)   # the graph; weights next
    graphdef, params, rest = steps.split_model(model)
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one), params)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            restored = ckptr.restore((step_dir / "state").absolute(), like)
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"checkpoint {step_dir} does not fit the cell's model: "
                          f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from e
    return nnx.merge(graphdef, restored, rest), tokenizer, step_dir


def _label_names(model_dir: Path, labels: tuple) -> None:
    """id2label/label2id from the task's label set (pipelines print them), where the head has one per label."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    if labels and config.get("num_labels", len(config.get("id2label", {}))) == len(labels):
        config["id2label"] = {str(i): str(lab) for i, lab in enumerate(labels)}
        config["label2id"] = {str(lab): i for i, lab in enumerate(labels)}
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _save_tokenizer(tokenizer, folder: Path) -> None:
    """The tokenizer as AutoTokenizer loads it, without the truncation and padding that featurizing left set on the
    (shared, cached) tokenizer object: those are per call, not part of the tokenizer."""
    import copy

    tok = copy.deepcopy(tokenizer)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    tok.save_pretrained(str(folder))


# ---- the card -------------------------------------------------------------------------------------------

def intervals(cell_dir: Path, results: CellResults) -> dict[str, tuple[float, float]]:
    """language -> 95 % percentile bootstrap interval of the cell's score over its evaluation examples
    (predictions.json; none for a cell written before per-example predictions)."""
    from repro.report.stats import weighted_scores

    preds = load_predictions(cell_dir, results)
    if preds is None:
        return {}
    out = {}
    rng = np.random.default_rng(SEED)
    for lang in sorted(preds.languages):
        rows = preds.rows(lang)
        weights = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=RESAMPLES)
        values = weighted_scores(preds.kind, weights, rows)
        values = values[np.isfinite(values)]
        if len(values):
            lo, hi = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            out[lang] = (float(lo), float(hi))
    return out


def _datasets(cfg, results: CellResults) -> list[str]:
    """The hub datasets the model's training and evaluation data come from (none for synthetic data)."""
    if results.synthetic:
        return []
    from data_prep.hub import SOURCES

    tasks = [results.target_task, results.training.target.train_task, results.intermediate_task]
    return sorted({SOURCES[t].path for t in tasks if t and t in SOURCES})


def _hub_config(results: CellResults, lang: str) -> str:
    """The hub dataset's config of a language (google/xtreme's udpos.English), else the language code."""
    if not results.synthetic:
        from data_prep.hub import SOURCES

        source = SOURCES.get(results.target_task)
        try:
            name = source.config(lang) if source is not None else None
        except (KeyError, ValueError):
            name = None
        if name:
            return str(name)
    return lang


def card(cfg, results: CellResults, head: str, ci: dict[str, tuple[float, float]], version: str) -> str:
    """README.md: the hub's metadata header and the card's text."""
    from huggingface_hub import EvalResult, ModelCardData

    import data_prep as dp
    from repro import config as config_mod

    target = dp.get_task(results.target_task)
    metric = results.metric
    task_type = PIPELINE_TAGS.get(head, "multiple-choice")
    datasets = _datasets(cfg, results)
    dataset_type = datasets[0] if datasets else f"synthetic/{results.target_task}"
    evals = [EvalResult(task_type=task_type, dataset_type=dataset_type, dataset_name=f"{results.target_task} ({lang})",
                        dataset_config=_hub_config(results, lang), dataset_split=results.eval_split, metric_type=metric,
                        metric_name=f"{metric} ({lang})", metric_value=round(score, 2))
             for lang, score in results.per_language.items()]
    base = cfg.model.name_or_path
    tags = ["xtreme-transfer", "xtreme-r", "cross-lingual-transfer", "zero-shot", results.model.family]
    tags += ["intermediate-task-training"] if results.intermediate_task else []
    tags += ["synthetic"] if results.synthetic else []
    data = ModelCardData(
        language=sorted(results.per_language), license="other", library_name="transformers", tags=tags,
        datasets=datasets or None, metrics=[metric], base_model=base if base and not Path(base).exists() else None,
        pipeline_tag=PIPELINE_TAGS.get(head), model_name=results.cell_id, eval_results=evals)
    env = results.environment
    t = results.training.target
    inter = results.training.intermediate
    rows = "\n".join(
        f"| {lang} | {score:.1f} | " + (f"[{ci[lang][0]:.1f}, {ci[lang][1]:.1f}]" if lang in ci else "-")
        + f" | {results.eval_examples.get(lang, '-')} |" for lang, score in results.per_language.items())
    recipe = config_mod.dump(cfg).rstrip()
    trained_on = t.train_task or results.target_task
    synthetic = ("\n**Synthetic data.** This model was trained and scored on the package's synthetic stand-in "
                 "tasks: its languages are made from English by word substitution, and its scores say nothing "
                 "about real languages.\n" if results.synthetic else "")
    licence = ("The synthetic data is generated by xtreme-transfer; no third-party licence applies to it."
               if results.synthetic else
               f"The weights derive from `{base or results.model.name}` (its licence applies) and were fine-tuned on "
               f"{trained_on}" + (f" after {results.intermediate_task}" if results.intermediate_task else "")
               + f" data ({', '.join(datasets) or cfg.data.source}). The XTREME-R tasks and the English tasks each "
               "carry their own licence, some non-commercial: read each dataset's card before using or "
               "redistributing this model. `license: other` above says that no single licence covers it.")
    return f"""---
{data.to_yaml()}
---

# {results.cell_id}
{synthetic}
A {results.model.family} model ({results.model.name}: `{base or 'random init from the config below'}`,
{results.param_count.total:,} parameters) fine-tuned on English {trained_on} for **{results.target_task}**
({target.kind}), then evaluated zero-shot in every language below. Exported by
xtreme-transfer {version} from the cell `{results.cell_id}` (seed {results.seed}).

- **Intermediate task**: {results.intermediate_task or 'none (the encoder went straight to the target task)'}
  {f"({inter.steps} steps on {inter.train_examples:,} examples, best English dev {inter.best_dev})" if inter else ""}
- **Target training**: {t.steps} steps on {t.train_examples:,} English examples; the checkpoint kept is the best
  on English dev (step {t.best_step}, {metric} {t.best_dev}).
- **Evaluation**: the {results.eval_split} split, {metric} (0-100, xtreme's scorer). Interval: 95 % percentile
  bootstrap over the evaluation examples ({RESAMPLES} resamples, seed {SEED}); it covers example sampling only,
  not the seed.

| language | {metric} | 95 % interval | examples |
|---|---|---|---|
{rows}

Average {results.average:.1f}; other languages than English {_fmt(results.average_non_english)}; transfer gap
(English minus the others) {_fmt(results.transfer_gap)}.
{"Not evaluated: " + ", ".join(f"{k} ({v})" for k, v in results.missing_languages.items()) if results.missing_languages else ""}

## Use

```python
from transformers import AutoModelFor{_auto(head)}, AutoTokenizer
model = AutoModelFor{_auto(head)}.from_pretrained("PATH_OR_REPO")
tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO")
```

## Data licence

{licence}

## Provenance

xtreme-transfer {version}, commit `{env.commit or 'unknown'}`; jax {env.jax}, flax {env.flax}, python {env.python},
device {env.device}{f' ({env.device_kind})' if env.device_kind else ''}; finished {results.finished_at}.
`{RESULTS_COPY}` beside this card is the cell's results.json. The recipe is the cell's resolved config, below and
in `{CONFIG_COPY}` (`python -m repro run {CONFIG_COPY}` repeats the cell):

```yaml
{recipe}
```
"""


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _auto(head: str) -> str:
    return {"sequence_classification": "SequenceClassification", "token_classification": "TokenClassification",
            "question_answering": "QuestionAnswering", "multiple_choice": "MultipleChoice"}[head]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("xtreme-transfer")
    except PackageNotFoundError:
        return "(not installed)"


# ---- the command ----------------------------------------------------------------------------------------

def export_cell(cell_dir: str | Path, out: str | Path) -> Path:
    """Writes the export of the finished cell in `cell_dir` to `out` (see the module docstring); returns out."""
    from repro import config

    cell_dir = Path(cell_dir)
    if not (cell_dir / RESULTS_NAME).is_file():
        raise ExportError(f"{cell_dir}: no {RESULTS_NAME}; export needs a finished cell's folder "
                          "(RUN/cells/<cell_id>)")
    results = load_cell(cell_dir / RESULTS_NAME)
    cfg = config.load(cell_dir / "config.yaml").resolved_cell()
    if cfg.cell_id != results.cell_id:
        raise ResultsError(f"{cell_dir}: config.yaml describes {cfg.cell_id}, results.json {results.cell_id}")
    given = Path(out)
    out = outputs.check_output_dir(given, KIND, sources=(cell_dir,), what="OUT")
    outputs.recover(out, KIND)
    from repro import progress

    progress.line(f"export: {results.cell_id}: restoring {results.checkpoint}")
    model, tokenizer, step_dir = load_best_model(cell_dir, cfg, results)
    progress.line(f"export: writing {out}")
    import data_prep as dp
    import flax_models as fm

    tmp = outputs.new_temp_dir(out, KIND)
    try:
        fm.save_pretrained(model, tmp)
        _label_names(tmp, tuple(dp.get_task(results.target_task).labels))
        _save_tokenizer(tokenizer, tmp)
        (tmp / RESULTS_COPY).write_text((cell_dir / RESULTS_NAME).read_text())
        (tmp / CONFIG_COPY).write_text((cell_dir / "config.yaml").read_text())
        (tmp / CARD_NAME).write_text(card(cfg, results, model.head, intervals(cell_dir, results), package_version()))
        outputs.replace_dir(tmp, out, KIND)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s (checkpoint %s) to %s", results.cell_id, step_dir, out)
    return given


def push_to_hub(folder: Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Uploads the export to the hub (repo created if absent); returns the commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                             commit_message=f"xtreme-transfer export of {folder.name}",
                             ignore_patterns=[f"{outputs.marker_name('')}*"])
    return str(getattr(info, "commit_url", info))
