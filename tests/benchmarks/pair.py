"""Interleaved JAX-vs-PyTorch timing in one process (forward, or a train step), and a per-op profile of the
JAX executable.

    python -m tests.benchmarks.pair bert-base-cased --batch 32 --seq-len 128 [--dtype float32] [--reps 5]
    python -m tests.benchmarks.pair xlnet-base-cased --profile 25     # + the 25 costliest XLA ops
    python -m tests.benchmarks.pair /tmp/e5 --train --reps 5          # one AdamW step (a checkpoint folder)
    taskset -c 0 python -m tests.benchmarks.pair bert-base-cased      # one core for both (XLA follows affinity)

(from the repository root; it imports the benchmarks' harness, which is not an installed package)

A diagnostic companion to tests/benchmarks (which time each implementation in its own benchmark): here
the two alternate call by call on the same weights and inputs, so that on a shared machine both see the
same load and the per-call ratio is meaningful even when absolute times are not. Prints the median of
each, the ratio, and each rep's ratio. --train times the benchmarks' train step instead (the pipeline's
jitted AdamW step with dropout against transformers + torch.optim.AdamW, harness.jax_train_call and
torch_train_call); MODEL may also be a checkpoint folder (real weights, a seeded fresh head). --profile N traces two JAX calls with jax.profiler and prints
time per XLA op category (dot fusions vs transposes vs element-wise) and the N costliest ops, so that
a model-file change can be judged by what it removes.
"""
from __future__ import annotations

