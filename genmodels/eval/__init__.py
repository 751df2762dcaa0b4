"""Measuring: test metrics, n-gram and harmony baselines, musical statistics, keystroke savings, the benchmark."""
