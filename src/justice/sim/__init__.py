"""Synthetic justice-system simulator: people, events and the messy records they leave."""
