"""Every random stream of a run, derived from (seed, stream, rank) in one place.

Streams: the initial weights (torch's global generator), the latent vectors of the
training steps, the fixed latents of the sample grids, the augmenter's draws, the latents
G_ema's BatchNorm statistics are measured on, and the data order of each epoch. Distinct
streams, ranks and seeds must never share a sequence: once `seed + 1 + 1000 * rank` made
seed 1000 on rank 0 draw what seed 0 drew on rank 1.

Rank 0 keeps the offsets facegan has always used (`seed + 1` for the latents, ...), so
every recorded result still reproduces bit for bit. Other ranks get a 64-bit hash of
(seed, stream, rank) with the top bit set: it can never equal a rank-0 seed, which is
below 2**33, and two of them coincide only by a 64-bit hash collision.
"""
from __future__ import annotations

import numpy as np

# Rank 0's historic offsets from the run's seed; streams added later have none (None) and
# are always hashed, so they cannot repeat another seed's stream.
STREAMS = {"weights": 0, "latents": 1, "fixed_latents": 2, "augment": 7, "ema_norms": None}
DATA_ORDER_STRIDE = 100_003  # a prime above any epoch count, so (seed, epoch) pairs stay apart


def stream_seed(seed: int, stream: str, rank: int = 0, step: int = 0) -> int:
    """The seed of `stream` on `rank` (and, after a reseed mid-run, at `step`)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}: choose one of {', '.join(STREAMS)}")
    if rank == 0 and step == 0 and STREAMS[stream] is not None:
        return seed + STREAMS[stream]
    words = [seed, list(STREAMS).index(stream), rank, step]
    mixed = int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0])
    return mixed | 1 << 63


def epoch_seed(seed: int, epoch: int) -> int:
    """The data order of an epoch: the same on every rank, each of which takes its own shard."""
    return seed * DATA_ORDER_STRIDE + epoch
