"""Building blocks: the Kapso client, the rate limiter, flattening and Parquet storage."""
