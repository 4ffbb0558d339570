"""Running a spec: the (data set x method x seed) grid and what keeps it honest.

- ``grid``: plan the tasks, run them on a backend, resume; the CLI's ``run`` and the API's ``run``.
- ``identity``: the run key (the code and data a row depends on) and staleness of stored rows.
- ``backends``: where tasks run (in process, or on a Ray cluster) and the reaper of stray workers.
- ``backbones``: the feature stage that turns raw images into the matrices methods read.
- ``audit`` and ``audit_worker``: the no-peeking audit, which reruns tasks with the test split
  replaced, in a clean child process.

Nothing here is hashed into run keys: the numbers come from ``zsbench.evaluation``.
"""
