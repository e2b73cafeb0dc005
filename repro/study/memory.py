"""Device memory of each cell shape's train step, known before the run (`repro plan --memory`).

For every distinct training shape of the grid (model, head, per-device batch, longest length bucket, choices,
precision, attention, remat) the train step is lowered from abstract shapes (`fm.abstract_model`,
`jax.eval_shape` of the optimiser state: no weight is allocated) and compiled for this process's backend;
XLA's `memory_analysis()` gives its argument, output, aliased (donated state) and temporary bytes:

    step peak = arguments + outputs - aliased + temporaries + generated code
    total     = step peak + one copy of the parameters (the best params held on the device between
                checkpoints, repro.training.loop)

and the cell fits a device when total <= its memory x the fraction JAX's allocator takes
(XLA_PYTHON_CLIENT_MEM_FRACTION, 0.75 unless set). Where it does not, the options are tried in order and
the first that fits is named: remat=true, then halving target.batch_size with optimizer.accumulation doubled
(the same update batch), down to one example.

The figures are the compiling backend's. Compiled on the GPU node they are that GPU's; compiled on a CPU
they are XLA:CPU's buffer assignment, an estimate for a GPU: argument and output sizes (parameters,
optimiser state, batch) are the same on every backend, temporaries are not (XLA:GPU fuses differently,
keeps cuBLAS/cuDNN workspaces, may pad layouts, and with attention=cudnn never materialises the (B, heads,
T, T) scores, which XLA:CPU cannot compile at all). docs/scaling.md lists what was checked where.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import jax.numpy as jnp

import data_prep as dp
import flax_models as fm
from repro import config, tables
from repro.config import Config
from repro.errors import ConfigError
from repro.training import precision as precision_mod
from repro.training import steps

GIB = 1024 ** 3
# Memory per device as the driver reports it (nvidia-smi's total, MiB -> bytes).
DEVICE_MEMORY = {
    "h100": 81559 * 2 ** 20,        # H100 80 GB (SXM and PCIe)
    "h200": 143771 * 2 ** 20,
    "a100-80gb": 81920 * 2 ** 20,
    "a100-40gb": 40960 * 2 ** 20,
    "l4": 23034 * 2 ** 20,
}
DEFAULT_MEM_FRACTION = 0.75   # JAX's default XLA_PYTHON_CLIENT_MEM_FRACTION


@dataclasses.dataclass(frozen=True)
class Shape:
    """One train-step shape: what decides the step's memory."""

    model: str
    hf_config: str              # the model's config.json as canonical JSON (hashable: it holds lists)
    head: str
    num_labels: int | None
    kind: str
    batch: int                  # per device
    length: int                 # the longest length bucket
    choices: int
    precision: str
    attention: str
    remat: bool
    accumulation: int


@dataclasses.dataclass(frozen=True)
class StepMemory:
    argument: int
    output: int
    alias: int
    temp: int
    code: int
    params: int                 # one copy of the parameters (held best params)

    @property
    def step_peak(self) -> int:
        return self.argument + self.output - self.alias + self.temp + self.code

    @property
    def total(self) -> int:
        return self.step_peak + self.params


