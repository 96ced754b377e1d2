"""PNG figures for ``slotfill evaluate --plots DIR``: reliability diagrams and confusion matrices.

matplotlib is imported only here, with the Agg backend (no display; safe in servers and CI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after the backend is chosen
import numpy as np
from matplotlib.figure import Figure

from training.calibration import (
    TaggerCalibration,
    expected_calibration_error,
    reliability,
)


def reliability_diagram(
    outcomes: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path
) -> Path:
    """Accuracy against confidence per bin, one series per entry of ``outcomes`` (e.g.
    ``uncalibrated`` and ``calibrated`` -> (confidences, correct)), with the diagonal of
    perfect calibration and each series' ECE in the legend; written to ``path``."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    width = 1.0
    for n, (name, (conf, right)) in enumerate(outcomes.items()):
        r = reliability(conf, right)
        width = float(r.edges[1] - r.edges[0])
        centres = (r.edges[:-1] + r.edges[1:]) / 2
        used = r.counts > 0
        ece = expected_calibration_error(conf, right)
        top.plot(
            centres[used],
            r.accuracy[used],
            marker="o",
            label=f"{name} (ECE {ece:.4f})",
            color=f"C{n}",
        )
        offset = (n - (len(outcomes) - 1) / 2) * width / max(len(outcomes), 1)
        bottom.bar(
            centres + offset,
            r.counts,
            width=width / max(len(outcomes), 1),
            color=f"C{n}",
            label=name,
        )
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_title(title)
    top.legend(loc="upper left", fontsize="small")
    bottom.set_yscale("symlog")
    bottom.set_xlabel(f"confidence ({round(1 / width)} equal-width bins)")
    bottom.set_ylabel("items")
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str], title: str, path: Path) -> Path:
    """Counts of gold (rows) against predicted (columns) labels, every label that occurs in
    either; written to ``path``."""
    labels = sorted(set(gold) | set(predicted))
    index = {name: i for i, name in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        counts[index[g], index[p]] += 1
    size = max(4.0, 0.32 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    # Log colours: a few confusions stay visible beside a diagonal of hundreds.
    image = ax.imshow(np.log1p(counts), cmap="Blues")
    fig.colorbar(image, ax=ax, label="log(1 + count)", shrink=0.8)
    small = len(labels) > 12
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6 if small else 9)
    ax.set_yticks(range(len(labels)), labels, fontsize=6 if small else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    if len(labels) <= 40:
        limit = np.log1p(counts.max()) / 2 if counts.size else 0
        for (i, j), c in np.ndenumerate(counts):
            if c:
                colour = "white" if np.log1p(c) > limit else "black"
                ax.text(
                    j, i, str(c), ha="center", va="center", fontsize=5 if small else 8, color=colour
                )
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
    return path


def tagger_plots(
    folder: Path,
    calibration: TaggerCalibration,
    gold_intents: Sequence[str] | None,
    predicted_intents: Sequence[str],
) -> list[Path]:
    """``intent_reliability.png`` and ``intent_confusion.png`` (with intents) and
    ``span_reliability.png`` in ``folder``; the paths written."""
    written = []
    if calibration.intent:
        written.append(
            reliability_diagram(
                calibration.intent, "intents: best intent", folder / "intent_reliability.png"
            )
        )
    if gold_intents is not None:
        written.append(
            confusion_matrix(
                gold_intents, predicted_intents, "intents", folder / "intent_confusion.png"
            )
        )
    written.append(
        reliability_diagram(
            calibration.spans, "slot spans: exactly right", folder / "span_reliability.png"
        )
    )
    return written


def sentiment_plots(
    folder: Path,
    outcomes: Mapping[str, tuple[np.ndarray, np.ndarray]],
    gold: Sequence[str],
    predicted: Sequence[str],
) -> list[Path]:
    """``sentiment_reliability.png`` and ``sentiment_confusion.png`` in ``folder``."""
    return [
        reliability_diagram(
            outcomes, "sentiment: best label", folder / "sentiment_reliability.png"
        ),
        confusion_matrix(gold, predicted, "sentiment labels", folder / "sentiment_confusion.png"),
    ]
