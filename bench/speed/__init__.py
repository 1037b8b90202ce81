"""Speed benchmarks: images/s and seconds, each printed as a table (`python -m bench.speed.NAME --help`)."""
