-- The reference for the report benchmark: what an analyst would write in DuckDB for
-- `availability_daily` alone, over the same live files. Observation counts by state, sample and
-- time-weighted availability and coverage, per number and day, with the report's fixed
-- 30-minute holding rule split at UTC midnight. $files: the polls files of the range and one
-- day either side; $first, $last: the range (dates).
WITH polls AS (
    SELECT config_id, polled_at, checked_at, outcome, status FROM read_parquet($files)
),
observations AS (
    SELECT config_id, checked_at AS t, any_value(status) AS status
    FROM polls
    WHERE outcome = 'ok'
    GROUP BY config_id, checked_at
    UNION ALL
    SELECT config_id, polled_at, NULL FROM polls WHERE outcome <> 'ok'
),
held AS (
    SELECT
        config_id,
        t,
        CASE status
            WHEN 'healthy' THEN 'up' WHEN 'degraded' THEN 'degraded' WHEN 'unhealthy' THEN 'down'
            ELSE 'unknown'
        END AS state,
        least(
            coalesce(lead(t) OVER (PARTITION BY config_id ORDER BY t), t + INTERVAL 30 MINUTE),
            t + INTERVAL 30 MINUTE
        ) AS until
    FROM observations
),
pieces AS (
    SELECT config_id, state, day, greatest(t, day) AS s, least(until, day + INTERVAL 1 DAY) AS e
    FROM (
        SELECT *, unnest(generate_series(date_trunc('day', t), until, INTERVAL 1 DAY)) AS day
        FROM held
    )
    WHERE least(until, day + INTERVAL 1 DAY) > greatest(t, day)
),
samples AS (
    SELECT
        config_id,
        date_trunc('day', t) AS day,
        count(*) FILTER (WHERE state = 'up') AS polls_up,
        count(*) FILTER (WHERE state = 'down') AS polls_down,
        count(*) FILTER (WHERE state = 'degraded') AS polls_degraded,
        count(*) FILTER (WHERE state = 'unknown') AS polls_unknown
    FROM held
    GROUP BY ALL
),
seconds AS (
    SELECT
        config_id,
        day,
        sum(epoch(e - s)) FILTER (WHERE state IN ('up', 'degraded')) AS available,
        sum(epoch(e - s)) FILTER (WHERE state <> 'unknown') AS known
    FROM pieces
    GROUP BY ALL
)
SELECT
    config_id,
    day,
    coalesce(polls_up, 0) AS polls_up,
    coalesce(polls_down, 0) AS polls_down,
    coalesce(polls_degraded, 0) AS polls_degraded,
    coalesce(polls_unknown, 0) AS polls_unknown,
    (polls_up + polls_degraded) / nullif(polls_up + polls_degraded + polls_down, 0)
        AS availability_samples,
    coalesce(available, 0) / nullif(known, 0) AS availability_time,
    coalesce(known, 0) / 86400 AS coverage
FROM samples
FULL JOIN seconds USING (config_id, day)
WHERE day BETWEEN $first AND $last
