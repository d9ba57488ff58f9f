-- The observations in time order per number (`seq`), in one pass with the interval since the
-- one before (`step_us`, for the cadence) and the next one's time (`next_us`, until when it
-- holds).
SELECT
    *,
    row_number() OVER in_time AS seq,
    at_us - lag(at_us) OVER in_time AS step_us,
    lead(at_us) OVER in_time AS next_us
FROM observed
WINDOW in_time AS (PARTITION BY config_id ORDER BY at_us, NOT ok, polled_us)
