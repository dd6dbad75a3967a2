"""Extract legacy systems and land them, lossless, in the raw zone of the lake (with dlt)."""
