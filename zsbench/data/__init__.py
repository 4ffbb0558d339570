"""Readers for the standard zero-shot data files, in the formats users already have.

- ``xlsa17``: Xian et al. feature files (``res101.mat`` layout) and split files
  (``att_splits.mat`` / ``sent_splits.mat``), MATLAB v5 or v7.3.
- ``reed_text``: Reed et al. (CVPR 2016) per-image descriptions, ``text_c10/<class>/<image>.txt``.
- ``raw_images``: the CUB_200_2011 and Oxford-102 image layouts.
- ``bundle``: combines the above into a ``DatasetBundle`` (what the Dataset plugins return).
- ``cache``: a memory-mapped Arrow cache of per-instance tables.
- ``synthetic``: writes a small fine-grained data set in exactly these formats.
- ``download``: fetches and verifies the official archives (``zsbench data download``).
"""
