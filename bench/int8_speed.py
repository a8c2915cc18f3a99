"""Why int8 can be slower than float32 on x86, and whether ours is: XNNPACK on/off, per model.

python -m bench.int8_speed models/digit_int8.tflite models/digit_float32.tflite [more .tflite ...]
For each model: its ops, and microseconds per image at batch 1 and batch 64 (1 thread) with the
default XNNPACK delegate and with the built-in kernels only (BUILTIN_WITHOUT_DEFAULT_DELEGATES).
The difference between the two columns is what XNNPACK takes over.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from convert.timing import per_image_us
from edge.interpreter import DigitModel


def timed(path: Path, batch: int, xnnpack: bool, seconds: float = 0.6) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [batch, 28, 28, 1])
    it.allocate_tensors()
    x = np.random.default_rng(0).integers(-128, 127, (batch, 28, 28, 1)).astype(inp["dtype"])
    if inp["dtype"] == np.float32:
        x = (x.astype(np.float32) + 128) / 255
    it.set_tensor(inp["index"], x)
    return per_image_us(it.invoke, batch, 3, seconds / 3)["median"]


def ops(path: Path) -> list[str]:
    return DigitModel(path, allow_mismatch=True).op_names()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.int8_speed", description=__doc__)
    p.add_argument("models", nargs="+", type=Path)
    args = p.parse_args(argv)
    print("| model | size KB | ops | µs/img b1 XNNPACK | b1 built-in | b64 XNNPACK | b64 built-in |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for path in args.models:
        names = ops(path)
        summary = ", ".join(f"{n}×{names.count(n)}" for n in dict.fromkeys(names))
        t = [timed(path, b, x) for b in (1, 64) for x in (True, False)]
        print(f"| {path.name} | {path.stat().st_size / 1024:.0f} | {summary} | "
              + " | ".join(f"{v:.1f}" for v in t) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
