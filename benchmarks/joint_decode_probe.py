"""Would reading the intent and the slots together fix intents? A probe on ``slotfill cv`` folds.

On SNIPS every slot type belongs to one or a few intents (``movie_name`` only to
``SearchScreeningEvent``, ``object_name`` to ``SearchCreativeWork`` and ``RateBook``), and the
head's remaining errors are those two ``Search*`` intents taken for each other. The CRF scores
whole labellings, so ``P(slots fit intent i)`` is the share of the CRF's probability mass on
labellings whose slot types were seen with ``i`` in training: ``exp(log Z_i - log Z)``, with
``Z_i`` the partition function over those labellings only. A joint rule picks
``argmax_i log p_head(i) + lam * (log Z_i - log Z)``, and then decodes the slots within
``i``'s types.

``dump``: per fold, train the default tagger on the fold's training part, calibrate it on its
stop part (as ``slotfill cv``), and keep what the rules need for the held-out fold (emissions,
calibrated intent probabilities, the CRF, the slot types seen with each intent, the texts) in
one ``.npz`` and one ``.json`` per fold. ``score``: every rule on every dumped fold, no
training. ``errors``: what the shipped rule (weight 1) still gets wrong, counted by (gold,
predicted) pair, with the head's probability of the gold intent; ``--show`` prints the texts.
``encoder`` and ``lexical`` keep a second intent model's calibrated probabilities beside each
dump (a fine-tuned encoder; a TF-IDF logistic regression of word and character n-grams), and
``score`` then also scores blends with the head. ``ensemble`` scores taggers of several
seeds, dumped on the same folds, averaged::

    .venv/bin/python -m benchmarks.joint_decode_probe dump --data ../shared/data/snips \\
        --seed 13 --only-folds 1 2 3 --out DUMPS
    .venv/bin/python -m benchmarks.joint_decode_probe score DUMPS --out result.json
    .venv/bin/python -m benchmarks.joint_decode_probe errors DUMPS --out errors.json
    .venv/bin/python -m benchmarks.joint_decode_probe lexical --data ../shared/data/snips DUMPS
    .venv/bin/python -m benchmarks.joint_decode_probe ensemble DUMPS --members 2 3 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import fold_splits, fold_taggers
from models.calibration import log_softmax, scale_logits, softmax
from models.crf import FORBIDDEN, CRFArrays, viterbi_arrays
from models.joint import (
    CANDIDATE_RATIO,
    MAX_CANDIDATES,
    intent_slots_of,
    intent_tag_mask,
    joint_logits,
)
from training.calibration import expected_calibration_error
from training.config import SlotTrainConfig
from training.metrics import slot_metrics
from training.tagging import TaggingSet

LAMBDAS = (0.0, 0.25, 0.5, 1.0, 2.0)
# Weights of the second model's probabilities in a blend with the head's, per companion.
# (0: the head alone, calibrated, with the fit weighed on its probabilities as a blend's is.)
BLENDS = {"encoder": (0.5, 0.75), "lexical": (0.0, 0.1, 0.25, 0.4, 0.5)}
BLEND_FITS = (0.5, 1.0, 1.5, 2.0)  # weights of the slots' fit on a blend
CRF_KEYS = ("start", "transitions", "end")


def tagger_dumps(folder: Path) -> list[Path]:
    """The tagger dumps of ``folder`` (not the second models' beside them), in order."""
    return sorted(
        p for p in folder.glob("seed*_fold*.npz") if not p.stem.endswith(("_encoder", "_lexical"))
    )


def dump(args: argparse.Namespace) -> None:
    # The head read apart: trained and calibrated without the joint reading.
    config = SlotTrainConfig(
        **{
            **args.config,
            "seed": args.seed,
            "threads": args.threads,
            "device": "cpu",
            "epochs": args.epochs,
            "intent_slot_fit": 0,
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    for fold in fold_taggers(args.data, config, args.folds, args.only_folds):
        n, pooled, train, tagger = fold.number, fold.pooled, fold.train, fold.tagger
        test = [pooled.tokens[i] for i in fold.test]
        batch = tagger.encode_arrays(test)
        emissions, logits = tagger.outputs(batch)
        intent_slots = intent_slots_of(train.intents, train.tags)
        allowed = intent_tag_mask(tagger.intents.labels, tagger.tags.labels, intent_slots)
        arrays, scaled = tagger._crf_arrays(), tagger._scaled_arrays()
        stem = args.out / f"seed{args.seed}_fold{n}"
        np.savez_compressed(
            stem.with_suffix(".npz"),
            emissions=emissions,
            lengths=np.array([len(t) for t in test]),
            head=tagger._intent_probs(logits),
            logits=logits,
            allowed=allowed,
            **{f"crf_{k}": getattr(arrays, k) for k in ("start", "transitions", "end")},
            **{f"scaled_{k}": getattr(scaled, k) for k in ("start", "transitions", "end")},
        )
        meta = {
            "seed": args.seed,
            "fold": n,
            "data": args.data.name,
            "span_temperature": tagger.temperatures.spans,
            "intent_temperature": tagger.temperatures.intent,
            "tags": tagger.tags.labels,
            "intents": tagger.intents.labels,
            "intent_slots": intent_slots,
            "gold_intents": [fold.labels[i] for i in fold.test],
            "gold_tags": [pooled.tags[i] for i in fold.test],
            "texts": [" ".join(tokens) for tokens in test],
            "cpu_seconds": round(time.process_time() - started, 1),
        }
        stem.with_suffix(".json").write_text(json.dumps(meta) + "\n")
        print(f"fold {n}: {len(test)} held out, {meta['cpu_seconds']} CPU s", file=sys.stderr)
        started = time.process_time()


def encoder(args: argparse.Namespace) -> None:
    """Per fold, fine-tune ``--encoder`` on the fold's intents (``slotfill cv slots
    --intent-encoder``'s encoder, trained on the same parts) and keep its calibrated
    probabilities on the held-out fold, with its label names."""
    from models.predictor import SentimentPredictor
    from training.intent_encoder import fit_intent_encoder

    config = SlotTrainConfig(
        seed=args.seed, threads=args.threads, device="cpu", intent_encoder=str(args.encoder)
    )
    started = time.process_time()
    for n, pooled, _, train, stop, test in fold_splits(args.data, args.folds, args.only_folds):
        classifier = fit_intent_encoder(train, stop, config)[0].predictor
        assert isinstance(classifier, SentimentPredictor)
        texts = [" ".join(pooled.tokens[i]) for i in test]
        labels = classifier.labels.labels
        probs = np.zeros((len(texts), len(labels)))
        for at in range(0, len(texts), 64):  # the calibrated probabilities a blend reads
            for k, result in enumerate(classifier.classify(texts[at : at + 64])):
                probs[at + k] = [result.scores[name] for name in labels]
        stem = f"seed{args.seed}_fold{n}_encoder"
        np.savez_compressed(args.out / f"{stem}.npz", probs=probs, labels=np.array(labels))
        print(f"fold {n}: encoder, {time.process_time() - started:.1f} CPU s", file=sys.stderr)
        started = time.process_time()


def lexical_probs(
    train: TaggingSet, stop: TaggingSet, test: list[list[str]], c: float
) -> tuple[np.ndarray, list[str], float]:
    """The lexical intent model ``intent_lexical_weight`` serves (``training.lexical``),
    fitted on ``train``, its temperature on ``stop``: its calibrated probabilities on
    ``test``, its labels and the temperature."""
    from training.lexical import fit_lexical_intents

    model = fit_lexical_intents(train, stop, c)
    if model is None:
        raise SystemExit("the lexical model needs at least two intents")
    return model.probs([" ".join(t) for t in test]), model.labels, model.temperature


def lexical(args: argparse.Namespace) -> None:
    """Per dumped fold, :func:`lexical_probs` on the held-out fold, beside every seed's dump
    of that fold (the fit is deterministic, so one serves every seed)."""
    dumped = tagger_dumps(args.dumps)
    for n, pooled, _, train, stop, test in fold_splits(args.data, args.folds, None):
        stems = [p.stem for p in dumped if p.stem.endswith(f"_fold{n}")]
        if not stems:
            continue
        probs, labels, t = lexical_probs(train, stop, [pooled.tokens[i] for i in test], args.c)
        for stem in stems:
            np.savez_compressed(args.dumps / f"{stem}_lexical.npz", probs=probs, labels=labels)
        print(f"fold {n}: lexical model, temperature {t:.2f}", file=sys.stderr)


def rule_scores(
    chosen: np.ndarray, meta: dict[str, Any], d: Any, mask: np.ndarray, arrays: CRFArrays
) -> dict[str, Any]:
    """Intents right, and slot F1 decoded within each utterance's ``chosen`` intent's types."""
    tags, intents = meta["tags"], meta["intents"]
    gold_i, gold_t = meta["gold_intents"], meta["gold_tags"]
    emissions, lens = d["emissions"], d["lengths"]
    inside = np.arange(emissions.shape[1])[None] < lens[:, None]
    names = [intents[i] for i in chosen]
    em = np.where(mask[chosen][:, None, :], emissions, np.float32(FORBIDDEN))
    paths = viterbi_arrays(em.astype(np.float32), inside, arrays)
    scores = slot_metrics(gold_t, [[tags[j] for j in p] for p in paths], gold_i, names)
    return {
        "intent_right": sum(p == g for p, g in zip(names, gold_i, strict=True)),
        "slot_f1_within_intent": scores["slot_f1"],
    }


def score_fold(npz: Path) -> dict[str, Any]:
    """Each rule on one dumped fold: the intents of ``joint_logits`` over the head's logits
    (the calibrated log-probabilities where a dump has no logits) and the unscaled CRF, for
    each weight; slots decoded within the chosen intent's types."""
    meta = json.loads(npz.with_suffix(".json").read_text())
    d = np.load(npz)
    tags, intents = meta["tags"], meta["intents"]
    arrays = CRFArrays.build(d["crf_start"], d["crf_transitions"], d["crf_end"])
    logits = d["logits"] if "logits" in d else np.log(d["head"])
    emissions, lens = d["emissions"], d["lengths"]
    if "intent_slots" in meta:
        mask = intent_tag_mask(intents, tags, meta["intent_slots"])
    else:
        mask = d["allowed"]
    out: dict[str, Any] = {"seed": meta["seed"], "fold": meta["fold"], "test": len(lens)}
    joint: dict[float, np.ndarray] = {}
    for lam in LAMBDAS:
        joint[lam] = (
            joint_logits(logits, emissions, lens.tolist(), mask, lam, arrays) if lam else logits
        )
        out[f"lam{lam}"] = rule_scores(joint[lam].argmax(axis=1), meta, d, mask, arrays)
    for kind, prefix in (("encoder", "enc"), ("lexical", "lex")):
        path = npz.with_name(f"{npz.stem}_{kind}.npz")
        if not path.exists():
            continue
        saved = np.load(path)
        column = {str(name): j for j, name in enumerate(saved["labels"])}
        other = np.zeros_like(d["head"])  # in the tagger's intent order; one it lacks: 0
        for j, name in enumerate(intents):
            if name in column:
                other[:, j] = saved["probs"][:, column[name]]
        head = d["head"]  # calibrated, read apart
        gold = np.array([intents.index(g) for g in meta["gold_intents"]])
        joint_head = softmax(scale_logits(joint[1.0], meta["intent_temperature"]))
        out[f"{prefix}_alone"] = {"intent_right": int((other.argmax(axis=1) == gold).sum())}
        for w in BLENDS[kind]:
            apart = w * other + (1 - w) * head
            served = w * other + (1 - w) * joint_head  # the fit in the head, then the blend
            rows = [("apart", apart), ("head_fit", served)]
            for lam in BLEND_FITS:  # the fit on the blend's calibrated log-probabilities
                fitted = joint_logits(
                    np.log(np.maximum(apart, 1e-300)), emissions, lens.tolist(), mask, lam, arrays
                )
                rows.append(("blend_fit" if lam == 1.0 else f"blend_fit{lam}", softmax(fitted)))
            for name, probs in rows:
                chosen = probs.argmax(axis=1)
                row = rule_scores(chosen, meta, d, mask, arrays)
                row["intent_ece"] = expected_calibration_error(probs.max(axis=1), chosen == gold)
                out[f"{prefix}{w}_{name}"] = row
    inside = np.arange(emissions.shape[1])[None] < lens[:, None]
    plain_paths = viterbi_arrays(emissions, inside, arrays)
    plain = slot_metrics(meta["gold_tags"], [[tags[j] for j in p] for p in plain_paths], None, [])
    out["slot_f1_plain"] = plain["slot_f1"]
    return out


def score(args: argparse.Namespace) -> None:
    dumps = tagger_dumps(args.dumps)
    rows = [score_fold(p) for p in dumps]
    summary: dict[str, Any] = {}
    rules = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        for rule in rules:
            if not all(rule in r for r in mine):
                continue
            accs = [r[rule]["intent_right"] / r["test"] for r in mine]
            f1s = [round(r[rule].get("slot_f1_within_intent", math.nan), 4) for r in mine]
            entry = {
                "folds": [r["fold"] for r in mine],
                "accuracy_per_fold": [round(a, 4) for a in accs],
                "fold_median": round(float(np.median(accs)), 4),
                "right": sum(r[rule]["intent_right"] for r in mine),
                "n": sum(r["test"] for r in mine),
                "slot_f1_per_fold": f1s,
            }
            if all("intent_ece" in r[rule] for r in mine):
                entry["intent_ece_per_fold"] = [round(r[rule]["intent_ece"], 4) for r in mine]
            summary[f"seed{seed}/{rule}"] = entry
            print(
                f"seed {seed} {rule:<28} acc {entry['accuracy_per_fold']} median "
                f"{entry['fold_median']} right {entry['right']}/{entry['n']} slot F1 {f1s}"
            )
        plain = [round(r["slot_f1_plain"], 4) for r in mine]
        summary[f"seed{seed}/slot_f1_plain_per_fold"] = plain
        print(f"seed {seed} slot F1 decoded apart {plain}")
    if args.out:
        args.out.write_text(json.dumps({"runs": rows, "summary": summary}, indent=1) + "\n")


def errors(args: argparse.Namespace) -> None:
    """The joint rule's remaining errors per (gold, predicted) pair, over every dump; the
    texts are printed with ``--show`` and never written (they are the data set's)."""
    pairs: Counter[tuple[str, str]] = Counter()
    head_gold: list[float] = []
    weighed = 0  # errors whose gold intent was among the intents the rule weighs
    folds = []
    for npz in tagger_dumps(args.dumps):
        meta = json.loads(npz.with_suffix(".json").read_text())
        d = np.load(npz)
        intents, tags = meta["intents"], meta["tags"]
        arrays = CRFArrays.build(d["crf_start"], d["crf_transitions"], d["crf_end"])
        mask = intent_tag_mask(intents, tags, meta["intent_slots"])
        lens = d["lengths"]
        logits = d["logits"]
        chosen = joint_logits(logits, d["emissions"], lens.tolist(), mask, 1.0, arrays)
        chosen = chosen.argmax(axis=1)
        gold = np.array([intents.index(g) for g in meta["gold_intents"]])
        gold_logit = logits[np.arange(len(gold)), gold]
        rank = (logits > gold_logit[:, None]).sum(axis=1)
        near = gold_logit >= logits.max(axis=1) + math.log(CANDIDATE_RATIO)
        in_window = near & (rank < MAX_CANDIDATES)
        wrong = np.flatnonzero(chosen != gold)
        folds.append({"seed": meta["seed"], "fold": meta["fold"], "wrong": len(wrong)})
        for i in wrong:
            pair = (intents[gold[i]], intents[chosen[i]])
            pairs[pair] += 1
            head_gold.append(float(d["head"][i, gold[i]]))
            weighed += bool(in_window[i])
            if args.show:
                text = meta.get("texts", ["?"] * len(gold))[i]
                print(f"{pair[0]:>22} -> {pair[1]:<22} p_head(gold) {head_gold[-1]:.3f}  {text}")
    total = sum(pairs.values())
    rows: list[dict[str, Any]] = []
    for (gold_name, predicted), n in pairs.most_common():
        rows.append({"gold": gold_name, "predicted": predicted, "count": n})
        print(f"{n:4d} {n / total:6.1%}  {gold_name} -> {predicted}")
    share = float(np.median(head_gold)) if head_gold else float("nan")
    print(
        f"{total} errors over {len(folds)} folds; median head p(gold) {share:.3f}; "
        f"gold intent weighed by the rule in {weighed}"
    )
    if args.out:
        result = {
            "folds": folds,
            "pairs": rows,
            "median_head_p_gold": round(share, 4),
            "gold_weighed": weighed,
        }
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def ensemble(args: argparse.Namespace) -> None:
    """Taggers of several seeds averaged on the same folds, read the shipped way (the fit at
    weight 1): a product of experts, as ``benchmarks/ensemble.py`` builds one: the mean of
    the members' intent log-probabilities, emissions and CRF arrays. Every subset of
    ``--members`` seeds among the dumps is scored, each member alone too."""
    # Each dump read once: an .npz member is decompressed again at every access.
    by_fold: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    metas: dict[int, dict[str, Any]] = {}
    for npz in tagger_dumps(args.dumps):
        meta = json.loads(npz.with_suffix(".json").read_text())
        with np.load(npz) as saved:
            by_fold.setdefault(meta["fold"], {})[meta["seed"]] = dict(saved)
        metas[meta["fold"]] = meta  # the same texts, gold, tags and intents for every seed
    seeds = sorted(set.union(*(set(f) for f in by_fold.values())))
    folds = [f for f in sorted(by_fold) if len(by_fold[f]) == len(seeds)]  # every seed's
    results: dict[str, Any] = {}
    for size in [1, *args.members]:
        for members in itertools.combinations(seeds, size):
            right, n, per_fold, f1s = 0, 0, [], []
            for fold in folds:
                loaded = [by_fold[fold][s] for s in members]
                meta = metas[fold]
                d = {
                    "emissions": np.mean([m["emissions"] for m in loaded], axis=0),
                    "lengths": loaded[0]["lengths"],
                }
                arrays = CRFArrays.build(
                    *(np.mean([m[f"crf_{k}"] for m in loaded], axis=0) for k in CRF_KEYS)
                )
                logits = np.mean([log_softmax(m["logits"]) for m in loaded], axis=0)
                mask = intent_tag_mask(meta["intents"], meta["tags"], meta["intent_slots"])
                lens = d["lengths"].tolist()
                chosen = joint_logits(logits, d["emissions"], lens, mask, 1.0, arrays)
                row = rule_scores(chosen.argmax(axis=1), meta, d, mask, arrays)
                right += row["intent_right"]
                n += len(lens)
                per_fold.append(round(row["intent_right"] / len(lens), 4))
                f1s.append(round(row["slot_f1_within_intent"], 4))
            key = "+".join(str(s) for s in members)
            results[key] = {
                "members": list(members),
                "right": right,
                "n": n,
                "accuracy_per_fold": per_fold,
                "fold_median": round(float(np.median(per_fold)), 4),
                "slot_f1_per_fold": f1s,
            }
            print(
                f"seeds {key:<16} right {right}/{n} ({right / n:.5f}) folds {per_fold} "
                f"median {results[key]['fold_median']} slot F1 {f1s}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="train per fold and keep the held-out fold's outputs")
    d.add_argument("--data", type=Path, required=True, help="BIO folder: train/, valid/")
    d.add_argument("--seed", type=int, default=13)
    d.add_argument("--folds", type=int, default=5)
    d.add_argument("--only-folds", type=int, nargs="+", default=None)
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--epochs", type=int, default=40, help="most epochs (the default's 40)")
    d.add_argument("--out", type=Path, required=True, help="folder for the dumps")
    d.add_argument(
        "--config", type=json.loads, default={}, help="training keys as JSON: '{\"k\": v}'"
    )
    s = sub.add_parser("score", help="score the rules on dumped folds")
    s.add_argument("dumps", type=Path)
    s.add_argument("--out", type=Path, default=None, help="JSON result")
    e = sub.add_parser("errors", help="the joint rule's remaining errors by intent pair")
    e.add_argument("dumps", type=Path)
    e.add_argument("--show", action="store_true", help="print each error's text")
    e.add_argument("--out", type=Path, default=None, help="JSON result (counts, no texts)")
    c = sub.add_parser("encoder", help="fine-tune an encoder per dumped fold, keep its intents")
    c.add_argument("--data", type=Path, required=True, help="BIO folder: train/, valid/")
    c.add_argument("--encoder", type=Path, required=True, help="pretrained encoder folder")
    c.add_argument("--seed", type=int, default=13)
    c.add_argument("--folds", type=int, default=5)
    c.add_argument("--only-folds", type=int, nargs="+", default=None)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--out", type=Path, required=True, help="the folder of the tagger dumps")
    x = sub.add_parser("lexical", help="fit a word and character n-gram model per dumped fold")
    x.add_argument("dumps", type=Path, help="the folder of the tagger dumps")
    x.add_argument("--data", type=Path, required=True, help="BIO folder: train/, valid/")
    x.add_argument("--folds", type=int, default=5)
    x.add_argument("--c", type=float, default=10.0, help="inverse L2 strength (C=10: 5-fold CV)")
    m = sub.add_parser("ensemble", help="score taggers of several seeds averaged, per fold")
    m.add_argument("dumps", type=Path, help="dumps of two or more seeds on the same folds")
    m.add_argument("--members", type=int, nargs="+", default=[2, 3], help="ensemble sizes")
    m.add_argument("--out", type=Path, default=None, help="JSON result")
    args = parser.parse_args()
    commands = {"dump": dump, "score": score, "errors": errors, "encoder": encoder}
    commands["lexical"] = lexical
    commands["ensemble"] = ensemble
    commands[args.command](args)


if __name__ == "__main__":
    main()
