"""syncd's benchmark suite: ``python -m benchmarks [--quick] [--full] [--only NAME]``.

Each scenario measures one thing the issue tracker holds a target for and writes its figures,
the machine they were taken on and the ratios against their floor as JSON in
``benchmarks/results/``. The older single-purpose scripts (``bench_*.py``) still run on their own.
"""
