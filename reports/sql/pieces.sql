-- Each observation's holding time, split at UTC midnight: one row per (observation, day). An
-- observation holds until its number's next one, at most its `max_gap_us`.
WITH held AS (
    SELECT
        * EXCLUDE (day_us),
        least(
            coalesce(lead(at_us) OVER (PARTITION BY config_id ORDER BY seq), at_us + max_gap_us),
            at_us + max_gap_us
        ) AS until_us
    FROM observations
),
by_day AS (
    SELECT *, unnest(range(at_us // {DAY} * {DAY}, until_us, {DAY})) AS day_us
    FROM held
    WHERE until_us > at_us
)
SELECT
    * EXCLUDE (until_us),
    greatest(at_us, day_us) AS start_us,
    least(until_us, day_us + {DAY}) AS end_us,
    (least(until_us, day_us + {DAY}) - greatest(at_us, day_us)) / 1e6 AS seconds
FROM by_day
