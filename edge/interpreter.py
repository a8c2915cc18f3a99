"""The device's model: a LiteRT interpreter plus the manifest that says how to feed it.

This is the one place on the device that turns 28x28 uint8 digits (0 = background, 255 = ink)
into model input, using the normalization recorded in the model's manifest, and turns raw
(possibly int8) outputs back into probabilities. convert/ validates through this same class.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import first_line
from .preprocess import DIGIT

log = logging.getLogger(__name__)

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "digit_int8.tflite"
MAX_BATCH = 256
DIGIT_SIZE = (DIGIT, DIGIT)  # what edge/preprocess.py makes: MNIST's 28x28, one channel
LABEL = re.compile(r"[A-Za-z0-9_-]{1,16}")   # labels end up in file names (--debug-dir): no paths


class ModelError(Exception):
    """The model or its manifest is missing, malformed or does not match."""


def load_interpreter_class(backend: str | None = None):
    """First importable LiteRT interpreter; `backend` forces one. Returns (name, class)."""
    modules = {
        "ai_edge_litert": "ai_edge_litert.interpreter",
        "tflite_runtime": "tflite_runtime.interpreter",
        "tensorflow": "tensorflow",  # last resort: a desktop with full TensorFlow (tf.lite.Interpreter)
    }
    names = [backend] if backend else list(BACKENDS)
    errors = []
    for name in names:
        if name not in modules:
            raise ModelError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        try:
            if name == "tensorflow":
                from .quiet import import_tensorflow
                module = import_tensorflow()
            else:
                module = importlib.import_module(modules[name])
            return name, module.lite.Interpreter if name == "tensorflow" else module.Interpreter
        except Exception as e:  # ImportError, or a numpy ABI mismatch raising at import
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise ModelError("no TFLite interpreter could be imported (" + "; ".join(errors) +
                     "); install ai-edge-litert (pip install ai-edge-litert) or tflite-runtime")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest_path_for(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_manifest(model_path: Path, manifest_path: Path | None = None, allow_mismatch: bool = False) -> dict:
    """The model's manifest, checked against the model file's sha256."""
    manifest_path = Path(manifest_path or manifest_path_for(model_path))
    if not Path(model_path).is_file():
        raise ModelError(f"{model_path}: model file not found")
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{manifest_path}: manifest missing (every published model has one)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{manifest_path}: unreadable manifest ({e})") from None
    check_manifest(manifest, manifest_path)
    actual = sha256_file(model_path)
    if actual != manifest["sha256"]:
        message = (f"{model_path}: sha256 {actual[:12]}… does not match its manifest "
                   f"({manifest['sha256'][:12]}…); the model was changed or the manifest is stale")
        if not allow_mismatch:
            raise ModelError(message + " (--allow-mismatch to run it anyway)")
        log.warning("%s; running it anyway because mismatch was allowed", message)
    return manifest


def check_manifest(manifest, where: Path) -> None:
    """What the device relies on: the model's sha256, a numeric normalization, safe labels."""
    if not isinstance(manifest, dict):
        raise ModelError(f"{where}: the manifest is not a JSON object")
    for key in ("sha256", "normalization"):
        if key not in manifest:
            raise ModelError(f"{where}: manifest lacks {key!r}")
    norm = manifest["normalization"]
    if not (isinstance(norm, dict) and all(isinstance(norm.get(k), (int, float)) and not isinstance(norm.get(k), bool)
                                           for k in ("scale", "offset"))):
        raise ModelError(f"{where}: \"normalization\" must be {{\"scale\": number, \"offset\": number}}, "
                         f"got {json.dumps(norm)[:80]}")
    labels = manifest.get("labels", [str(i) for i in range(10)])
    if (not isinstance(labels, list) or len(labels) < 2 or len(set(map(str, labels))) != len(labels)
            or not all(isinstance(x, str) and LABEL.fullmatch(x) for x in labels)):
        raise ModelError(f"{where}: \"labels\" must be distinct short names (letters, digits, _ or -), "
                         f"got {json.dumps(labels)[:80]}")


PROBE_SECONDS = 5.0            # a file that is not its manifest's may take this long to load and run once
PROBE_MEMORY = 1 << 30         # and this much more address space (a corrupted tensor size asks for GBs)


def probe_in_child(load: Callable[[], object]) -> str | None:
    """Run `load` in a forked child under a time and memory bound; None if it ran, else why not.

    A corrupted .tflite can segfault the interpreter (tflite-runtime 2.14 does on some of the fuzz
    test's files; ai-edge-litert 2.3 raises), or ask for gigabytes: neither can be caught in the
    process it kills or stalls. Only files that are not what their manifest says are probed, so
    the published model costs nothing."""
    if not hasattr(os, "fork"):
        return None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: try, report, leave without cleanup
        os.close(read_end)
        try:
            try:
                import resource
                size = int([x for x in open("/proc/self/status") if x.startswith("VmSize:")][0].split()[1]) * 1024
                resource.setrlimit(resource.RLIMIT_AS, (size + PROBE_MEMORY, resource.RLIM_INFINITY))
            except (ImportError, OSError, ValueError, IndexError):
                pass
            load()
            os._exit(0)
        except BaseException as e:
            os.write(write_end, first_line(e, with_type=True).encode())
            os._exit(1)
    os.close(write_end)
    deadline = time.monotonic() + PROBE_SECONDS
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"the interpreter takes over {PROBE_SECONDS:g} s to load it"
            time.sleep(0.005)
        message = os.read(read_end, 400).decode(errors="replace")
    finally:
        os.close(read_end)
    if os.WIFSIGNALED(status):
        return f"the interpreter crashes on it ({signal.Signals(os.WTERMSIG(status)).name})"
    if os.WEXITSTATUS(status):
        return f"not a loadable TFLite model ({message or 'unknown error'})"
    return None


