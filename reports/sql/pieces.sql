-- Each observation's holding time, split at UTC midnight: one row per (observation, day), with
-- the states it holds. An observation holds until its number's next one, at most its
-- `max_gap_us`. Only the observations that hold into the report's days are split (all of
-- them when `report_days` is empty).
WITH held AS (
    SELECT
        config_id,
        at_us,
        day_us,
        state,
        can_send_message,
        quality_rating,
        phone_status,
        least(coalesce(next_us, at_us + max_gap_us), at_us + max_gap_us) AS until_us
    FROM observations, (SELECT min(day_us) AS first_us, max(day_us) AS last_us FROM report_days)
    WHERE first_us IS NULL OR (day_us <= last_us AND until_us > first_us)
),
split AS (  -- most pieces stay inside their day; the others are cut at each midnight
    SELECT * EXCLUDE (until_us), at_us AS start_us, until_us AS end_us
    FROM held
    WHERE until_us > at_us AND until_us <= day_us + {DAY}
    UNION ALL BY NAME
    SELECT
        * EXCLUDE (day_us, until_us, crossed_day_us),
        crossed_day_us AS day_us,
        greatest(at_us, crossed_day_us) AS start_us,
        least(until_us, crossed_day_us + {DAY}) AS end_us
    FROM (
        SELECT *, unnest(range(day_us, until_us, {DAY})) AS crossed_day_us
        FROM held
        WHERE until_us > day_us + {DAY}
    ) AS crossing
)
SELECT *, (end_us - start_us) / 1e6 AS seconds
FROM split
