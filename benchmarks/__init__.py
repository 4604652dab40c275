"""Side-by-side benchmarks of sluice against its peers (see README.md)."""
