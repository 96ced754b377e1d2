"""Fit and evaluate: one readable loop per task, early stopping on the valid split."""

from __future__ import annotations

import contextlib
import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from threadpoolctl import threadpool_limits
from torch import Tensor, nn
from tqdm import tqdm

from models.joint import intent_slots_of
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.sentiment import LSTMSentimentClassifier, SentimentConfig
from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig
from models.text import char_normalize, normalize
from models.vocab import LabelSet, Vocab
from training import distributed, tagger_distill
from training.class_losses import intent_loss, sentiment_loss
from training.config import SentimentTrainConfig, SlotTrainConfig, TrainConfig
from training.data import DataError, SlotDataset, TextDataset
from training.distill import (
    Teacher,
    TransferTexts,
    augment,
    distilled_loss,
    ensemble_probabilities,
    read_transfer_texts,
    teacher_record,
)
from training.ema import WeightAverage
from training.evaluate import evaluate_sentiment_tokens, sentiment_inputs
from training.tagging import TaggingSet, as_tagging
from training.tagging_eval import evaluate_tagging, tune_intent_threshold
from training.teacher_cache import resolve_folder
from training.value_swap import ValueSwapper
from training.vectors import extend_vocab, load_vectors

# Called after every epoch with {"epoch", "loss", "valid": {...}, "best_epoch", "seconds"}.
EpochCallback = Callable[[dict[str, Any]], None]


def epoch_text(record: dict[str, Any]) -> str:
    """An epoch record as the one line the CLI and cross-validation print: "[teacher ]epoch E
    loss=L  score=S ...  best=B  Ts" (a distilled run's teacher epochs are marked)."""
    model = "teacher " if record.get("model") == "teacher" else ""
    scores = "  ".join(f"{k}={v:.4f}" for k, v in record["valid"].items() if isinstance(v, float))
    return (
        f"{model}epoch {record['epoch']:3d}  loss={record['loss']:.4f}  {scores}  "
        f"best={record['best_epoch']}  {record['seconds']:.0f}s"
    )


@dataclass(frozen=True)
class EpochsRun:
    """What the epoch loop ends with; the model then holds the best epoch's weights."""

    metrics: dict[str, Any]  # valid scores of the best epoch
    history: list[dict[str, Any]]  # one record per epoch, as passed to the EpochCallback
    best_epoch: int
    seconds_to_best: float


@dataclass(frozen=True)
class FitResult:
    """A trained predictor with its best valid metrics and per-epoch history."""

    predictor: SlotTaggerPredictor | SentimentPredictor
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    seconds_to_best: float
    # Where pretrained weights came from (training.pretrained_encoder: path, SHA-256).
    pretrained: dict[str, str] | None = None
    # The teacher of a distilled model (training.distill.teacher_record).
    teacher: dict[str, Any] | None = None

    @classmethod
    def of(cls, predictor: SlotTaggerPredictor | SentimentPredictor, run: EpochsRun) -> FitResult:
        """The predictor whose model the epoch loop trained, with what the loop recorded."""
        return cls(predictor, run.metrics, run.history, run.best_epoch, run.seconds_to_best)


def limit_threads(threads: int | None) -> None:
    """Hold the run to ``threads`` CPU threads: torch's and NumPy's BLAS (a teacher or any
    NumPy-engine model reads texts through it, with a thread per core otherwise)."""
    if threads:
        torch.set_num_threads(threads)
        threadpool_limits(threads)


def architecture(config: TrainConfig) -> dict[str, Any]:
    """The network-shape fields both model configs share, taken from the training config."""
    names = ("word_dim", "char_dim", "char_filters", "shape_dim", "hidden_size", "num_layers")
    return {name: getattr(config, name) for name in (*names, "cell", "dropout")}


