"""The side-by-side benchmark: the stack against a naive baseline, measured with wrk.

Run it with ``make bench``; it writes ``bench/REPORT.md`` and its plots.
"""
