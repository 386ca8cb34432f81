"""Benchmarks (make bench): codec, UART, cloud link and heap figures on both interpreters."""
