"""Training figures: curves, confusion matrix, misclassified digits. Agg backend, no display."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge.atomic import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def training_curves(history: dict, path: Path) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history[key], "o-", label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str = "") -> np.ndarray:
    cm = np.zeros((10, max(10, int(y_pred.max(initial=0)) + 1)), dtype=int)   # column 10: not a digit
    np.add.at(cm, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set_xticks(range(cm.shape[1]), [str(j) if j < 10 else "not a digit" for j in range(cm.shape[1])])
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix ({np.trace(cm)}/{cm.sum()} right)")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    _save(fig, path)
    return cm


def misclassified(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, path: Path,
                  limit: int = 64) -> None:
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).ravel(), wrong):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"{y_true[i]}→{y_pred[i]}", fontsize=9, color="red")
    fig.suptitle(f"{int((y_true != y_pred).sum())} misclassified test digits (true→predicted)")
    _save(fig, path)
