"""Locust suite for the inference stack: users, load shapes and SLO gates.

Run it through ``make loadtest`` (see docs/performance.md); the entry point Locust
loads is ``loadtest/locustfile.py``.
"""