def _load_and_invoke(interpreter_class, path: Path) -> None:
    it = interpreter_class(model_path=str(path))
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()


class DigitModel:
    """One interpreter, created once, fed batches of 28x28 uint8 digits."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, *, manifest_path: str | Path | None = None,
                 threads: int = 1, backend: str | None = None, allow_mismatch: bool = False,
                 manifest: dict | None = None, quiet: bool = False):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        if manifest is None:
            manifest = read_manifest(self.model_path, manifest_path, allow_mismatch)   # checked there
        else:
            check_manifest(manifest, manifest_path_for(self.model_path))
        self.manifest = manifest
        norm = self.manifest["normalization"]
        self.scale, self.offset = float(norm["scale"]), float(norm["offset"])
        self.labels = list(self.manifest.get("labels", [str(i) for i in range(10)]))
        # A model may have a class for what is not a digit (letters, rule pieces, smudges).
        reject = self.manifest.get("not_a_digit")
        self.not_a_digit = self.labels.index(reject) if reject in self.labels else None
        self.backend, interpreter_class = load_interpreter_class(backend)
        if sha256_file(self.model_path) != self.manifest["sha256"]:      # not the file that was validated
            problem = probe_in_child(lambda: _load_and_invoke(interpreter_class, self.model_path))
            if problem:
                raise ModelError(f"{self.model_path}: {problem}")
        try:
            self.interpreter = interpreter_class(model_path=str(self.model_path), num_threads=threads)
        except Exception as e:
            raise ModelError(f"{self.model_path}: not a loadable TFLite model ({first_line(e)})") from None
        self._check_signature()
        try:        # one inference now: a model that cannot run fails here, not on every frame
            self.predict(np.zeros((1, *self.input_size), np.uint8))
        except ModelError as e:
            raise ModelError(f"{self.model_path}: does not run on a blank digit ({e})") from None
        (log.debug if quiet else log.info)("model %s on %s, %d thread(s)", self.model_path.name, self.backend, threads)

    def _check_signature(self) -> None:
        """One input of N x 28 x 28 x 1 and one output of one score per manifest label."""
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.model_path}: expected one input and one output, "
                             f"got {len(inputs)} and {len(outputs)}")
        inp, out = inputs[0], outputs[0]
        in_shape, out_shape = [int(v) for v in inp["shape"]], [int(v) for v in out["shape"]]
        if len(in_shape) != 4 or tuple(in_shape[1:3]) != DIGIT_SIZE or in_shape[3] != 1:
            raise ModelError(f"{self.model_path}: input is {'x'.join(map(str, in_shape[1:]))}; the reader makes "
                             f"{DIGIT_SIZE[0]}x{DIGIT_SIZE[1]}x1 digits")
        if len(out_shape) != 2 or out_shape[1] != len(self.labels):
            raise ModelError(f"{self.model_path}: output has {out_shape[-1]} scores; the manifest names "
                             f"{len(self.labels)} labels")
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input_dtype, self.output_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        if self.input_dtype not in (np.float32, np.int8, np.uint8) or self.output_dtype not in (
                np.float32, np.int8, np.uint8):
            raise ModelError(f"{self.model_path}: input {self.input_dtype} / output {self.output_dtype}; "
                             "expected float32, int8 or uint8")
        self.input_quant, self.output_quant = inp["quantization"], out["quantization"]
        if self.input_dtype != np.float32 and not self.input_quant[0]:
            raise ModelError(f"{self.model_path}: {self.input_dtype} input without quantization parameters")
        self.input_size = DIGIT_SIZE
        self._batch = in_shape[0]
        self._allocated = False

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(self._in_index, [n, *self.input_size, 1])
            self._batch = n
            self._allocated = False
        if not self._allocated:
            self.interpreter.allocate_tensors()
            self._allocated = True

    def op_names(self) -> list[str]:
        """Op names in execution order (Flex* would be Select TF ops, which a device lacks). LiteRT
        offers this only through a private method; this is the one place that calls it."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()]

    def to_input(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 digits (N, 28, 28) -> the model's input tensor, via the manifest's normalization."""
        x = pixels.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        if self.input_dtype in (np.int8, np.uint8):
            scale, zero = self.input_quant
            info = np.iinfo(self.input_dtype)
            x = np.clip(np.round(x / np.float32(scale)) + zero, info.min, info.max)
        return x.astype(self.input_dtype)[..., None]

    def _from_output(self, raw: np.ndarray) -> np.ndarray:
        if self.output_dtype in (np.int8, np.uint8):
            scale, zero = self.output_quant
            return (raw.astype(np.float32) - zero) * np.float32(scale)
        return raw.astype(np.float32)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for uint8 digits (N, 28, 28), many per invoke.
        LiteRT's own errors (allocation, invoke) come out as ModelError."""
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = pixels[None]
        if pixels.ndim != 3 or pixels.shape[1:] != self.input_size:
            raise ValueError(f"expected (N, {self.input_size[0]}, {self.input_size[1]}) digits, got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        outputs = []
        for start in range(0, len(pixels), MAX_BATCH):
            chunk = pixels[start:start + MAX_BATCH]
            try:
                self._resize(len(chunk))
                self.interpreter.set_tensor(self._in_index, self.to_input(chunk))
                self.interpreter.invoke()
                out = self.interpreter.get_tensor(self._out_index)
            except (RuntimeError, ValueError, MemoryError) as e:   # MemoryError: a corrupted tensor size
                self._allocated = False      # LiteRT's error text accumulates; start clean next time
                raise ModelError(f"the interpreter failed: {first_line(e)}") from None
            outputs.append(self._from_output(out))
        return np.concatenate(outputs)
