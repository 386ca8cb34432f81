"""Sans-I/O protocol logic: state machines and registries fed events, returning actions."""
