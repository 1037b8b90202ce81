"""The project's measurements, run from the repo root as modules (`python -m bench.speed.throughput`).

bench.protocol     the CelebA faces, their train/held-out split, the seeds, and the helpers
                   the scripts share (one place, so every figure uses the same data)
bench.speed        how fast: training step, data path, FID, feature extraction, bookkeeping, DDP
bench.experiments  how good: presets and recipes trained and scored by FID/KID, and their reports
bench.ledger       the results ledger, bench/results/ledger.json, that docs/results.md is made from
Everything else the scripts write lands in bench/results/, which git ignores.
"""
