"""Helpers shared by test modules (no tests here): ``tests/`` is on ``sys.path`` (conftest.py), so
a test imports them as ``support.<module>``."""
