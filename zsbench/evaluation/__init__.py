"""How one task's numbers are made. Every module here is hashed into every run key.

- ``stages``: fit on a stage, score, choose on validation, refit, test once (typed records in
  and out); where the hashed code path starts (``zsbench.runner.identity``).
- ``protocol``: which split may see what, at each stage.
- ``calibration``: the seen/unseen calibration sweeps every calibrator and method shares.
- ``metrics``: per-class mean top-1, u, s, H (Xian et al.).
- ``environment``: the numeric settings pinned while a task runs, recorded with its rows.

Nothing is imported here, so ``zsbench.evaluation.metrics`` loads without torch.
"""
