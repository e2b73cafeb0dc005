"""Config parsing with bounds: a YAML alias bomb in a preset or an override fails fast in bounded memory with
one line naming where (repro.config.safe_yaml); every number of a config is finite and in its range when it loads,
or one line names the key and the value (repro.config.bounds)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest

from repro import config
from repro.errors import ConfigError, OutputDirError
from repro.rundir import claim_folder
from tests.support.cli import ROOT, SMOKE, env

# 9 levels of 9 aliases: 9**9 (387 million) strings once expanded; PyYAML's safe_load would build them all.
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
# The bomb where a config reads it: anchored inside a free-form mapping, expanded by a key that is checked
# (before, the type error's repr of grid.seeds walked all of it: no answer within 30 s).
BOMB_PRESET = "models:\n  m:\n    family: bert\n    hf_config:\n" + "".join(
    f"      {line}\n" for line in BOMB.splitlines()) + "grid:\n  seeds: *i\n"
MEMORY_LIMIT = 1 << 30   # address space of the CLI process (Python and the package import in ~250 MB)


def bounded_cli(*args, seconds: float = 60):
    """`python -m repro ARGS` with its address space capped and a deadline; (result, wall seconds)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "repro", *map(str, args)], cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=seconds, preexec_fn=cap)
    return r, time.monotonic() - start


def test_alias_bomb_in_a_preset_fails_fast_in_bounded_memory(tmp_path):
    preset = tmp_path / "my preset.yaml"
    preset.write_text(BOMB_PRESET)
    r, wall = bounded_cli("run", preset, f"output_dir={tmp_path / 'out'}")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
    assert str(preset) in lines[0] and "alias" in lines[0] and "line" in lines[0]
    assert wall < 30 and not (tmp_path / "out").exists()


def test_alias_bomb_in_an_override_fails_fast_in_bounded_memory(tmp_path):
    override = "grid.seeds=" + "{" + BOMB.strip().replace("\n", ", ") + "}"
    r, wall = bounded_cli("run", SMOKE, f"output_dir={tmp_path / 'out'}", override)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
    assert "override grid.seeds" in lines[0] and "alias" in lines[0] and wall < 30


def test_a_run_folder_config_with_aliases_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text(BOMB)
    with pytest.raises(OutputDirError, match="anchor"):
        claim_folder(tmp_path, {"a": 1}, "cell")


@pytest.mark.parametrize("text, expect", [
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 64"),
    ("a: b\nc: &x 1\n", "line 2: anchor &x"),
    ("base: {x: 1}\nother:\n  <<: *base\n", "alias *base"),
    ("a: " + "1" * 5000 + "\n", "too large to read"),
    ("x: " + "y" * (1 << 20) + "\n", "at most"),
    ("a: [\n", "is not valid YAML"),
])
def test_unbounded_yaml_in_a_file_is_one_line_naming_it(tmp_path, text, expect):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert expect in msg and str(path) in msg and "\n" not in msg and len(msg) < 300, msg


@pytest.mark.parametrize("override, key", [
    ("target.epochs=1.0e400", "target.epochs=inf"),
    ("target.epochs=1e400", "target.epochs=inf"),       # PyYAML reads it as a string; the float is inf
    ("target.epochs=.nan", "target.epochs=nan"),
    ("target.epochs=" + "1" + "0" * 400, "target.epochs="),   # past float's range
    ("intermediate.max_steps=" + str(10**30), "intermediate.max_steps="),
    ("target.max_steps=" + "9" * 5000, "override target.max_steps"),   # past int's digit limit
    ("target.optimizer.learning_rate=.inf", "target.optimizer.learning_rate=inf"),
    ("target.optimizer.adam_b2=2.0", "target.optimizer.adam_b2=2.0"),
    ("target.batch_size=" + str(2**40), "target.batch_size="),
    ("eval.batch_size=" + str(2**40), "eval.batch_size="),
    ("target.eval_every=" + str(2**31), "target.eval_every="),
    ("grid.seeds=[0, -1]", "grid.seeds.1=-1"),
    ("grid.seeds=[" + str(2**40) + "]", "grid.seeds.0="),
    ("grid.train_sizes=[" + str(10**12) + "]", "grid.train_sizes.0="),
    ("data.max_length=1000000000", "data.max_length=1000000000"),
    ("data.buckets=[64, 1000000000000]", "data.buckets.1="),
    ("eval.latency.repeats=" + str(10**12), "eval.latency.repeats="),
    ("models.bert-tiny.hf_config.vocab_size=" + str(10**30), "models.bert-tiny.hf_config.vocab_size="),
    ("models.bert-tiny.hf_config.layer_norm_eps=.nan", "models.bert-tiny.hf_config.layer_norm_eps=nan"),
])
def test_numbers_out_of_range_are_one_line_naming_key_and_value(override, key):
    with pytest.raises(ConfigError) as e:
        config.load(SMOKE, [override])
    msg = str(e.value)
    assert key in msg and "\n" not in msg and len(msg) < 300, msg


def test_numbers_in_range_still_load():
    cfg = config.load(SMOKE, ["target.epochs=0.5", "target.max_steps=2147483647", "grid.seeds=[0, 4294967295]",
                              "target.optimizer.learning_rate=3e-5", "target.optimizer.adam_b2=0.98"])
    assert cfg.target.max_steps == 2**31 - 1 and cfg.grid.seeds == (0, 2**32 - 1)


@pytest.mark.parametrize("preset", sorted((ROOT / "configs").glob("*.yaml")))
def test_the_shipped_presets_are_within_bounds(preset):
    assert config.load(preset).cells()
