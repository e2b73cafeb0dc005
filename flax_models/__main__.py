"""python -m flax_models check-parity NAME_OR_DIR [--head H] [--num-labels N] [--tolerance T]
                                     [--dtype float32|bfloat16] [--json OUT]

Exit status: 0 within tolerance, 1 above it or when the checkpoint lacks backbone weights (one line),
2 on bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys

from flax_models.modeling_utils import HEADS

_HEAD_NAMES = ["none", *[h for h in HEADS if h is not None]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flax_models", description=__doc__.split("\n\n")[-1])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-parity", help="compare our port with the transformers PyTorch class on the same weights",
        description="Runs our Flax port and the transformers PyTorch class named for the head on one padded "
                    "batch (two segments, padding on the family's side) and prints the max-abs differences "
                    "of last_hidden_state and logits over real tokens. Needs torch (the test extra).")
    check.add_argument("model", metavar="NAME_OR_DIR", help="a local transformers folder or a hub id")
    check.add_argument("--head", choices=_HEAD_NAMES, default="none")
    check.add_argument("--num-labels", type=int, default=None,
                       help="labels for classification heads (default: the config's)")
    check.add_argument("--tolerance", type=float, default=None,
                       help="max-abs difference allowed (default 1e-4 for float32, 1e-1 for bfloat16)")
    check.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="our compute dtype")
    check.add_argument("--seed", type=int, default=0, help="seed of the batch and of fresh head weights")
    check.add_argument("--json", metavar="OUT", default=None, help="also write the result as JSON here")
    return parser


def check_parity(args: argparse.Namespace) -> int:
    import jax.numpy as jnp

    from flax_models import parity

    head = None if args.head == "none" else args.head
    if args.json:   # a file of the user's is never overwritten: refused before the check (repro.outputs owns the rule)
        from repro.outputs import check_json_output
        check_json_output(args.json, "check-parity")
    result = parity.compare(args.model, head=head, num_labels=args.num_labels,
                            dtype=jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32,
                            tolerance=args.tolerance, seed=args.seed)
    print(f"model              {result.source} ({result.model_type}, {result.hf_class}, {result.dtype})")
    print(f"compared           checkpoint stored as {result.stored_dtype}; PyTorch reference in "
          f"{result.reference_dtype}, ours with float32 weights computing in {result.dtype}")
    print(f"batch              input_ids {result.batch_shape}, padded on the {result.padding_side}")
    print(f"last_hidden_state  max |diff| {result.max_abs_hidden:.3e}")
    if result.max_abs_logits is not None:
        print(f"logits             max |diff| {result.max_abs_logits:.3e}")
    print(f"{'PASS' if result.passed else 'FAIL'} (tolerance {result.tolerance:.1e})")
    if args.json:
        from repro.outputs import write_json_output
        write_json_output(args.json, result.as_dict(), "check-parity")
    return 0 if result.passed else 1


def _quiet_transformers() -> None:
    try:
        import transformers
    except ImportError:
        return
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    from flax_models.errors import MissingWeightsError
    from repro.errors import OutputDirError

    args = _parser().parse_args(argv)
    _quiet_transformers()
    try:
        return check_parity(args)
    except MissingWeightsError as err:  # a partly random backbone has no parity to check: a failure, not bad input
        print(f"FAIL: {err}")
        return 1
    except (OSError, ValueError, ImportError, OutputDirError) as err:  # FileNotFoundError is an OSError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
