"""Experiment configuration: validated before the first step, stored in the artifact."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The frozen word-vector tables a model may read (training.vectors), or none.
PretrainedVectors = Literal["glove-6b-50d", "vader", "glove-6b-50d+vader", "none"]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class TrainConfig(BaseModel):
    """Hyper-parameters shared by both tasks; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(40, ge=1, le=1000, description="Most epochs")
    patience: int = Field(
        6, ge=1, le=1000, description="Epochs without valid improvement before stopping"
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Utterances per step")
    lr: float = Field(2e-3, gt=0, le=1.0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    clip_norm: float = Field(5.0, gt=0, description="Gradient-norm clipping threshold")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout on embeddings and encoder outputs")
    word_dropout: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="P(a training token's trained embedding -> <unk>'s in a step; "
        "its pretrained vector stays)",
    )
    seed: Seed = Field(13, description="Seed of every random number generator")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA if available")
    threads: int | None = Field(
        None, ge=1, description="CPU threads of torch and of NumPy's BLAS (default: all cores)"
    )
    cell: Literal["lstm", "gru", "irnn"] = Field("lstm", description="Recurrent cell")
    hidden_size: int = Field(128, ge=4, le=4096, description="Units per direction")
    num_layers: int = Field(1, ge=1, le=4, description="Stacked recurrent layers")
    word_dim: int = Field(100, ge=4, le=1024, description="Word embedding size")
    char_dim: int = Field(32, ge=4, le=512, description="Character embedding size")
    char_filters: int = Field(64, ge=0, le=1024, description="0 disables the character CNN")
    shape_dim: int = Field(8, ge=0, le=64, description="Word-shape embedding size (0: none)")
    min_word_count: int = Field(1, ge=1, le=1_000_000, description="Rarer train words become <unk>")
    pretrained_vectors: PretrainedVectors = Field(
        "glove-6b-50d",
        description="Frozen pretrained word vectors beside the trained embeddings: "
        "glove-6b-50d (GloVe 6B, 50d), vader (VADER's sentiment lexicon: valence per word "
        "and emoticon), glove-6b-50d+vader (both side by side) or none",
    )
    pretrained_words: int = Field(
        100_000,
        ge=0,
        le=10_000_000,
        description="Most frequent words of the pretrained vectors added to the vocabulary "
        "beyond the training words, so that words unseen in training keep their vector",
    )
    max_minutes: float | None = Field(None, gt=0, description="Stop after this much wall time")
    lr_decay: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="Multiply the learning rate by this after lr_patience "
        "epochs without a better valid score (1.0: constant rate)",
    )
    lr_patience: int = Field(
        2, ge=1, le=1000, description="Epochs without improvement before a decay"
    )
    ema_decay: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Evaluate and keep an exponential moving average of the weights, "
        "updated after every step with this decay (0 or None: the raw weights)",
    )
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant",
        description="constant: lr throughout (lr_decay may still lower it); linear: warm up "
        "over warmup_fraction of all steps, then decay linearly to 0 at the last epoch",
    )
    warmup_fraction: float = Field(
        0.0, ge=0, lt=1, description="Share of all steps spent warming up (linear schedule)"
    )
    # Knowledge distillation, of a sentiment LSTM (training/distill.py) and of a tagger's
    # intent head (training/tagger_distill.py).
    distill_cache: str = Field(
        "auto",
        description="Folder where a teacher's outputs are kept, so that later runs on the same "
        "texts skip its labelling (and a tagger's teachers their training) (auto: "
        "$XDG_CACHE_HOME/slotfill/teacher-logits, else ~/.cache/...; off: no cache)",
    )
    distill_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the teacher's term in the loss of a training example (the gold "
        "label's is the rest; a sentiment text's copy has only the teacher's)",
    )
    distill_temperature: float = Field(
        2.0, gt=0, le=20, description="Softmax temperature of teacher and student in distillation"
    )


