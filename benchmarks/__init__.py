"""Side-by-side measurements. ``python -m benchmarks NAME`` runs ``benchmarks/NAME.py:run()`` and
writes its rows as a section of ``benchmarks/RESULTS.md`` (other sections are kept)."""
