"""Simulated peers of the module: the meter (pty), the HES (TCP/TLS) and the whole system."""
