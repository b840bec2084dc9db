"""The benchmark: the engine against a bare ``websockets`` ceiling (B0) and a Socket.IO peer (P1).

Run it with ``.venv/bin/python -m bench`` (see ``bench/run.py`` and docs/performance.md), and
the show in a browser (the countdowns in step, host click to screen) with
``.venv/bin/python -m bench show`` (``bench/show.py``).
"""
