"""The portability gate: mpy-cross 1.13 and the lint for device code."""
