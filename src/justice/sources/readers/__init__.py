"""Format readers: one module per source format, each a `read(spec, location, lineage)` generator."""
