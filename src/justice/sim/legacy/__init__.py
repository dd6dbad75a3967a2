"""The legacy systems' extracts (five case and custody systems and the HMCTS court register), emitted from
the simulated world with realistic mess."""
