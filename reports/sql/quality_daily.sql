-- One row per reported number and day: the share of each rating in the time a rating is known,
-- the worst and the last rating observed, rating changes and downgrades, phone status changes
-- and the last phone status.
WITH grid AS (
    SELECT config_id, day_us FROM reported_numbers CROSS JOIN report_days
),
observed AS (
    SELECT
        config_id,
        day_us,
        arg_max(quality_rating, ranks.rank) AS worst_rating,  -- ranked ratings only
        arg_max(quality_rating, seq) AS last_rating,  -- arg_max skips nulls
        arg_max(phone_status, seq) AS last_phone_status
    FROM observations
    LEFT JOIN value_ranks AS ranks
        ON ranks.field = 'quality_rating' AND ranks.value = quality_rating
    WHERE day_us IN (SELECT day_us FROM report_days)
    GROUP BY config_id, day_us
),
changes AS (
    SELECT
        config_id,
        day_us,
        count(*) FILTER (WHERE field = 'quality_rating') AS rating_changes,
        count(*) FILTER (WHERE field = 'quality_rating' AND worse) AS downgrades,
        count(*) FILTER (WHERE field = 'phone_status') AS phone_status_changes
    FROM transitions
    WHERE day_us IN (SELECT day_us FROM report_days)
    GROUP BY config_id, day_us
)
SELECT
    grid.config_id,
    grid.day_us,
    {SHARE_OF_EACH_RATING},
    worst_rating,
    last_rating,
    coalesce(rating_changes, 0) AS rating_changes,
    coalesce(downgrades, 0) AS downgrades,
    coalesce(phone_status_changes, 0) AS phone_status_changes,
    last_phone_status
FROM grid
LEFT JOIN held_daily USING (config_id, day_us)
LEFT JOIN observed USING (config_id, day_us)
LEFT JOIN changes USING (config_id, day_us)