import argparse
import collections
import glob
import re
import sys
import tempfile
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.pair", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a key of tests.benchmarks.harness.CONFIGS (e.g. bert-base-cased, xlnet-base-cased) "
                                      "or a checkpoint folder")
    parser.add_argument("--head", default="sequence_classification")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: XLA's, the CPUs allowed)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest XLA ops")
    parser.add_argument("--train", action="store_true", help="time one AdamW train step instead of the forward")
    args = parser.parse_args(argv)

    from repro.training import host_memory
    print(f"host memory: {host_memory.retain_freed_memory()} (XT_HOST_ALLOCATOR)")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    import flax_models as fm
    from flax_models import flops
    from tests.benchmarks import harness

    torch.set_num_threads(args.threads or harness.xla_cpu_threads())
    head = None if args.head in ("none", "base") else args.head
    num_labels = harness.head_num_labels(head)
    with tempfile.TemporaryDirectory() as tmp:
        tm, config = _torch_model(args.model, head, num_labels)
        tm.save_pretrained(tmp)
        model = fm.from_pretrained(tmp, head=head, num_labels=num_labels, dtype=getattr(jnp, args.dtype))
    t0 = time.perf_counter()
    if args.train:
        if head is None:
            parser.error("--train needs a head with a loss")
        batch = harness.train_batch(config, head, args.batch, args.seq_len)
        run_jax, compiled = harness.jax_train_call(model, head, batch, {})
        run_torch = harness.torch_train_call(tm, head, batch, args.dtype, {})
        batch_flops = flops.train_flops(config, args.seq_len, head, num_labels, harness.NUM_CHOICES) * args.batch
    else:
        if args.dtype != "float32":
            tm = tm.to(getattr(torch, args.dtype))
        forward, params = harness.jax_forward(model)
        params = jax.tree.map(lambda p: p.astype(getattr(jnp, args.dtype)), params)
        inputs = harness.make_inputs(config, head, args.batch, args.seq_len)
        jargs = [jnp.asarray(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")]
        targs = {k: torch.from_numpy(v).long() for k, v in inputs.items()}
        compiled = jax.jit(forward).lower(params, *jargs).compile()

        def run_jax():
            return jax.block_until_ready(compiled(params, *jargs))

        def run_torch():
            with torch.no_grad():
                return tm(**targs)

        batch_flops = flops.forward_flops(config, args.seq_len, head, num_labels, harness.NUM_CHOICES) * args.batch
    print(f"JAX compile {time.perf_counter() - t0:.1f} s; XLA threads {harness.xla_cpu_threads()}, "
          f"torch threads {torch.get_num_threads()}")

    run_jax(), run_torch()
    tj, tt = [], []
    for _ in range(args.reps):
        for fn, acc in ((run_jax, tj), (run_torch, tt)):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    mj, mt = float(np.median(tj)), float(np.median(tt))
    what = "train step" if args.train else "forward"
    print(f"{args.model} {args.head} {what} B={args.batch} T={args.seq_len} {args.dtype}: "
          f"jax {mj * 1e3:.0f} ms ({batch_flops / mj / 1e9:.0f} GFLOP/s)  torch {mt * 1e3:.0f} ms "
          f"({batch_flops / mt / 1e9:.0f} GFLOP/s)  jax/torch {mj / mt:.3f}")
    print(f"min of reps (least disturbed by other load): jax {min(tj) * 1e3:.0f} ms  torch {min(tt) * 1e3:.0f} ms  "
          f"jax/torch {min(tj) / min(tt):.3f}")
    print("per-rep jax/torch:", " ".join(f"{a / b:.3f}" for a, b in zip(tj, tt)))

    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            with jax.profiler.trace(tmp):
                run_jax(), run_jax()
            data = jax.profiler.ProfileData.from_file(glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[0])
            per_op, per_kind = collections.Counter(), collections.Counter()
            for plane in data.planes:
                for line in plane.lines:
                    if not line.name.startswith("tf_XLA"):
                        continue  # XLA's threads run the ops (Python's line holds the API calls)
                    for event in line.events:
                        if "Execute" in event.name or "Await" in event.name or event.name.startswith("end:"):
                            continue
                        per_op[event.name] += event.duration_ns / 2
                        per_kind[re.sub(r"[._]\d+$", "", event.name)] += event.duration_ns / 2
        total = sum(per_kind.values()) or 1
        print(f"\nXLA op time per call (summed over worker threads): {total / 1e6:.0f} ms")
        for kind, ns in per_kind.most_common(12):
            print(f"  {ns / 1e6:9.1f} ms  {100 * ns / total:5.1f} %  {kind}")
        per_class = collections.Counter()
        classes = op_classes(compiled.as_text(), config["vocab_size"])
        for name, ns in per_op.items():
            per_class[classes.get(name, "other")] += ns
        print("\nby what the op computes (from the optimised HLO):")
        for cls, ns in per_class.most_common():
            print(f"  {ns / 1e6:9.1f} ms  {100 * ns / total:5.1f} %  {cls}")
        print(f"\n{args.profile} costliest ops:")
        for name, ns in per_op.most_common(args.profile):
            print(f"  {ns / 1e6:9.1f} ms  {name}")
    return 0


def op_classes(hlo: str, vocab_size: int) -> dict[str, str]:
    """Top-level op name -> what it computes, read from the optimised HLO text: a matmul (a dot inside), the
    dropout masks (threefry's xor/shift rounds), a pass over the word-embedding table (its gradient and
    optimiser update: a (vocab, H) operand or result), a layout copy, a softmax / layer norm (exp, reduce),
    or other element-wise work."""
    bodies: dict[str, list[str]] = {}
    current = None
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?%([\w.\-]+) .*\{$", line)
        if head:
            current = bodies.setdefault(head.group(1), [])
        elif current is not None:
            current.append(line)

    def opcodes(comp: str, depth: int = 0) -> set:
        found = set()
        for line in bodies.get(comp, []):
            m = re.match(r"\s*(?:ROOT )?%[\w.\-]+ = \S+ ([\w-]+)\(", line)
            if m:
                found.add(m.group(1))
            called = re.search(r"calls=%([\w.\-]+)", line)
            if called and depth < 4:
                found |= opcodes(called.group(1), depth + 1)
        return found

    table = f"[{vocab_size},"
    out = {}
    for lines in bodies.values():
        for line in lines:
            m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+) ([\w-]+)\((.*)", line)
            if not m:
                continue
            name, shape, opcode, rest = m.groups()
            called = re.search(r"calls=%([\w.\-]+)", rest)
            ops = opcodes(called.group(1)) | {opcode} if called else {opcode}
            if "dot" in ops or "convolution" in ops or name.startswith("ynn_fusion"):
                kind = "matmul"
            elif "xor" in ops and "shift-right-logical" in ops:
                kind = "dropout masks (threefry)"
            elif table in line:
                kind = "word-embedding table passes (gradient, clipping, AdamW)"
            elif ops & {"transpose", "copy"} and not ops & {"exponential", "reduce"}:
                kind = "layout copies / transposes"
            elif ops & {"exponential", "reduce", "rsqrt", "sqrt"}:
                kind = "softmax / layer norm / reductions"
            else:
                kind = "other element-wise"
            out.setdefault(name, kind)
    return out


def _torch_model(model: str, head, num_labels):
    """(PyTorch model, config dict): random weights for a CONFIGS key; a folder's weights with a fresh head
    drawn under torch.manual_seed(0), as the benchmarks' model bank does."""
    import json
    from pathlib import Path

    import torch
    import transformers

    from tests.benchmarks import harness

    if model in harness.CONFIGS:
        config = harness.CONFIGS[model]
        return harness.build_torch_model(config, head, num_labels), config
    if not (Path(model) / "config.json").is_file():
        raise SystemExit(f"pair: {model!r} is neither a key of harness.CONFIGS nor a folder with config.json")
    config = json.loads((Path(model) / "config.json").read_text())
    torch.manual_seed(0)
    cls = getattr(transformers, harness.torch_class_name(config, head))
    return cls.from_pretrained(model, **({"num_labels": num_labels} if num_labels else {})).eval(), config


if __name__ == "__main__":
    sys.exit(main())
