"""The benchmark rig: scenarios that start what they need on loopback and print side-by-side
ratios. Run ``python -m bench.rig --help``; bench/README.md says what each scenario measures."""
