"""This app's version: what the OTA updater compares a package with (tools/ota/package.py
reads it as the package's version)."""
VERSION = "1.0.0"
