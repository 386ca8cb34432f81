"""Codecs: bytes in, objects out and back; no I/O, no threads, no clocks."""
