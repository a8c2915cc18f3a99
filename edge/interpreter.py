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
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "digit_int8.tflite"
MAX_BATCH = 256


class ModelError(Exception):
    """The model or its manifest is missing, malformed or does not match."""


def load_interpreter_class(backend: str | None = None):
    """First importable LiteRT interpreter; `backend` forces one. Returns (name, class)."""
    modules = {
        "ai_edge_litert": "ai_edge_litert.interpreter",
        "tflite_runtime": "tflite_runtime.interpreter",
        "tensorflow": "tensorflow.lite",  # last resort: a desktop with full TensorFlow
    }
    names = [backend] if backend else list(BACKENDS)
    errors = []
    for name in names:
        if name not in modules:
            raise ModelError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        try:
            module = importlib.import_module(modules[name])
            return name, module.Interpreter
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
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{manifest_path}: manifest missing (every published model has one)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{manifest_path}: unreadable manifest ({e})") from None
    for key in ("sha256", "normalization"):
        if key not in manifest:
            raise ModelError(f"{manifest_path}: manifest lacks {key!r}")
    actual = sha256_file(model_path)
    if actual != manifest["sha256"]:
        message = (f"{model_path}: sha256 {actual[:12]}… does not match its manifest "
                   f"({manifest['sha256'][:12]}…); the model was changed or the manifest is stale")
        if not allow_mismatch:
            raise ModelError(message + " (--allow-mismatch to run it anyway)")
        log.warning("%s; running it anyway because mismatch was allowed", message)
    return manifest


class DigitModel:
    """One interpreter, created once, fed batches of 28x28 uint8 digits."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, *, manifest_path: str | Path | None = None,
                 threads: int = 1, backend: str | None = None, allow_mismatch: bool = False,
                 manifest: dict | None = None):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        self.manifest = manifest if manifest is not None else read_manifest(
            self.model_path, manifest_path, allow_mismatch)
        norm = self.manifest["normalization"]
        self.scale, self.offset = float(norm["scale"]), float(norm["offset"])
        self.labels = list(self.manifest.get("labels", [str(i) for i in range(10)]))
        # A model may have a class for what is not a digit (letters, rule pieces, smudges).
        reject = self.manifest.get("not_a_digit")
        self.not_a_digit = self.labels.index(reject) if reject in self.labels else None
        self.backend, interpreter_class = load_interpreter_class(backend)
        try:
            self.interpreter = interpreter_class(model_path=str(self.model_path), num_threads=threads)
        except Exception as e:
            raise ModelError(f"{self.model_path}: not a loadable TFLite model ({e})") from None
        log.info("model %s on %s, %d thread(s)", self.model_path.name, self.backend, threads)
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input_dtype, self.output_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        self.input_quant, self.output_quant = inp["quantization"], out["quantization"]
        self._batch = int(inp["shape"][0])
        self._resize(1)

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(self._in_index, [n, 28, 28, 1])
            self._batch = n
            self._allocated = False
        if not getattr(self, "_allocated", False):
            self.interpreter.allocate_tensors()
            self._allocated = True

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
        """Class probabilities (N, 10) for uint8 digits (N, 28, 28), many per invoke."""
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = pixels[None]
        if pixels.ndim != 3 or pixels.shape[1:] != (28, 28):
            raise ValueError(f"expected (N, 28, 28) digits, got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        outputs = []
        for start in range(0, len(pixels), MAX_BATCH):
            chunk = pixels[start:start + MAX_BATCH]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self._in_index, self.to_input(chunk))
            self.interpreter.invoke()
            outputs.append(self._from_output(self.interpreter.get_tensor(self._out_index)))
        return np.concatenate(outputs)
