"""Quality experiments: runs trained and scored by FID/KID on bench.protocol's split
(`python -m bench.experiments.NAME --help`)."""