class SlotTrainConfig(TrainConfig):
    """Tagger training; early stopping on valid slot F1."""

    @model_validator(mode="after")
    def _encoder_intents_are_single_label(self) -> SlotTrainConfig:
        if self.intent_encoder and self.intent_mode == "multi_label":
            raise ValueError("intent_encoder fine-tunes a single-label intent classifier")
        if self.intent_teacher_seeds and self.intent_mode == "multi_label":
            raise ValueError("intent_teacher_seeds distils single-label intents")
        return self

    intent_weight: float = Field(1.0, ge=0, description="Weight of the intent loss")
    stop_on: Literal["auto", "slots", "intents", "both"] = Field(
        "auto",
        description="What early stopping reads on valid: slots (slot F1), intents (intent "
        "accuracy; micro-F1 if multi-label) or both (their mean); auto: slots for "
        "single-label data with slots, intents for data without slots, both for multi-label",
    )
    # Candidates for rare intents (issue 19), chosen by `slotfill cv`, not by valid.
    intent_label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Label smoothing of the single-label intent cross-entropy (0: none)",
    )
    intent_logit_adjustment: float = Field(
        0.0,
        ge=0,
        le=4,
        description="tau of the logit-adjusted intent loss (Menon et al. 2021): the "
        "single-label intent cross-entropy is taken of the logits + tau * log(training "
        "frequency of each intent), predictions of the raw logits, which favours rare "
        "intents (0: plain cross-entropy; 1: the balanced-error choice)",
    )
    # Direct paths from the words to the intent logits for rare keyword intents
    # (models/slot_tagger.py; issue 19).
    intent_wide_buckets: int = Field(
        0,
        ge=0,
        le=1 << 24,
        description="Add a linear bag-of-n-grams term to the intent logits: a weight per "
        "training word and per hashed word bigram, this many bigram buckets (0: none)",
    )
    # ATIS 5-fold CV, seeds 13 / 1 / 2 (docs/results/intents.md): intent macro-F1 median of the 15
    # fold runs 0.8073 -> 0.8370 (higher on 12 of 15), accuracy equal (0.9779), slot F1
    # equal (0.9794); atis_flight_no 5 -> 19 of 36, atis_meal 5 -> 16 of 18 right. Multi-label
    # heads were not measured with it, so "auto" leaves them as they were.
    intent_label_attention: bool | None = Field(
        None,
        description="Add label attention to the intent logits: per intent, a learned query "
        "attends over the encoder states and the attended state is scored for that intent "
        "(null: on for single-label intents, off for multi-label ones)",
    )
    # ATIS 5-fold CV, seeds 13 / 1 / 2, with label attention (docs/results/intents.md): intent
    # accuracy median of the 15 fold runs 0.9779 -> 0.9829 (higher on 13), macro-F1 0.8301 ->
    # 0.8811 (per-seed fold medians 0.9185 / 0.9218 / 0.8472), slot F1 0.9795 -> 0.9797.
    # Single-label heads only (the votes are a softmax over intents).
    intent_token_votes: bool | None = Field(
        None,
        description="Token-level intents (Stack-Propagation): every token predicts the "
        "utterance's intent, trained at each token, and the mean of their log-probabilities "
        "is added to the intent logits (single-label intents only; null: on for "
        "single-label intents, off for multi-label ones)",
    )
    # 5-fold CV, seeds 13 / 1 / 2 (benchmarks/joint_decode_probe.py; docs/results/intents.md):
    # on SNIPS, whose slot types each belong to one or two intents, 88 more intents right of
    # 41,352 (higher on 13 of 15 folds) and slot F1 higher on all 15. On ATIS, whose types
    # are shared and seen with few examples of the rare intents, enforcing every intent's
    # types costs 24 intents (seed 13); the two thresholds below leave ATIS as it was (the
    # types atis_flight lacks are carried by at most 40 other examples) and SNIPS whole.
    intent_slot_fit: float = Field(
        1.0,
        ge=0,
        le=10,
        description="Read the intent and the slots together: weigh each intent's probability "
        "by the CRF's probability mass on slot labellings of the slot types seen with that "
        "intent in training, raised to this power, and decode the slots within the chosen "
        "intent's types (0: off; single-label intents only; see intent_slot_min_examples)",
    )
    intent_slot_min_examples: int = Field(
        1000,
        ge=1,
        description="With intent_slot_fit: only an intent with this many training examples "
        "has its slot types enforced (a type carried by 1 in 200 of its utterances is then "
        "seen with probability 0.993); rarer intents keep every slot type",
    )
    intent_slot_min_elsewhere: int = Field(
        50,
        ge=1,
        description="With intent_slot_fit: a slot type is kept from an intent only when at "
        "least this many training examples of other intents carry it",
    )
    # Over seeds 13, 1 and 2 on ATIS valid the average gave median slot F1 0.9783 (raw
    # weights: 0.9775), a narrower spread and earlier best epochs. Not for sentiment: there
    # it scored lower on the airline set.
    ema_decay: float | None = Field(0.99, ge=0, lt=1)
    # With the pretrained vectors a dropped word keeps its vector, so dropping more often
    # teaches the tagger to read unseen words from it; the wider encoder pays off on SNIPS.
    # Valid slot F1 over seeds 13 / 1 / 2 (README): SNIPS median 0.9530 at word dropout 0.05
    # and 128 units, 0.9550 at 0.2, 0.9566 at 0.2 and 200 units; ATIS 0.9778, 0.9783, 0.9781.
    word_dropout: float = Field(0.2, ge=0, lt=1)
    hidden_size: int = Field(200, ge=4, le=4096)
    intent_mode: Literal["auto", "single_label", "multi_label"] = Field(
        "auto",
        description="multi_label: a sigmoid per intent, BCE, one threshold tuned on valid; "
        "auto: multi_label when an example has several intents (a BIO label a#b is one "
        "intent unless multi_label is set)",
    )
    use_requested_slots: bool | None = Field(
        None,
        description="Give the tagger the slots requested before each utterance as an input "
        "(null: when any training example has requested slots)",
    )
    intent_encoder: str | None = Field(
        None,
        description="Folder of a pretrained uncased BERT-family encoder (as the sentiment "
        "trainer's pretrained_encoder) to fine-tune for the intents, blended with the "
        "tagger head's by intent_encoder_weight; single-label intents only (README: "
        "Cross-validation)",
    )
    # SNIPS 5-fold CV, seed 13 (docs/results/intents.md): intent accuracy per fold higher than
    # the tagger's head alone on every fold at 0.5 and 0.75, and than the encoder alone on 3 of 5
    # at 0.75.
    intent_encoder_weight: float = Field(
        0.75,
        gt=0,
        le=1,
        description="With intent_encoder: the weight of its calibrated intent probabilities "
        "in a blend with the tagger head's (1: the encoder alone)",
    )
    # 5-fold CV (docs/results/intents.md, "A lexical model beside the head"), at 0.25: SNIPS
    # +8 / +8 / +12 of 13,784 over three seeds, most of it from weighing the slots' fit on
    # calibrated probabilities, which any blend does, and still short of 0.990; ATIS even on
    # accuracy, macro-F1 -1.3 points; +0.19 ms a parse. An option.
    intent_lexical_weight: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of a TF-IDF word and character n-gram logistic regression's "
        "calibrated intent probabilities in a blend with the tagger head's; single-label "
        "intents only (0: none)",
    )
    intent_lexical_c: float = Field(
        10.0, gt=0, description="Inverse L2 strength of the lexical intent model"
    )
    # SNIPS 5-fold CV at 0.3, four seeds (docs/results/intents.md, "Slot-value substitution"):
    # intents unchanged (-1.5 utterances in the median), slot F1 higher on 16 of 20 folds
    # (+0.0016 on average). An option.
    slot_value_swap: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance that each slot value of a training example is replaced, each "
        "time the example is drawn, by another value of the same slot type from the "
        "training data (0: never)",
    )
    intent_teacher_seeds: list[Seed] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="Train a tagger with each of these seeds on the same data first and distil "
        "their averaged intent probabilities into this one's head (an ensemble's judgement "
        "at one model's serving cost; len + 1 trainings); single-label intents only",
    )

    @field_validator("intent_teacher_seeds", mode="before")
    @classmethod
    def _seed_list(cls, value: object) -> object:
        return [value] if isinstance(value, int) else value

    bare_answers: bool = Field(
        False,
        description="Also train on each example's bare answer: the labelled text of the one "
        "slot it was asked for, with the same context (training.formats.answers)",
    )


