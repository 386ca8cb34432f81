"""Host-side tools, never deployed. Run them from the repo root: python -m tools.<folder>.<name>"""
