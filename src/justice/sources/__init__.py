"""Readers and layouts for the legacy justice-system sources."""
