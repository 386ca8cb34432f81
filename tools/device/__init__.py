"""A module over its REPL port (real, or the virtual board): deploy, REPL session, virtual board."""
