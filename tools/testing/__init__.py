"""The portable test runner (tests/portable on MicroPython, or any interpreter)."""
