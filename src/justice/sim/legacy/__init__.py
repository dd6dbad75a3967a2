"""The five legacy systems' extracts, emitted from the simulated world with realistic mess."""
