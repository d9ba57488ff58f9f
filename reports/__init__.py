"""Report computations over the Parquet history (daily availability and quality: issue #3)."""
