"""Read a pretrained BERT-family encoder folder into a :class:`TransformerSentimentClassifier`.

The folder is what Hugging Face writes for a BERT model: ``config.json``, ``vocab.txt`` and
``model.safetensors`` (``tokenizer_config.json`` optional), as sentence-transformers'
all-MiniLM-L6-v2 ships it. Only the trainer reads it: the fine-tuned weights, the word-piece
vocabulary and the shape go into the artifact, so the server never needs the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file

from models.artifact import file_sha256
from models.transformer import TransformerSentimentClassifier, TransformerSentimentConfig
from models.vocab import PAD, UNK, Vocab
from training.data import DataError

WEIGHTS = "model.safetensors"
# Our parameter name -> the Hugging Face BERT name (``{i}``: the layer).
_LAYER_NAMES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_out": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}


@dataclass(frozen=True)
class PretrainedEncoder:
    """What a folder holds: the word pieces (as the artifact's vocabulary), the shape fields
    of a :class:`TransformerSentimentConfig`, the encoder's weights under our names, and
    where they came from (path and SHA-256 of the weights file)."""

    words: Vocab
    shape: dict[str, Any]
    state: dict[str, np.ndarray]
    source: dict[str, str]

    def build(
        self, num_labels: int, dropout: float, max_wordpieces: int
    ) -> TransformerSentimentClassifier:
        """A classifier with this encoder's weights and a new linear head."""
        config = TransformerSentimentConfig(
            num_labels=num_labels,
            vocab_size=len(self.words),
            cls_index=self.words.stoi["[CLS]"],
            sep_index=self.words.stoi["[SEP]"],
            dropout=dropout,
            max_wordpieces=min(max_wordpieces, self.shape["max_positions"]),
            **self.shape,
        )
        model = TransformerSentimentClassifier(config)
        tensors = {k: torch.from_numpy(v.copy()) for k, v in self.state.items()}
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if unexpected or set(missing) != {"out.weight", "out.bias"}:
            raise DataError(f"{self.source['path']}: weights do not fit (missing {missing})")
        return model


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read: {err}") from err
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def read_encoder(folder: Path) -> PretrainedEncoder:
    """Read ``folder``; a missing file, another architecture or weights that do not fit raise
    :class:`DataError` naming the file."""
    config = _read_json(folder / "config.json")
    if config.get("model_type", "bert") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise DataError(f"{folder / 'config.json'}: expected a BERT encoder with GELU")
    try:
        shape: dict[str, Any] = {
            "hidden_size": int(config["hidden_size"]),
            "num_layers": int(config["num_hidden_layers"]),
            "num_heads": int(config["num_attention_heads"]),
            "intermediate_size": int(config["intermediate_size"]),
            "max_positions": int(config["max_position_embeddings"]),
            "layer_norm_eps": float(config.get("layer_norm_eps", 1e-12)),
        }
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{folder / 'config.json'}: missing or bad field {err}") from err
    tokenizer = folder / "tokenizer_config.json"
    lowercase = (
        bool(_read_json(tokenizer).get("do_lower_case", True)) if tokenizer.is_file() else True
    )
    if not lowercase:
        raise DataError(f"{tokenizer}: only uncased encoders are supported")
    try:
        pieces = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    except OSError as err:
        raise DataError(f"{folder / 'vocab.txt'}: cannot read: {err}") from err
    pieces = pieces[:-1] if pieces and pieces[-1] == "" else pieces
    bert_id = {p: i for i, p in enumerate(pieces)}
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
        if special not in bert_id:
            raise DataError(f"{folder / 'vocab.txt'}: no {special} piece")
    # Our vocabulary: <pad> and <unk> (BERT's [PAD] and [UNK]), then the other pieces in order.
    words = Vocab([p for p in pieces if p not in ("[PAD]", "[UNK]")])
    rows = np.array(
        [bert_id[{PAD: "[PAD]", UNK: "[UNK]"}.get(p, p)] for p in words.itos], dtype=np.int64
    )
    try:
        hf = load_file(str(folder / WEIGHTS))
    except (OSError, SafetensorError) as err:
        raise DataError(f"{folder / WEIGHTS}: cannot read: {err}") from err
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in hf else ""
    try:
        state = _our_names(hf, prefix, shape["num_layers"], rows)
    except KeyError as err:
        raise DataError(f"{folder / WEIGHTS}: no tensor {err}") from err
    if state["word_embeddings.weight"].shape[0] != len(words):
        raise DataError(f"{folder / WEIGHTS}: vocabulary and embeddings differ in size")
    source = {"path": str(folder), "weights_sha256": file_sha256(folder / WEIGHTS)}
    return PretrainedEncoder(words, shape, state, source)


def _our_names(
    hf: dict[str, np.ndarray], prefix: str, layers: int, rows: np.ndarray
) -> dict[str, np.ndarray]:
    e = f"{prefix}embeddings."
    state = {
        "word_embeddings.weight": hf[e + "word_embeddings.weight"][rows],
        "position_embeddings.weight": hf[e + "position_embeddings.weight"],
        "segment_embedding": hf[e + "token_type_embeddings.weight"][0],
        "embedding_norm.weight": hf[e + "LayerNorm.weight"],
        "embedding_norm.bias": hf[e + "LayerNorm.bias"],
    }
    for i in range(layers):
        for ours, theirs in _LAYER_NAMES.items():
            for part in ("weight", "bias"):
                state[f"layers.{i}.{ours}.{part}"] = hf[
                    f"{prefix}encoder.layer.{i}.{theirs}.{part}"
                ]
    return state
