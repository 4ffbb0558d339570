"""Helpers for plugin authors' test suites.

``assert_no_peeking(method, bundle, ...)`` runs the no-peeking audit (``zsbench.runner.audit``) on one
method plugin and a data set bundle, and fails the test naming every choice that moved.
"""

from __future__ import annotations

from zsbench.runner.audit import assert_no_peeking, poison_test_split, transduction_problems

__all__ = ["assert_no_peeking", "poison_test_split", "transduction_problems"]
