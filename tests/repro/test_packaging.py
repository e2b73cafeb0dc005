"""What a new user meets first: presets by name, `--help` without jax, `--version`, the usage line, the Python
API, "did you mean", and (slow) the wheel installed into a fresh venv running a preset outside the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from repro import config
from repro.__main__ import PLAN_BASES, TRAIN_PARITY_HEADS, _parser
from repro.errors import ConfigError
from tests.support.cli import cli, env
from tests.support.paths import ROOT


def subcommands() -> list[str]:
    p = _parser()
    return list(next(a for a in p._actions if a.dest == "command").choices)


# ---- the command line -----------------------------------------------------------------------------------

def test_help_and_parsing_import_no_jax():
    """The parser and every subcommand's help build without importing jax (what makes --help fast)."""
    code = ("import sys, io, contextlib\n"
            "from repro.__main__ import _parser\n"
            "p = _parser()\n"
            "sub = next(a for a in p._actions if a.dest == 'command')\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    p.format_help(); [s.format_help() for s in sub.choices.values()]\n"
            "    p.parse_args(['plan', 'smoke'])\n"
            "import repro\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'torch')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_usage_line_lists_every_subcommand():
    names = subcommands()
    assert {"plan", "preflight", "run", "grid", "report", "table", "check-train-parity",
            "fine-tune-parity"} <= set(names)
    r = cli("--help", timeout=120)
    assert r.returncode == 0
    usage = r.stdout.split("\n\n")[0]
    for name in names:
        assert name in usage, (name, usage)


def test_every_subcommand_has_a_description():
    p = _parser()
    sub = next(a for a in p._actions if a.dest == "command")
    for name, s in sub.choices.items():
        assert s.description and len(s.description) > 20, name
    assert "finished cell" in sub.choices["table"].format_help()


def test_version_names_the_distribution_and_commit():
    r = cli("--version", timeout=120)
    assert r.returncode == 0, r.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    first = r.stdout.strip()
    assert first.startswith("xtreme-transfer ") and "(commit " in first
    assert version in first or "(not installed)" in first


def test_parser_constants_match_their_owners():
    from repro.study.plan import BASES
    from repro.training.train_parity import HEAD_KIND
    assert PLAN_BASES == BASES
    assert set(TRAIN_PARITY_HEADS) == set(HEAD_KIND)


# ---- presets by name --------------------------------------------------------------------------------------

def test_presets_ship_in_the_package_from_one_source():
    d = config.presets_dir()
    assert d is not None and {"smoke", "mini", "paper"} <= set(config.preset_names())
    for p in (ROOT / "configs").glob("*.yaml"):   # the package data is the checkout's configs/, not a copy
        assert (d / p.name).resolve() == p.resolve()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "presets/*.yaml" in data["repro"]


def test_preset_by_name_equals_the_file(tmp_path, monkeypatch):
    by_file = config.load(ROOT / "configs" / "smoke.yaml")
    monkeypatch.chdir(tmp_path)   # outside the checkout: configs/smoke.yaml is no path here
    assert config.load("smoke") == by_file
    assert config.load("smoke.yaml") == by_file
    assert config.load("configs/smoke.yaml") == by_file
    local = tmp_path / "smoke.yaml"   # a file of the user's own wins over the shipped preset
    local.write_text((ROOT / "configs" / "smoke.yaml").read_text().replace("name: smoke", "name: mine"))
    assert config.load("smoke.yaml").name == "mine"


def test_unknown_preset_suggests_the_near_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        config.load("smoek")
    msg = str(e.value)
    assert "did you mean 'smoke'?" in msg and "shipped presets: " in msg and "paper, smoke" in msg
    assert "\n" not in msg


# ---- did you mean -----------------------------------------------------------------------------------------

def test_typo_in_a_key_suggests_the_key():
    with pytest.raises(ConfigError) as e:
        config.load("smoke", ["target.epoch=3"])
    assert "unknown key 'target.epoch' (did you mean 'target.epochs'?)" in str(e.value)


def test_typo_in_a_task_and_a_model_suggests_them():
    from repro.study import inputs
    cfg = config.load("smoke", ["grid.target_tasks=[synth_sentimnt]"])
    with pytest.raises(ConfigError) as e:
        inputs.check_tasks(cfg)
    assert "'synth_sentimnt' is not a task (did you mean 'synth_sentiment'?)" in str(e.value)
    with pytest.raises(ConfigError) as e:
        config.load("smoke", ["grid.models=[bert-tiyn]"])
    assert "(did you mean 'bert-tiny'?)" in str(e.value)
    with pytest.raises(ConfigError) as e:   # nothing near: no suggestion, the list as before
        config.load("smoke", ["grid.models=[gpt2]"])
    assert "did you mean" not in str(e.value) and "bert-tiny, roberta-tiny, xlnet-tiny" in str(e.value)


def test_typo_on_the_command_line_is_one_line(tmp_path):
    r = cli("run", "smoke", f"output_dir={tmp_path / 'run'}", "eval.latncy.repeats=2", timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'eval.latency'?" in lines[0], r.stderr
    assert not (tmp_path / "run").exists()


# ---- the Python API ---------------------------------------------------------------------------------------

def test_python_api_is_documented_and_lazy():
    import repro
    for name in ("load_config", "run_cell", "run_grid", "build_report"):
        fn = getattr(repro, name)
        assert name in repro.__all__ and fn.__doc__, name
        assert f"repro.{name}(" in repro.__doc__, name
    assert repro.load_config("smoke", ["grid.seeds=[3]"]).grid.seeds == (3,) or \
        list(repro.load_config("smoke", ["grid.seeds=[3]"]).grid.seeds) == [3]
    with pytest.raises(TypeError):   # overrides belong with a path; a Config is taken as it is
        repro.run_cell(repro.load_config("smoke"), ["grid.seeds=[1]"])


@pytest.mark.slow
def test_python_api_runs_a_cell_and_its_report(tmp_path):
    """A notebook's three calls: load, run one cell, build the report (the same files as the CLI's)."""
    import repro
    from tests.support.cli import tiny_overrides
    cfg = repro.load_config("smoke", tiny_overrides(tmp_path / "run"))
    results = repro.run_cell(cfg)
    assert (tmp_path / "run" / "cells" / results.cell_id / "results.json").is_file()
    assert results.per_language and "en" in results.per_language
    out = repro.build_report(tmp_path / "run")
    assert (out / "report.md").is_file()


# ---- the wheel, installed ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_a_preset_outside_the_checkout(tmp_path):
    """pip-installs the built wheel into a new venv layered on this one (nothing downloaded) and runs
    `xtreme-transfer grid smoke` on one cell from a folder that is not the checkout."""
    src = tmp_path / "src"   # build from a copy: the checkout gets no build/ or egg-info
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("configs", "flax_models", "data_prep", "repro"):
        shutil.copytree(ROOT / name, src / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    e = {k: v for k, v in env().items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(wheels)], check=True, env=e, timeout=600, cwd=tmp_path)
    (wheel,) = wheels.glob("xtreme_transfer-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py, exe = venv / "bin" / "python", venv / "bin" / "xtreme-transfer"
    # A venv made from a venv's python layers on the base interpreter, not on the test venv: name the test
    # venv's site-packages in a .pth so the dependencies come from it (nothing is downloaded). Its .pth files
    # are not processed from there, so its editable install of this checkout stays out.
    import sysconfig
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall",
                    str(wheel)], check=True, env=e, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([py, "-c", "import repro; print(repro.__file__)"], cwd=work, env=e, text=True,
                           capture_output=True, check=True).stdout
    assert str(venv) in where, where   # the installed copy, not the checkout
    r = subprocess.run([exe, "--version"], cwd=work, env=e, text=True, capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("xtreme-transfer "), r.stderr
    from tests.support.cli import tiny_overrides
    cell = tiny_overrides(work / "run")
    r = subprocess.run([exe, "grid", "smoke", *cell], cwd=work, env=e, text=True,
                       capture_output=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 ran" in r.stdout
    cells = list((work / "run" / "cells").iterdir())
    assert len(cells) == 1 and (cells[0] / "results.json").is_file()
    r = subprocess.run([exe, "grid", "configs/smoke.yaml", *cell], cwd=work, env=e,
                       text=True, capture_output=True, timeout=900)
    assert r.returncode == 0 and "1 already finished" in r.stdout, r.stdout + r.stderr
