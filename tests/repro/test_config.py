"""Config tree: presets load and validate, overrides, one-line errors, the dump repeats the run."""
from __future__ import annotations

import pytest

from repro import config
from repro.study import inputs
from repro.study.cell import cell_config
from tests.support.cli import ROOT, SMOKE, cli


def test_presets_load_and_grid_is_the_cross_product():
    smoke = config.load(SMOKE)
    inputs.check_tasks(smoke)
    cells = smoke.cells()
    g = smoke.grid
    assert len(cells) == len(g.models) * len(g.intermediate_tasks) * len(g.target_tasks) * len(g.seeds) >= 12
    assert {c.model.family for c in cells} == {"bert", "roberta", "xlnet"}
    assert {c.intermediate_task for c in cells} == {None, "synth_int_sentiment"}
    assert len({c.cell_id for c in cells}) == len(cells)
    assert cells[0].cell_id == "bert-tiny__int-none__tgt-synth_sentiment__seed0"
    for m in smoke.models.values():
        hf = m.hf_config
        assert hf.get("hidden_size", hf.get("d_model")) == 32
        assert hf.get("num_hidden_layers", hf.get("n_layer")) == 2
    paper = config.load(ROOT / "configs" / "paper.yaml")
    inputs.check_tasks(paper)
    assert {m.name_or_path for m in paper.models.values()} >= {
        "bert-base-multilingual-cased", "xlm-roberta-base", "xlnet-base-cased", "bert-base-cased", "roberta-base"}
    assert "imdb" in paper.grid.intermediate_tasks and "mnli" in paper.grid.intermediate_tasks


def test_overrides_are_yaml_scalars_and_dump_round_trips():
    cfg = config.load(SMOKE, ["target.optimizer.learning_rate=3e-3", "grid.seeds=[1, 2]", "precision=bf16",
                         "cell.intermediate_task=none", "data.data_dir=null",
                         "models.bert-tiny.hf_config.hidden_size=64"])
    assert cfg.target.optimizer.learning_rate == 3e-3
    assert cfg.grid.seeds == (1, 2) and cfg.precision == "bf16"
    assert cfg.models["bert-tiny"].hf_config["hidden_size"] == 64
    again = config.from_dict(__import__("yaml").safe_load(config.dump(cfg)))
    assert again == cfg
    cell = cell_config(cfg)
    assert list(cell.models) == ["bert-tiny"] and cell.cell.seed == 1
    assert config.from_dict(__import__("yaml").safe_load(config.dump(cell))).cell_id == cell.cell_id


