"""Reporting, apart from the algorithm: the paper's numbers, statistics over test tasks, the machine a number
was measured on, evaluation outputs (``evaluation.json``, plots, TensorBoard) and the results tables."""
