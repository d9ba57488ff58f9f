"""Pure report computations over the Parquet history: availability, quality, roll-ups."""