@pytest.mark.parametrize("override, needle", [
    ("target.lr=1", "unknown key 'target.lr'"),
    ("precision=fp16", "precision='fp16' must be one of fp32, tf32, bf16"),
    ("target.batch_size=-4", "target.batch_size=-4 must be > 0"),
    ("target.optimizer.learning_rate=fast", "target.optimizer.learning_rate='fast'"),
    ("grid.models=[gpt-tiny]", "'gpt-tiny' is not one of models"),
    ("target.optimizer.warmup_fraction=2", "warmup_fraction=2.0 must be <= 1"),
    ("nonsense", "is not of the form a.b=value"),
    ("per_target={synth_tagging: {data: {max_length: 8}}}",
     "per_target.synth_tagging.data: only target, eval can differ"),
    ("per_target={synth_tagging: {intermediate: {epochs: 2}}}", "per_target.synth_tagging.intermediate: only target"),
    ("per_target={synth_tagging: {eval: {batch_size: 8}}}", "per_target.synth_tagging.eval.batch_size: cannot differ"),
    ("per_target={synth_tagging: {target: {batch_size: -1}}}",
     "per_target.synth_tagging: target.batch_size=-1 must be > 0"),
    ("per_target={synth_tagging: {target: {batch_sise: 8}}}",
     "per_target.synth_tagging: unknown key 'target.batch_sise'"),
    ("per_target={synth_tagging: [8]}", "per_target.synth_tagging=[8] must be a mapping"),
    ("report.smallest_effect=0", "report.smallest_effect=0.0 must be > 0"),
    ("report.smallest_effect_per_task={xnli: -1}", "report.smallest_effect_per_task.xnli=-1.0 must be > 0"),
    ("report.delta=1", "unknown key 'report.delta'"),
])
def test_bad_key_or_value_is_one_line_naming_it(override, needle):
    with pytest.raises(config.ConfigError) as e:
        config.load(SMOKE, [override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_task_is_a_config_error():
    with pytest.raises(config.ConfigError, match=r"grid.target_tasks.0='nosuch' is not a task"):
        inputs.check_tasks(config.load(SMOKE, ["grid.target_tasks=[nosuch]"]))
    # A retrieval target is scored from the encoder (repro.study.retrieval); as an intermediate task it cannot train.
    inputs.check_tasks(config.load(SMOKE, ["grid.target_tasks=[synth_retrieval]"]))
    with pytest.raises(config.ConfigError, match="grid.intermediate_tasks.1='synth_retrieval' is a retrieval task"):
        inputs.check_tasks(config.load(SMOKE, ["grid.intermediate_tasks=[none, synth_retrieval]"]))


def test_cli_help_and_bad_config_exit_codes(tmp_path):
    for sub in ("run", "grid"):
        r = cli(sub, "--help", timeout=60)
        assert r.returncode == 0 and "a.b=value" in r.stdout
    r = cli("run", SMOKE, f"output_dir={tmp_path / 'out'}", "train.epochs=1", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: config: unknown key 'train' (did you mean 'tracking'?) (known here: "
                                "attention, cell, checkpoints, compilation_cache_dir, data, eval, feature_cache_dir, "
                                "grid, intermediate, mesh, models, name, on_divergence, output_dir, per_target, "
                                "precision, remat, report, target, tracking)")
    assert not (tmp_path / "out").exists()   # nothing written for a bad config


def test_per_target_overrides_reach_only_that_targets_cells():
    cfg = config.load(SMOKE, ["per_target={synth_tagging: {target: {batch_size: 8, max_steps: 5}, "
                         "eval: {max_examples: 7}}}"])
    by_target = {}
    for c in cfg.cells():
        by_target.setdefault(c.cell.target_task, set()).add((c.target.batch_size, c.target.max_steps,
                                                              c.eval.max_examples, c.target.epochs))
        assert c.per_target == {}   # folded in: the cell's config.yaml repeats the cell on its own
    assert by_target["synth_tagging"] == {(8, 5, 7, 10.0)}          # merged: the preset's other keys stay
    assert by_target["synth_sentiment"] == {(32, None, None, 10.0)}
    one = cell_config(config.load(SMOKE, ["per_target={synth_tagging: {target: {batch_size: 8}}}",
                                     "cell.target_task=synth_tagging"]))
    assert one.target.batch_size == 8 and config.from_dict(config.to_dict(one)).resolved_cell() == one


def test_per_target_of_an_unknown_task_is_refused():
    cfg = config.load(SMOKE, ["per_target={synth_taging: {target: {batch_size: 8}}}"])
    with pytest.raises(config.ConfigError, match="per_target.synth_taging='synth_taging' is not a task"):
        inputs.check_tasks(cfg)
    inputs.check_tasks(config.load(SMOKE, ["per_target={synth_qa: {target: {batch_size: 8}}}"]))   # outside the grid: kept


def test_train_sizes_are_a_grid_axis_that_caps_the_target_training_set():
    cfg = config.from_dict({**config.to_dict(config.load(SMOKE)), "grid": {
        **config.to_dict(config.load(SMOKE))["grid"], "train_sizes": [100, "all"]}})
    cells = cfg.cells()
    assert len(cells) == 2 * len(config.load(SMOKE).cells())
    by_id = {c.cell_id: c for c in cells}
    small = by_id["bert-tiny__int-none__tgt-synth_sentiment__seed0__n100"]
    full = by_id["bert-tiny__int-none__tgt-synth_sentiment__seed0__nall"]
    assert small.target.max_train_examples == 100 and full.target.max_train_examples is None
    assert small.intermediate == full.intermediate   # the intermediate model is shared across sizes
    # a cell's config.yaml runs the same cell again
    again = config.from_dict(config.to_dict(small)).resolved_cell()
    assert again.cell_id == small.cell_id and again.target.max_train_examples == 100
    # without the axis, ids and caps are as before
    assert config.load(SMOKE).cells()[0].cell_id.endswith("__seed0")


@pytest.mark.parametrize("sizes, why", [([0], "distinct positive"), ([10, 10], "distinct positive"),
                                        (["some"], "is not a valid int or .all.")])
def test_bad_train_sizes_name_the_key(sizes, why):
    with pytest.raises(config.ConfigError, match=rf"grid.train_sizes.*{why}"):
        config.load(SMOKE, [f"grid.train_sizes={sizes}"])
