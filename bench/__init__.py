"""Side-by-side benchmarks of our SnowflakeDocumentDatabase and Parlant's upstream adapter.

Run with ``make bench`` (``python -m bench``); the report goes to docs/benchmarks.md.
"""