def device_budget(device: str | None, device_memory_gb: float | None, fraction: float | None) -> tuple[str, int] | None:
    """(name, usable bytes) of the device to fit, or None when none was named."""
    if fraction is None:
        fraction = float(os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", DEFAULT_MEM_FRACTION))
    if not 0 < fraction <= 1:
        raise ConfigError(f"plan: memory fraction {fraction} must be in (0, 1]")
    if device_memory_gb is not None:
        if device_memory_gb <= 0:
            raise ConfigError(f"plan: --device-memory {device_memory_gb} must be positive (GiB)")
        return f"{device_memory_gb:g} GiB", int(device_memory_gb * GIB * fraction)
    if device is None:
        return None
    key = device.lower().replace(" ", "-")
    if key == "a100":
        raise ConfigError("plan: --device a100 is ambiguous for memory: a100-40gb or a100-80gb")
    if key not in DEVICE_MEMORY:
        raise ConfigError(f"plan: no memory size known for --device {device!r} (known: "
                          f"{', '.join(DEVICE_MEMORY)}); give --device-memory GIB")
    return device, int(DEVICE_MEMORY[key] * fraction)


def shapes(cfg: Config, model_config) -> list[Shape]:
    """The distinct train-step shapes of the grid's phases (intermediate and target), in grid order.
    `model_config(cell) -> config.json dict` (plan's, which reads local folders, the hub or known sizes)."""
    from repro.study import inputs
    from repro.study.cell import cell_config, make_plan

    seen: dict[Shape, None] = {}
    for cell in cfg.cells():
        c = cell_config(cell)
        # A retrieval target trains nothing; a control arm trains its intermediate task's data (permuted labels).
        phases = [("target", dp.get_task(c.cell.target_task))] if config.trains_target(c.cell.target_task) else []
        if c.intermediate_data_task is not None:
            phases.insert(0, ("intermediate", dp.get_task(c.intermediate_data_task)))
        for kind, task in phases:
            train_task = inputs.train_task_of(task, c)
            head, num_labels = steps.head_for(task)
            plan = make_plan(c, getattr(c, kind), train_task)
            devices = max(c.mesh.data, 1)
            hf_config = json.dumps(model_config(c), sort_keys=True, default=str)
            seen[Shape(model=c.cell.model, hf_config=hf_config, head=head,
                       num_labels=num_labels, kind=task.kind, batch=max(plan.batch_size // devices, 1),
                       length=inputs.max_length(c, train_task),
                       choices=len(task.labels) if task.kind == "multiple_choice" else 1,
                       precision=c.precision, attention=c.attention, remat=c.remat,
                       accumulation=plan.optimizer.accumulation)] = None
    return list(seen)


def _abstract_batch(shape: Shape) -> dict:
    dims = (shape.batch, shape.choices, shape.length) if shape.head == "multiple_choice" else (shape.batch,
                                                                                                shape.length)
    ids = jax.ShapeDtypeStruct(dims, jnp.int32)
    batch = {"input_ids": ids, "attention_mask": ids, "token_type_ids": ids,
             "example_mask": jax.ShapeDtypeStruct((shape.batch,), jnp.int32)}
    if shape.kind == "qa":
        batch["start_positions"] = batch["end_positions"] = jax.ShapeDtypeStruct((shape.batch,), jnp.int32)
    elif shape.kind == "tagging":
        batch["labels"] = jax.ShapeDtypeStruct((shape.batch, shape.length), jnp.int32)
    elif shape.kind == "regression":
        batch["labels"] = jax.ShapeDtypeStruct((shape.batch,), jnp.float32)
    else:
        batch["labels"] = jax.ShapeDtypeStruct((shape.batch,), jnp.int32)
    return batch


def _nbytes(tree) -> int:
    return sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


@functools.lru_cache(maxsize=64)
def measure(shape: Shape) -> StepMemory:
    """XLA's compiled memory analysis of the shape's train step (the pipeline's steps.make_train_step,
    donated state, one device), built from abstract shapes only."""
    model = fm.abstract_model(json.loads(shape.hf_config), head=shape.head, num_labels=shape.num_labels,
                              dtype=precision_mod.compute_dtype(shape.precision))
    fm.configure_compute(model, attention=shape.attention, remat=shape.remat)
    graphdef, params, rest = steps.split_model(model)
    spec = steps.OptimizerSpec(learning_rate=1e-5, weight_decay=0.01, warmup_fraction=0.1, clip_norm=1.0,
                               accumulation=shape.accumulation, total_updates=1000)
    tx = steps.make_optimizer(spec)
    state = {"step": jax.ShapeDtypeStruct((), jnp.int32), "params": params,
             "opt_state": jax.eval_shape(tx.init, params), "rng": jax.ShapeDtypeStruct((2,), jnp.uint32)}
    step = steps.make_train_step(graphdef, rest, shape.kind, tx, steps.lr_schedule(spec), shape.accumulation)
    with precision_mod.scope(shape.precision):
        compiled = jax.jit(step, donate_argnums=0).lower(state, _abstract_batch(shape)).compile()
    stats = compiled.memory_analysis()
    return StepMemory(argument=stats.argument_size_in_bytes, output=stats.output_size_in_bytes,
                      alias=stats.alias_size_in_bytes, temp=stats.temp_size_in_bytes,
                      code=stats.generated_code_size_in_bytes, params=_nbytes(params))


def fitting_option(shape: Shape, budget: int) -> str:
    """The first option that brings the shape under `budget` bytes (see the module docstring)."""
    if not shape.remat:
        if measure(dataclasses.replace(shape, remat=True)).total <= budget:
            return "remat=true"
    batch, accumulation = shape.batch, shape.accumulation
    while batch > 1:
        batch, accumulation = batch // 2, accumulation * 2
        if measure(dataclasses.replace(shape, remat=True, batch=batch, accumulation=accumulation)).total <= budget:
            return f"remat=true batch_size={batch} optimizer.accumulation={accumulation}"
    return "none: does not fit at batch 1 with remat"


def rows(shape_list: list[Shape], budget: tuple[str, int] | None, progress=None) -> list[dict]:
    out = []
    for i, shape in enumerate(shape_list):
        if progress:
            progress(i, len(shape_list), shape)
        m = measure(shape)
        row = {"model": shape.model, "kind": shape.kind,
               "batch x length": f"{shape.batch}x{shape.length}" + (f"x{shape.choices}" if shape.choices > 1 else ""),
               "precision": shape.precision, "attention": shape.attention, "remat": shape.remat,
               "arguments GiB": m.argument / GIB, "temporaries GiB": m.temp / GIB, "outputs GiB": m.output / GIB,
               "aliased GiB": m.alias / GIB, "total GiB": m.total / GIB}
        if budget:
            fits = m.total <= budget[1]
            row[f"fits {budget[0]}"] = "yes" if fits else "no"
            row["option that fits"] = "" if fits else fitting_option(shape, budget[1])
        out.append(row)
    return out


def render(table: list[dict], budget: tuple[str, int] | None, fmt: str = "text") -> str:
    if fmt == "csv":
        return tables.csv_text(table)
    draw = tables.markdown if fmt == "markdown" else tables.text
    header = list(table[0]) if table else []
    backend = jax.devices()[0]
    note = (f"memory: XLA's compiled memory analysis of each train step on this process's backend "
            f"({backend.platform}: {backend.device_kind}); total = step peak + one held copy of the parameters")
    if backend.platform == "cpu":
        note += ("; compiled by XLA:CPU: arguments and outputs hold for a GPU, temporaries are an estimate "
                 "(repro/study/memory.py)")
    if budget:
        note += f"; fits = total <= {budget[1] / GIB:.1f} GiB usable on {budget[0]}"
    return draw(header, [[r[k] for k in header] for r in table]).rstrip("\n") + "\n" + note


def report(cfg: Config, device: str | None, device_memory_gb: float | None, fmt: str = "text",
           fraction: float | None = None) -> str:
    """`repro plan --memory`: the table of every training shape of the grid, and whether each fits."""
    from repro import progress
    from repro.study import plan

    budget = device_budget(device, device_memory_gb, fraction)
    estimator = plan._Estimator("sizes")
    shape_list = shapes(cfg, lambda c: estimator.model_config(c)[0])
    table = rows(shape_list, budget, lambda i, n, s: progress.line(
        f"memory: compiling the train step {i + 1}/{n}: {s.model} {s.kind} {s.batch}x{s.length}"))
    return render(table, budget, fmt)
