"""Benchmarks of issue 6: `make bench` runs them all; README.md, section "Benchmarks", says how
to run each one and shows the measured table."""
