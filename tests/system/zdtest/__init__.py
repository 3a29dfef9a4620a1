"""Helpers for zonedist system tests: real processes on 127.0.0.1, free ports,
deadline waits.  Fixtures live in ../conftest.py."""