def seed_everything(seed: int) -> None:
    """Fix Python and torch RNGs."""
    random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but CUDA is not available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Vocabularies:
    """Word and character tables of a new model, and how its word embedder is built."""

    words: Vocab
    chars: Vocab
    vectors: Tensor | None  # (len(words), dim) frozen pretrained vectors, or None
    trained_words: int  # words[:trained_words] come from the training data

    def embedder_fields(self) -> dict[str, Any]:
        """The encoder-config fields that depend on the vocabularies."""
        return {
            "vocab_size": len(self.words),
            "char_vocab_size": len(self.chars),
            "pretrained_dim": 0 if self.vectors is None else int(self.vectors.shape[1]),
            "trained_words": self.trained_words,
        }

    def install(
        self, model: BiLSTMCRFTagger | LSTMSentimentClassifier, word_dropout: float
    ) -> None:
        """Copy the pretrained vectors into ``model``'s embedder; set its word dropout."""
        model.embedder.word_dropout = word_dropout
        if self.vectors is not None:
            with torch.no_grad():
                model.embedder.vectors.copy_(self.vectors)


def build_vocabs(sentences: Sequence[Sequence[str]], config: TrainConfig) -> Vocabularies:
    """Word vocabulary (normalised keys) and character vocabulary from training tokens,
    the words extended by the pretrained vectors' most frequent ones if the config asks."""
    words = Vocab.build(
        (normalize(t) for s in sentences for t in s), min_count=config.min_word_count
    )
    chars = Vocab.build(c for s in sentences for t in s for c in char_normalize(t))
    trained = len(words)
    if config.pretrained_vectors == "none":
        return Vocabularies(words, chars, None, trained)
    table = load_vectors(config.pretrained_vectors)
    words, vectors = extend_vocab(words, table, config.pretrained_words)
    return Vocabularies(words, chars, vectors, trained)


