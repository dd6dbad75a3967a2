"""The justice data platform: extract, link and analyse legacy justice-system data."""

__version__ = "0.1.0"
