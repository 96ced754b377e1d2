"""benchmarks.gpu_training: its on-device Viterbi returns slotfill's paths (the benchmark
exits 1 on any difference, so a wrong recursion would read as a disagreement, not a speed)."""

from __future__ import annotations

import torch

from benchmarks.gpu_training import device_viterbi
from models.crf import CRFParams, bio_constraints, viterbi_decode

TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]


def test_device_viterbi_equals_slotfills_decoder_on_mixed_lengths() -> None:
    gen = torch.Generator().manual_seed(7)
    batch, seq_len = 40, 9
    emissions = torch.randn(batch, seq_len, len(TAGS), generator=gen) * 3
    lengths = torch.randint(1, seq_len + 1, (batch,), generator=gen)
    mask = torch.arange(seq_len)[None, :] < lengths[:, None]
    start, trans, end = (
        torch.randn(len(TAGS), generator=gen),
        torch.randn(len(TAGS), len(TAGS), generator=gen),
        torch.randn(len(TAGS), generator=gen),
    )
    for allowed in (None, bio_constraints(TAGS)):
        params = CRFParams.constrained(start, trans, end, allowed)
        ours = viterbi_decode(emissions, mask, params)
        assert device_viterbi(emissions, mask, params) == ours
        assert [len(p) for p in ours] == lengths.tolist()
