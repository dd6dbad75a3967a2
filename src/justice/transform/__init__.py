"""The dbt project (staging, quarantine, audit; later core and marts) and how it is run."""
