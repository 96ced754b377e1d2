"""Reading the intent and the slots together (issue 19).

A single-label intent head and the CRF each read the utterance on their own, so a parse could
pair ``SearchCreativeWork`` with a ``movie_name`` slot that only ``SearchScreeningEvent``
utterances carry. Each intent ``i`` has the slot types seen with it in training; the share of
the CRF's probability mass on labellings that use only those types is
``F_i = Z_i / Z`` (``Z_i``: the partition function over those labellings). The joint reading
weighs each intent by it, ``p'(i) ~ p(i) * F_i ** w`` (``w * log F_i`` added to the head's
logit, before calibration), and decodes the slots within the chosen intent's types. On SNIPS,
where the head's errors are the two ``Search*`` intents taken for each other, this put 88 more
of 41,352 held-out utterances right over three seeds of 5-fold CV and raised slot F1 on every
fold (``benchmarks/joint_decode_probe.py``; docs/results/intents.md). Which types an intent
may take is :func:`intent_slots_of`'s: only well-attested exclusions count, so an ATIS tagger,
whose types are shared across intents, lists none and reads as before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from models.crf import FORBIDDEN, CRFArrays

# log_fits: emissions further than this below their token's best count as this far (the
# labellings of the best tags keep their mass, so a fit changes only where it is below
# about exp(-_SPREAD) either way), and the rows are rescaled every so many steps.
_SPREAD = 200.0
_RESCALE_EVERY = 4
_TINY = 1e-300
# Intents weighed: those within this factor of the most probable one, at most MAX_CANDIDATES;
# the others keep F = 1 (an upper bound), so they cannot gain from not being weighed.
CANDIDATE_RATIO = 1e-3
MAX_CANDIDATES = 5


def slot_type(tag: str) -> str:
    """``B-city`` -> ``city``; ``O`` (or any tag without a BIO prefix) -> itself."""
    return tag[2:] if tag[:2] in ("B-", "I-") else tag


def intent_tag_mask(
    intents: Sequence[str], tags: Sequence[str], intent_slots: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """``(num_intents, num_tags)`` bool: tag ``k`` may go with intent ``i`` (``O`` always; a
    slot tag when its type is in ``intent_slots[i]``; every tag for an intent not listed)."""
    types = [slot_type(t) for t in tags]
    mask = np.ones((len(intents), len(tags)), dtype=bool)
    for i, name in enumerate(intents):
        if name in intent_slots:
            seen = set(intent_slots[name])
            mask[i] = [t == "O" or t in seen for t in types]
    return mask


def intent_slots_of(
    intents: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    min_examples: int = 1,
    min_elsewhere: int = 1,
) -> dict[str, list[str]]:
    """The slot types each intent may take, from training examples (``intents[n]``: example
    ``n``'s one intent, or none; multi-intent examples are not counted): those seen with it,
    and those seen in fewer than ``min_elsewhere`` examples of other intents (too rare to
    say they belong elsewhere). Only intents with at least ``min_examples`` examples (a
    rarer one's types are too few to say which it never takes) and some type left out."""
    seen: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    with_type: Counter[tuple[str, str]] = Counter()  # (intent, slot type) -> examples
    for row_intents, row_tags in zip(intents, tags, strict=True):
        if len(row_intents) == 1:
            name = row_intents[0]
            counts[name] += 1
            types = {slot_type(t) for t in row_tags if t != "O"}
            seen.setdefault(name, set()).update(types)
            with_type.update((name, t) for t in types)
    total: Counter[str] = Counter()
    for (_, kind), n in with_type.items():
        total[kind] += n
    out = {}
    for name in sorted(seen):
        if counts[name] < min_examples:
            continue
        allowed = {t for t in total if t in seen[name] or total[t] < min_elsewhere}
        if allowed != set(total):
            out[name] = sorted(allowed)
    return out


def log_fits(
    emissions: np.ndarray,
    rows: Sequence[int] | np.ndarray,
    lengths: Sequence[int],
    masks: np.ndarray,
    arrays: CRFArrays,
) -> np.ndarray:
    """``log F`` for each ``(rows[j], masks[j])``: the log share of the CRF ``arrays``' mass
    over row ``rows[j]`` of ``emissions`` ``(batch, seq_len, num_tags)`` on labellings whose
    tags are all in ``masks[j]`` ``(num_tags,)``; ``-inf`` where none has mass.

    One forward pass in probability space over all pairs together, each with an unmasked
    twin that is rescaled alike, so the scale cancels in the difference. Rows run longest
    first (the rows still running at a step are a prefix), two NumPy calls a step, and are
    rescaled every :data:`_RESCALE_EVERY` steps (an unmasked row keeps its best tags' mass
    between them; a masked row that underflows has a fit below ``exp(-_SPREAD)``, read as
    no mass)."""
    r = np.asarray(rows, dtype=np.int64)
    half = len(r)
    n = np.asarray(lengths, dtype=np.int64)[r]
    both = np.concatenate([masks, np.ones_like(masks)])
    r2, n2 = np.concatenate([r, r]), np.concatenate([n, n])
    order = np.argsort(-n2, kind="stable")
    r2, n2, both = r2[order], n2[order], both[order]
    seq_len = int(n2[0])
    em = emissions[r2, :seq_len].astype(np.float64)
    em -= em.max(axis=2, keepdims=True)
    np.maximum(em, -_SPREAD, out=em)
    probs = np.exp(em, out=em)
    probs *= both[:, None, :]
    alpha = np.exp(arrays.start - arrays.start.max()) * probs[:, 0]
    step = np.empty_like(alpha)
    log_scale = np.zeros(len(r2))
    if n2[-1] == seq_len:  # one length (a batch of one): every row runs every step
        running = [len(r2)] * seq_len
    else:
        running = (n2[None, :] > np.arange(seq_len)[:, None]).sum(axis=1).tolist()
    exp_t = arrays.exp_transitions
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(1, seq_len):
            k = running[t]
            np.matmul(alpha[:k], exp_t, out=step[:k])
            np.multiply(step[:k], probs[:k, t], out=alpha[:k])
            if t % _RESCALE_EVERY == 0:
                total = np.maximum(alpha[:k].sum(axis=1), _TINY)
                alpha[:k] /= total[:, None]
                log_scale[:k] += np.log(total)
        log_s = log_scale + np.log(alpha @ np.exp(arrays.end - arrays.end.max()))
    unsorted = np.empty_like(log_s)
    unsorted[order] = log_s
    out: np.ndarray = np.minimum(unsorted[:half] - unsorted[half:], 0.0)
    return out


def joint_logits(
    logits: np.ndarray,
    emissions: np.ndarray,
    lengths: Sequence[int],
    mask: np.ndarray,
    weight: float,
    arrays: CRFArrays,
) -> np.ndarray:
    """Single-label intent ``logits`` ``(batch, num_intents)`` plus ``weight * log F_i``: the
    fit of each row's slot labellings (the CRF ``arrays`` over ``emissions``, unscaled, so
    that temperatures move confidences, not answers) to each intent's types ``mask``.
    Weighed per row: the intents within :data:`CANDIDATE_RATIO` of its most probable (at
    most :data:`MAX_CANDIDATES`) whose types leave out some tag; the others keep their logit
    (``F = 1``, an upper bound). A term is never below :data:`FORBIDDEN`."""
    order = np.argsort(-logits, axis=1, kind="stable")[:, :MAX_CANDIDATES]
    top = np.take_along_axis(logits, order, axis=1)
    partial = np.asarray(~mask.all(axis=1))
    weighed = (top >= top[:, :1] + math.log(CANDIDATE_RATIO)) & partial[order]
    rows, column = np.nonzero(weighed)
    if not len(rows):
        return logits
    intents = order[rows, column]
    fits = log_fits(emissions, rows, lengths, mask[intents], arrays)
    out = logits.astype(np.float64)
    out[rows, intents] += np.maximum(weight * fits, FORBIDDEN)
    return out
