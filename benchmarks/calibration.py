"""Which span temperature: the one ``slotfill train`` fits (binary NLL of "this predicted span is
exactly right" under its served confidence) against the CRF's NLL of the gold tag paths.

For each objective: the temperature fitted on the whole split and its span ECE there, and the
span ECE cross-fitted on the split's two halves (fitted on one, measured on the other; the
halves of ``slotfill evaluate``). Sentences whose gold path the model cannot produce (a tag
it does not know, or invalid BIO) are left out of the gold-path NLL only.

    python -m benchmarks.calibration --artifact DIR --split ../shared/data/atis/valid
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.artifact import load_artifact
from models.calibration import scale_crf_arrays
from models.crf import FORBIDDEN, CRFArrays, forward_backward_arrays
from models.predictor import SlotTaggerPredictor
from training.calibration import (
    TaggerOutputs,
    binary_nll,
    expected_calibration_error,
    fit_scale,
    halves,
    span_outcomes,
    tagger_outputs,
)
from training.formats import read_split
from training.tagging import tagging_set


def gold_paths(
    predictor: SlotTaggerPredictor, tags: Sequence[Sequence[str]], arrays: CRFArrays
) -> list[list[int] | None]:
    """Gold tag ids per sentence; None where the constrained CRF cannot produce them."""
    out: list[list[int] | None] = []
    for row in tags:
        ids = [predictor.tags.index_of.get(t, -1) for t in row]
        ok = -1 not in ids and arrays.start[ids[0]] > FORBIDDEN
        ok = ok and all(arrays.transitions[a, b] > FORBIDDEN for a, b in itertools.pairwise(ids))
        out.append(ids if ok else None)
    return out


def gold_path_nll(
    outputs: TaggerOutputs,
    arrays: CRFArrays,
    gold: Sequence[list[int] | None],
    temperature: float,
    rows: np.ndarray,
) -> float:
    """Mean NLL of the gold paths of ``rows`` under the CRF scaled by ``temperature``."""
    keep = sorted(
        (int(r) for r in rows if gold[int(r)] is not None), key=lambda r: len(gold[r] or [])
    )
    scaled = scale_crf_arrays(arrays, temperature)
    total = 0.0
    for i in range(0, len(keep), 64):  # chunks of similar length: little padding
        chunk = keep[i : i + 64]
        longest = len(gold[chunk[-1]] or [])
        em = outputs.emissions[chunk, :longest] / temperature
        _, _, log_z = forward_backward_arrays(em, outputs.mask[chunk, :longest], scaled)
        for b, n in enumerate(chunk):
            path = gold[n]
            assert path is not None
            score = scaled.start[path[0]] + scaled.end[path[-1]]
            score += sum(em[b, t, k] for t, k in enumerate(path))
            score += sum(scaled.transitions[a, c] for a, c in itertools.pairwise(path))
            total += float(log_z[b]) - score
    return total / max(len(keep), 1)


def fitted(loss: Callable[[float, np.ndarray], float], rows: np.ndarray) -> float:
    """The temperature minimising ``loss`` on ``rows``."""
    return fit_scale(lambda t: loss(t, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    args = parser.parse_args()
    predictor = load_artifact(args.artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    multi = predictor.model.config.multi_label
    _, examples, _ = read_split(args.split, None, multi)
    data = tagging_set(examples, str(args.split))
    outputs = tagger_outputs(predictor, data)
    arrays = CRFArrays.of(predictor.model.crf_params())
    gold = gold_paths(predictor, data.tags, arrays)
    everything = np.arange(len(data))

    def span_nll(t: float, rows: np.ndarray) -> float:
        return binary_nll(*span_outcomes(predictor, outputs, data.tags, t, rows))

    def path_nll(t: float, rows: np.ndarray) -> float:
        return gold_path_nll(outputs, arrays, gold, t, rows)

    report: dict[str, object] = {
        "artifact": str(args.artifact),
        "split": str(args.split),
        "gold_paths_scored": sum(g is not None for g in gold),
        "n": len(data),
        "span_ece_at_1": expected_calibration_error(
            *span_outcomes(predictor, outputs, data.tags, 1.0)
        ),
    }
    for name, loss in (("span_nll", span_nll), ("gold_path_nll", path_nll)):
        t = fitted(loss, everything)
        ece = expected_calibration_error(*span_outcomes(predictor, outputs, data.tags, t))
        conf, right = [], []
        parts = halves(len(data))
        for fit_on, measure_on in (parts, parts[::-1]):
            t_half = fitted(loss, fit_on)
            c, r = span_outcomes(predictor, outputs, data.tags, t_half, measure_on)
            conf.append(c)
            right.append(r)
        report[name] = {
            "temperature": round(t, 4),
            "span_ece": ece,
            "span_ece_crossfit": expected_calibration_error(
                np.concatenate(conf), np.concatenate(right)
            ),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