# What fine-tuning a pretrained encoder starts from (BERT's recipe, as sentence-transformers'
# models are fine-tuned), for each key the config does not set itself.
FINE_TUNING_DEFAULTS: dict[str, object] = {
    "lr": 5e-5,
    "epochs": 3,
    "patience": 2,
    "weight_decay": 0.01,
    "dropout": 0.1,
    "clip_norm": 1.0,
    "label_smoothing": 0.0,
    "lr_schedule": "linear",
    "warmup_fraction": 0.06,
}

# What a distilled LSTM starts from, for each key the config does not set itself: on airline
# valid (seed 13) the soft targets at temperature 1 with lr 0.002 scored below the LSTM alone
# (0.7657 against 0.7746), at temperature 2 with lr 0.001 above it (0.7845;
# docs/results/sentiment.md).
DISTILLATION_DEFAULTS: dict[str, object] = {"lr": 1e-3, "distill_temperature": 2.0}


class SentimentTrainConfig(TrainConfig):
    """Sentiment training; early stopping on valid macro-F1.

    With ``pretrained_encoder`` the model is that encoder fine-tuned (models.transformer),
    with :data:`FINE_TUNING_DEFAULTS` for what the config leaves unset; the LSTM's shape
    fields (``hidden_size``, ``word_dim``, ...) and text scheme then do not apply.
    """

    @model_validator(mode="before")
    @classmethod
    def _fine_tuning_defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("pretrained_encoder"):
            data = {**FINE_TUNING_DEFAULTS, **data}
        if isinstance(data, dict) and (data.get("distill_from") or data.get("distill_encoder")):
            # With texts to distil on, the copies add nothing measured, and temperature 4
            # scored above 2 (airline valid, 4 of 5 seeds, and CV fold 1;
            # docs/results/sentiment.md). Without them only 1 and 2 were measured.
            with_texts = {"distill_copies": 0, "distill_temperature": 4.0}
            data = {
                **DISTILLATION_DEFAULTS,
                **(with_texts if data.get("distill_texts") else {}),
                **data,
            }
        return data

    @model_validator(mode="after")
    def _one_teacher(self) -> SentimentTrainConfig:
        if self.distill_from and self.distill_encoder:
            raise ValueError("distill_from and distill_encoder each name a teacher: set one")
        if self.distill_texts and not (self.distill_from or self.distill_encoder):
            raise ValueError("distill_texts needs a teacher: distill_from or distill_encoder")
        return self

    pretrained_encoder: str | None = Field(
        None,
        description="Folder of a pretrained uncased BERT-family encoder (config.json, "
        "vocab.txt, model.safetensors), e.g. sentence-transformers' all-MiniLM-L6-v2, to "
        "fine-tune instead of training the LSTM (README: Pretrained encoder)",
    )
    max_wordpieces: int = Field(
        64, ge=3, le=512, description="Word pieces a pretrained encoder reads per text"
    )

    epochs: int = Field(20, ge=1, le=1000)
    patience: int = Field(4, ge=1, le=1000)
    dropout: float = Field(0.4, ge=0, lt=1)
    char_filters: int = Field(32, ge=0, le=1024)
    # Airline valid, seed 13: accuracy 0.8212 without the vectors, 0.8129 with them.
    pretrained_vectors: PretrainedVectors = "none"
    min_word_count: int = Field(1, ge=1, le=1_000_000, description="Rarer train words become <unk>")
    # Macro-F1 weighs the rare labels alike with the frequent one: options that move the
    # classifier towards them (training/class_losses.py); all 0 is plain cross-entropy.
    class_weight_power: float = Field(
        0.0,
        ge=0,
        le=2,
        description="Weigh each label's cross-entropy by its training count ** -power "
        "(0: unweighted; 0.5: inverse square root; 1: inverse frequency)",
    )
    logit_adjustment: float = Field(
        0.0,
        ge=0,
        le=4,
        description="tau of the logit-adjusted loss (Menon et al. 2021): cross-entropy of "
        "logits + tau * log(training frequency of each label), predictions of the raw "
        "logits, which favours rare labels (0: none; 1: the balanced-error choice)",
    )
    # Airline valid macro-F1, median of seeds 13 / 1 / 2 (README, Benchmarks): plain text, no
    # wide term, word dropout 0.05, no smoothing: 0.7667; tweet scheme + wide term: 0.7724;
    # with word dropout 0.2 and label smoothing 0.1 as well: 0.7755. 5-fold CV, folds 1 / 2:
    # 0.7462 / 0.7214 -> 0.7561 / 0.7394.
    word_dropout: float = Field(0.2, ge=0, lt=1)
    label_smoothing: float = Field(
        0.1, ge=0, lt=1, description="Label smoothing of the cross-entropy (0: none)"
    )
    text_scheme: Literal["plain", "tweet"] = Field(
        "tweet",
        description="How the model reads text (models/text.py): plain: every token as "
        "written; tweet: emoticons, punctuation runs, elongations, @handles and #hashtags "
        "as social-media text",
    )
    wide_buckets: int = Field(
        1 << 18,
        ge=0,
        le=1 << 24,
        description="Add a linear bag-of-n-grams term to the logits: a weight per word and per "
        "hashed word bigram, this many buckets (0: none)",
    )
    # Knowledge distillation (training/distill.py, README: Distilling the encoder).
    distill_from: list[str] | None = Field(
        None,
        min_length=1,
        description="Trained sentiment artifacts with the same labels (e.g. ones fine-tuned "
        "with pretrained_encoder) whose probabilities the model learns beside the gold "
        "labels, on the training texts and changed copies of them (knowledge distillation); "
        "several teachers' probabilities are averaged (one path: that teacher alone)",
    )

    @field_validator("distill_from", mode="before")
    @classmethod
    def _teachers(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    distill_encoder: str | None = Field(
        None,
        description="Folder of a pretrained encoder (as pretrained_encoder) to fine-tune on "
        "the same training data first, with its fine-tuning defaults, and distill into this "
        "model: the teacher of distill_from trained in the same run (cross-validation "
        "trains one per fold)",
    )
    distill_texts: list[str] | None = Field(
        None,
        min_length=1,
        description="Files of unlabelled texts (each a text<TAB>label TSV, labels not read, or "
        "one text a line) that the teacher labels too, and whose words join the vocabulary: "
        "words and phrases the training set lacks (e.g. SST-2's sentences for the airline set)",
    )

    @field_validator("distill_texts", mode="before")
    @classmethod
    def _text_files(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    distill_copies: int = Field(
        4,
        ge=0,
        le=100,
        description="Changed copies of each training text (words dropped, or an n-gram cut "
        "out) that the teacher labels for distillation (default 0 with distill_texts)",
    )
