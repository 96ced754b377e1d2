"""A tiny random BERT encoder written as Hugging Face writes one (config.json, vocab.txt,
model.safetensors under BERT's tensor names): the stand-in for all-MiniLM-L6-v2, which is not
in the repository. Importable by name (``from tiny_bert import write_encoder``): ``tests/`` is
on ``sys.path`` under pytest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SPECIALS = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIECES = [
    *SPECIALS,
    *["!", ",", ".", "?", "@", "#", "'", "a", "i"],
    *[
        "good",
        "great",
        "love",
        "thanks",
        "happy",
        "bad",
        "awful",
        "hate",
        "late",
        "delayed",
        "lost",
        "flight",
        "bag",
        "my",
        "the",
        "was",
    ],
    *["is", "you", "crew", "un", "##aff", "##able", "##s", "##ed", "hello", "world"],
]
HIDDEN, LAYERS, HEADS, INNER = 16, 2, 2, 32


def write_encoder(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A random BERT encoder folder; returns its tensors (BERT names)."""
    folder.mkdir(parents=True)
    config = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INNER,
        "max_position_embeddings": 40,
        "layer_norm_eps": 1e-12,
        "vocab_size": len(PIECES),
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(PIECES) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    t = {
        "embeddings.word_embeddings.weight": rand(len(PIECES), HIDDEN),
        "embeddings.position_embeddings.weight": rand(40, HIDDEN),
        "embeddings.token_type_embeddings.weight": rand(2, HIDDEN),
        "embeddings.LayerNorm.weight": 1 + rand(HIDDEN),
        "embeddings.LayerNorm.bias": rand(HIDDEN),
        "pooler.dense.weight": rand(HIDDEN, HIDDEN),  # BERT's pooler: not read
        "pooler.dense.bias": rand(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, (rows, cols) in {
            "attention.self.query": (HIDDEN, HIDDEN),
            "attention.self.key": (HIDDEN, HIDDEN),
            "attention.self.value": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (INNER, HIDDEN),
            "output.dense": (HIDDEN, INNER),
        }.items():
            t[p + name + ".weight"], t[p + name + ".bias"] = rand(rows, cols), rand(rows)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + norm + ".weight"], t[p + norm + ".bias"] = 1 + rand(HIDDEN), rand(HIDDEN)
    save_file(t, str(folder / "model.safetensors"))
    return t
