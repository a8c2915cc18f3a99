"""What a training run is told: architectures, their defaults, the run's options.

Kept apart from the Keras code so `python -m train --help` answers without importing TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ARCHS = ("edge", "seed")
# Per-architecture defaults: the seed is trained exactly as the seeds did it; the edge model
# longer, with augmentation for real pens, a warm-up/cosine schedule, generated non-digits and
# other writers' digits (train/optdigits.py); the last two as fractions of the MNIST images.
DEFAULTS = {
    "seed": dict(epochs=10, batch_size=200, augment=False, peak_lr=1e-3, negatives=0.0, other_hands=0.0),
    "edge": dict(epochs=30, batch_size=128, augment=True, peak_lr=2e-3, negatives=0.15, other_hands=0.13),
}
# The edge model's 11th class: what a page shows besides digits (train/negatives.py). The reader
# drops a piece read as this label.
NOT_A_DIGIT = "x"
MODEL_NAME = "digit_cnn"


@dataclass
class TrainConfig:
    arch: str = "edge"
    epochs: int | None = None          # None: the architecture's default
    batch_size: int | None = None
    limit: int | None = None           # train on the first N training images (quick runs, tests)
    data_dir: str | None = None        # MNIST IDX folder (default: $MNIST_DIR, Keras cache, download)
    out: Path = Path("build/model")      # untracked; `make publish` copies a validated model to models/
    seed: int = 42
    h5: bool = False                   # also write the legacy .h5 the seeds used
    val_fraction: float = 0.1
    verbose: int | str = "auto"        # Keras fit verbosity: 2 is one line per epoch (logs, pipes)
    callbacks: list = field(default_factory=list)   # extra Keras callbacks (the benchmark times steps)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose from {', '.join(ARCHS)}")
        self.out = Path(self.out)
        defaults = DEFAULTS[self.arch]
        self.epochs = self.epochs or defaults["epochs"]
        self.batch_size = self.batch_size or defaults["batch_size"]

    @property
    def augment(self) -> bool:
        return DEFAULTS[self.arch]["augment"]

    @property
    def peak_lr(self) -> float:
        return DEFAULTS[self.arch]["peak_lr"]

    @property
    def negatives(self) -> float:
        return DEFAULTS[self.arch]["negatives"]

    @property
    def other_hands(self) -> float:
        return DEFAULTS[self.arch]["other_hands"]