def length_buckets(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: sort within pools of 50 batches, then shuffle.

    Padding to the longest utterance of a random batch (ATIS: 46 tokens, mean 11) more
    than doubles the work of the recurrent encoder and the CRF.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = 50 * batch_size
    chunks: list[list[int]] = []
    for i in range(0, len(order), pool):
        part = sorted(order[i : i + pool], key=lengths.__getitem__)
        chunks.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(chunks)
    return chunks


def linear_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, batches: int, world: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm up linearly over ``warmup_fraction`` of all steps, then decay linearly to 0 at the
    last step of ``config.epochs`` (``batches`` per epoch, shared by ``world`` ranks)."""
    total = max(1, config.epochs * -(-batches // world))
    warmup = config.warmup_fraction * total

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1.0, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _epoch_loop(
    model: nn.Module,
    lengths: Sequence[int],
    config: TrainConfig,
    step_loss: Callable[[list[int]], Tensor],
    evaluate: Callable[[], dict[str, Any]],
    metric: str,
    on_epoch: EpochCallback | None,
    show_progress: bool,
) -> EpochsRun:
    """Shared epoch loop: AdamW, clipping, early stopping; restores the best weights."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.lr_decay, patience=config.lr_patience - 1
        )
        if config.lr_decay < 1.0
        else None
    )
    rng = random.Random(config.seed)  # the same on every rank: same epoch order, then sharded
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    step_schedule = (
        linear_schedule(optimizer, config, -(-len(lengths) // config.batch_size), world)
        if config.lr_schedule == "linear"
        else None
    )
    show_progress = show_progress and rank == 0
    best: dict[str, Any] = {}
    best_score, best_epoch, best_state, stale = -1.0, 0, copy.deepcopy(model.state_dict()), 0
    history: list[dict[str, Any]] = []
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    started = time.monotonic()
    seconds_to_best = 0.0
    device = next(model.parameters()).device
    for epoch in range(1, config.epochs + 1):
        model.train()
        chunks = distributed.shard(length_buckets(lengths, config.batch_size, rng), rank, world)
        total, bar = (
            0.0,
            tqdm(
                chunks,
                desc=f"epoch {epoch}/{config.epochs}",
                unit="batch",
                leave=False,
                disable=not show_progress,
                mininterval=0.5,
            ),
        )
        for i, chunk in enumerate(bar, start=1):
            optimizer.zero_grad()
            loss = step_loss(chunk)
            torch.autograd.backward(loss)  # typed equivalent of loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            if step_schedule is not None:
                step_schedule.step()
            if average is not None:
                average.update()
            total += float(loss.detach())
            bar.set_postfix(loss=f"{total / i:.4f}")
        bar.close()
        model.eval()
        with average.applied() if average is not None else contextlib.nullcontext():
            valid = evaluate()
            elapsed = time.monotonic() - started
            score = float(valid[metric])
            if score > best_score:
                best_score, best_epoch, best, stale = score, epoch, valid, 0
                best_state = copy.deepcopy(model.state_dict())  # the averaged weights, if any
                seconds_to_best = elapsed
            else:
                stale += 1
        if scheduler is not None:
            scheduler.step(score)
        record = {
            "epoch": epoch,
            "loss": total / max(len(chunks), 1),
            "valid": valid,
            "best_epoch": best_epoch,
            "seconds": round(elapsed, 2),
        }
        history.append(record)
        if on_epoch is not None and rank == 0:
            on_epoch(record)
        stop = stale >= config.patience or (
            config.max_minutes is not None and elapsed > config.max_minutes * 60
        )
        if distributed.rank0_decides(stop, device):  # all ranks stop at the same epoch
            break
    model.load_state_dict(best_state)
    model.eval()
    return EpochsRun(best, history, best_epoch, seconds_to_best)


def fit_tagger(
    train: SlotDataset | TaggingSet,
    valid: SlotDataset | TaggingSet,
    config: SlotTrainConfig,
    on_epoch: EpochCallback | None = None,
    show_progress: bool = True,
    synonyms: dict[str, str] | None = None,
) -> FitResult:
    """Train a joint slot tagger + intent classifier (single- or multi-label, or none for
    data without intents), reading the requested slots when the config or data says so.

    ``synonyms`` (lower-cased slot text -> canonical value) go with the predictor into the
    artifact.
    """
    train, valid = as_tagging(train), as_tagging(valid)
    seed_everything(config.seed)
    limit_threads(config.threads)
    device = distributed.rank_device(resolve_device(config.device))
    vocabs = build_vocabs(train.tokens, config)
    words, chars = vocabs.words, vocabs.chars
    tags = LabelSet(["O", *sorted(set(chain.from_iterable(train.tags)) - {"O"})])
    multi = config.intent_mode == "multi_label" or (
        config.intent_mode == "auto" and train.multi_intent
    )
    intent_rows = train.intents if multi else [(i,) for i in train.single_intents() or []]
    intents = LabelSet(sorted({i for row in intent_rows for i in row}))
    teachers = None
    if config.intent_teacher_seeds and len(intents):
        if multi:
            raise DataError("intent_teacher_seeds distils single-label intents")

        def fit_teacher(
            tr: TaggingSet, va: TaggingSet, teacher: SlotTrainConfig
        ) -> SlotTaggerPredictor:
            fitted = fit_tagger(tr, va, teacher, _teacher_epochs(on_epoch), show_progress=False)
            assert isinstance(fitted.predictor, SlotTaggerPredictor)
            return fitted.predictor

        teachers = tagger_distill.soft_targets(train, valid, config, intents.labels, fit_teacher)
        seed_everything(config.seed)  # the student draws as it would without teachers
    use_context = (
        config.use_requested_slots if config.use_requested_slots is not None else train.has_context
    )
    requested = LabelSet(
        sorted(
            {t[2:] for row in train.tags for t in row if t != "O"}
            | {s for row in train.requested for s in row}
        )
        if use_context
        else []
    )
    model_config = TaggerConfig(
        **vocabs.embedder_fields(),
        num_tags=len(tags),
        num_intents=len(intents),
        multi_label=multi,
        num_requested=len(requested),
        intent_wide_buckets=config.intent_wide_buckets,
        intent_label_attention=(
            config.intent_label_attention
            if config.intent_label_attention is not None
            else not multi
        ),
        intent_token_votes=(
            config.intent_token_votes if config.intent_token_votes is not None else not multi
        ),
        intent_slot_fit=0.0 if multi else config.intent_slot_fit,
        **architecture(config),
    )
    distributed.init_from_env(device)
    model = BiLSTMCRFTagger(model_config, tags.labels)
    vocabs.install(model, config.word_dropout)
    model.to(device)
    net = distributed.wrap(model)
    predictor = SlotTaggerPredictor(model, words, chars, tags, intents, requested, synonyms)
    tag_ids = [[tags.index_of[t] for t in row] for row in train.tags]
    if multi:
        targets = torch.zeros(len(train), len(intents))
        for n, row in enumerate(train.intents):
            targets[n, [intents.index_of[i] for i in row]] = 1.0
    else:
        targets = torch.tensor(
            [intents.index_of[row[0]] for row in intent_rows] or [0] * len(train)
        )

    custom_intent_loss = intent_loss(config, intents, intent_rows, multi)
    # The gold intent's share of the intent loss; the teachers' term has the rest.
    gold_share = 1.0 - config.distill_weight if teachers is not None else 1.0
    swap = (
        ValueSwapper(train.tokens, train.tags, config.slot_value_swap, config.seed)
        if config.slot_value_swap
        else None
    )

    def step_loss(chunk: list[int]) -> Tensor:
        words, ids = [train.tokens[i] for i in chunk], [tag_ids[i] for i in chunk]
        if swap is not None:
            swapped = [swap(train.tokens[i], train.tags[i]) for i in chunk]
            words = [w for w, _ in swapped]
            ids = [[tags.index_of[t] for t in row] for _, row in swapped]
        batch = predictor.encode(words, [train.requested[i] for i in chunk])
        seq_len = batch.mask.shape[1]
        gold = torch.tensor([row + [0] * (seq_len - len(row)) for row in ids])
        batch, gold = batch.to(device), gold.to(device)
        target = targets[chunk].to(device)
        emissions, intent_logits = net(batch)
        taught: Tensor | float = 0.0
        if teachers is not None:
            taught = (
                config.intent_weight
                * config.distill_weight
                * tagger_distill.distill_loss(
                    intent_logits, teachers[chunk].to(device), config.distill_temperature
                )
            )
        weight = config.intent_weight * gold_share
        if custom_intent_loss is None:
            return taught + model.joint_loss(
                emissions, intent_logits, batch.mask, gold, target, weight
            )
        tag_loss = model.joint_loss(emissions, intent_logits, batch.mask, gold, target, 0.0)
        votes = (
            model.token_vote_loss(batch.mask, target) if model.config.intent_token_votes else 0.0
        )
        return taught + tag_loss + weight * (custom_intent_loss(intent_logits, target) + votes)

    # Early stopping reads what stop_on names; auto: slot F1, as ever, for single-label data
    # with slots; intents alone for data without slots; a multi-label model the mean of slot
    # F1 and intent micro-F1 ("joint_f1"), since its intents are the harder half (NLU++).
    has_slots = any(t != "O" for row in valid.tags for t in row)
    has_intents = bool(len(intents)) and valid.has_intents
    intent_key = "intent_f1" if multi else "intent_accuracy"
    stop_on = config.stop_on
    if stop_on == "auto":
        stop_on = "slots"
        if has_intents and not has_slots:
            stop_on = "intents"
        elif multi and len(intents):
            stop_on = "both"
    else:  # asked for: the valid split must hold what it reads
        if stop_on != "slots" and not has_intents:
            raise DataError(f"stop_on {stop_on!r}: the valid split has no intents to read")
        if stop_on != "intents" and not has_slots:
            raise DataError(f"stop_on {stop_on!r}: the valid split has no slots to read")
    metric = {"slots": "slot_f1", "intents": intent_key, "both": "joint_f1"}[stop_on]

    def evaluate() -> dict[str, Any]:  # on the training device: the predictor moves inputs
        if multi:
            tune_intent_threshold(predictor, valid)
        scores = evaluate_tagging(predictor, valid)[0]
        if metric == "joint_f1":  # the mean of slot F1 and the intent score
            scores["joint_f1"] = (scores["slot_f1"] + scores[intent_key]) / 2
        return scores

    run = _epoch_loop(
        model,
        [len(t) for t in train.tokens],
        config,
        step_loss,
        evaluate,
        metric,
        on_epoch,
        show_progress,
    )
    model.cpu().eval()
    if multi:  # the best epoch's weights are back: their threshold
        tune_intent_threshold(predictor, valid)
    # The joint reading of intents and slots is an inference rule: early stopping chose the
    # epoch reading them apart (training as before it), the valid scores are what it serves.
    slots = (
        {}
        if multi
        else intent_slots_of(
            train.intents,
            train.tags,
            config.intent_slot_min_examples,
            config.intent_slot_min_elsewhere,
        )
    )
    if slots and predictor.config.intent_slot_fit > 0:
        predictor.intent_slots = slots
        run = replace(run, metrics=evaluate())
    return FitResult.of(predictor, run)


def _teacher_epochs(on_epoch: EpochCallback | None) -> EpochCallback | None:
    """``on_epoch`` with each record marked ``"model": "teacher"``."""
    if on_epoch is None:
        return None
    report = on_epoch
    return lambda record: report({**record, "model": "teacher"})


def fit_sentiment(
    train: TextDataset,
    valid: TextDataset,
    config: SentimentTrainConfig,
    on_epoch: EpochCallback | None = None,
    show_progress: bool = True,
) -> FitResult:
    """Train an utterance-level sentiment classifier: the LSTM, or a pretrained encoder
    fine-tuned when the config names one."""
    seed_everything(config.seed)
    limit_threads(config.threads)
    device = distributed.rank_device(resolve_device(config.device))
    # Texts only a distillation teacher labels: read once, they bring words of their own.
    transfer = read_transfer_texts(config.distill_texts) if config.distill_texts else None
    if config.pretrained_encoder:
        return _fit_transformer(train, valid, config, device, on_epoch, show_progress, transfer)
    scheme = config.text_scheme
    extra = transfer.texts if transfer else []
    vocabs = build_vocabs(sentiment_inputs([*train.texts, *extra], scheme), config)
    words, chars = vocabs.words, vocabs.chars
    labels = LabelSet(sorted(set(train.labels)))
    model_config = SentimentConfig(
        **vocabs.embedder_fields(),
        num_labels=len(labels),
        text_scheme=scheme,
        wide_buckets=config.wide_buckets,
        **architecture(config),
    )
    distributed.init_from_env(device)
    model = LSTMSentimentClassifier(model_config)
    vocabs.install(model, config.word_dropout)
    predictor = SentimentPredictor(model, words, chars, labels)
    return _fit_classifier(
        predictor, train, valid, config, device, on_epoch, show_progress, transfer
    )


def _fit_transformer(
    train: TextDataset,
    valid: TextDataset,
    config: SentimentTrainConfig,
    device: torch.device,
    on_epoch: EpochCallback | None,
    show_progress: bool,
    transfer: TransferTexts | None = None,
) -> FitResult:
    """Fine-tune ``config.pretrained_encoder`` (training.pretrained_encoder) with a new linear
    head on the labels; the same epoch loop, loss and early stopping as the LSTM."""
    from training.pretrained_encoder import read_encoder

    encoder = read_encoder(Path(str(config.pretrained_encoder)))
    labels = LabelSet(sorted(set(train.labels)))
    model = encoder.build(len(labels), config.dropout, config.max_wordpieces)
    distributed.init_from_env(device)
    predictor = SentimentPredictor(model, encoder.words, Vocab([]), labels)
    fitted = _fit_classifier(
        predictor, train, valid, config, device, on_epoch, show_progress, transfer
    )
    return replace(fitted, pretrained=encoder.source)


def _teachers(
    train: TextDataset,
    valid: TextDataset,
    config: SentimentTrainConfig,
    labels: LabelSet,
    on_epoch: EpochCallback | None = None,
) -> list[Teacher]:
    """``distill_from``'s artifacts, or ``distill_encoder`` fine-tuned on ``train`` (early-
    stopped on ``valid``, as the student is) with the fine-tuning defaults; its epochs go to
    ``on_epoch`` with ``"model": "teacher"`` (it trains for a quarter of an hour or more)."""
    if config.distill_from:
        return [Teacher.load(Path(path), labels.labels) for path in config.distill_from]
    teacher_config = SentimentTrainConfig(
        pretrained_encoder=config.distill_encoder,
        seed=config.seed,
        threads=config.threads,
        device=config.device,
        max_minutes=config.max_minutes,
    )

    fitted = fit_sentiment(
        train, valid, teacher_config, _teacher_epochs(on_epoch), show_progress=False
    )
    if not isinstance(fitted.predictor, SentimentPredictor):
        raise TypeError("a fine-tuned encoder gave no text classifier")
    return [Teacher(fitted.predictor, fitted.pretrained or {})]


def _fit_classifier(
    predictor: SentimentPredictor,
    train: TextDataset,
    valid: TextDataset,
    config: SentimentTrainConfig,
    device: torch.device,
    on_epoch: EpochCallback | None,
    show_progress: bool,
    transfer: TransferTexts | None = None,
) -> FitResult:
    """Train ``predictor``'s model on what it reads of the texts; early-stop on macro-F1."""
    model = predictor.model
    model.to(device)
    net = distributed.wrap(model)
    texts = list(train.texts)
    labels = predictor.labels
    label_ids = [labels.index_of[y] for y in train.labels]
    distilled = bool(config.distill_from or config.distill_encoder)
    loss = sentiment_loss(config, label_ids, len(labels), per_row=distilled)
    teachers: list[Teacher] = []
    soft = None
    if distilled:
        teachers = _teachers(train, valid, config, labels, on_epoch)
        texts += augment(train.texts, config.distill_copies, config.seed)
        if transfer is not None:
            seen = set(texts)
            texts += [t for t in dict.fromkeys(transfer.texts) if t not in seen]
        label_ids += [0] * (len(texts) - len(label_ids))  # copies: the teacher's label only
        probabilities = ensemble_probabilities(
            teachers,
            texts,
            config.distill_temperature,
            show_progress,
            resolve_folder(config.distill_cache),
        )
        soft = torch.from_numpy(probabilities)
    train_tokens = sentiment_inputs(texts, predictor)
    valid_tokens = sentiment_inputs(valid.texts, predictor)

    def step_loss(chunk: list[int]) -> Tensor:
        batch = predictor.encode([train_tokens[i] for i in chunk]).tensors().to(device)
        target = torch.tensor([label_ids[i] for i in chunk], device=device)
        logits = net(batch)
        if soft is None:
            return loss(logits, target)
        original = torch.tensor([i < len(train.texts) for i in chunk], device=device)
        return distilled_loss(
            logits,
            loss(logits, target),
            soft[chunk].to(device),
            original,
            config.distill_weight,
            config.distill_temperature,
        )

    def evaluate() -> dict[str, Any]:  # on the training device
        return evaluate_sentiment_tokens(predictor, valid_tokens, valid.labels)[0]

    run = _epoch_loop(
        model,
        [len(t) for t in train_tokens],
        config,
        step_loss,
        evaluate,
        "macro_f1",
        on_epoch,
        show_progress,
    )
    model.cpu().eval()
    fitted = FitResult.of(predictor, run)
    if not teachers:
        return fitted
    record = teacher_record(
        teachers,
        config.distill_copies,
        config.distill_weight,
        config.distill_temperature,
        transfer,
    )
    return replace(fitted, teacher=record)
