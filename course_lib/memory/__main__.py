"""`python -m course_lib.memory`: the memory estimate of one model and method, and the GPUs it fits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from course_lib.memory.estimate import DTYPE_BYTES, METHODS, OPTIMIZERS, count_text, estimate_memory
from course_lib.memory.shapes import TARGETS, known_models, model_shape, shipped_shapes


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m course_lib.memory --model NAME --method qlora ...`: print the breakdown and the fit table."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.memory",
        description="Estimate the GPU memory of a fine-tuning step and the GPUs it fits.",
    )
    parser.add_argument("--model", help=f"a shipped model ({', '.join(known_models())}) or one of their Hub ids")
    parser.add_argument("--method", choices=METHODS, default="lora")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per step (default 8)")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adamw")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True,
                        help="recompute activations in the backward pass (default on)")
    parser.add_argument("--dtype", choices=list(DTYPE_BYTES), default="bfloat16")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=True,
                        help="train under autocast; full fine-tuning keeps fp32 master weights (default on)")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--targets", choices=list(TARGETS), default="all-linear",
                        help="LoRA targets (default all-linear)")
    parser.add_argument("--virtual-tokens", type=int, default=20,
                        help="prompt tuning: the soft prompt's length in tokens (default 20)")
    parser.add_argument("--list", action="store_true", help="list the shipped models and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in known_models():
            print(f"{name:<14} {count_text(model_shape(name).parameters):>8}  {', '.join(shipped_shapes()[name][1])}")
        return 0
    if not args.model:
        print(f"error: --model is required. Known models: {', '.join(known_models())}.", file=sys.stderr)
        return 2
    try:
        estimate = estimate_memory(
            args.model, method=args.method, seq_len=args.seq_len, batch_size=args.batch_size, optimizer=args.optimizer,
            gradient_checkpointing=args.gradient_checkpointing, dtype=args.dtype, mixed_precision=args.mixed_precision,
            rank=args.rank, targets=args.targets, virtual_tokens=args.virtual_tokens,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(estimate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
