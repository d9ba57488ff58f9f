-- One row per reported number and day: observations by state, sample and time-weighted
-- availability, coverage, seconds by state, messaging shares (of the time messaging is known),
-- incidents, MTTR, and how long the day's observations held at most. Fractions are null when
-- nothing is known to divide by.
WITH grid AS (
    SELECT config_id, day_us FROM reported_numbers CROSS JOIN report_days
),
samples AS (
    SELECT
        config_id,
        day_us,
        count(*) FILTER (WHERE state = {UP}) AS polls_up,
        count(*) FILTER (WHERE state = {DOWN}) AS polls_down,
        count(*) FILTER (WHERE state = {DEGRADED}) AS polls_degraded,
        count(*) FILTER (WHERE state = {UNKNOWN}) AS polls_unknown,
        max(max_gap_us) / 1e6 AS max_gap_seconds
    FROM observations
    WHERE day_us IN (SELECT day_us FROM report_days)
    GROUP BY config_id, day_us
),
held AS (
    SELECT
        config_id,
        day_us,
        coalesce(up_us, 0) AS up_us,
        coalesce(degraded_us, 0) AS degraded_us,
        coalesce(down_us, 0) AS down_us,
        coalesce(available_us, 0) AS available_us,
        coalesce(limited_us, 0) AS limited_us,
        coalesce(blocked_us, 0) AS blocked_us
    FROM held_daily
),
incident_counts AS (
    SELECT
        config_id,
        day_us,
        count(*) FILTER (WHERE kind = {DOWN}) AS incidents,
        count(*) FILTER (WHERE kind = 'blocked') AS blocked_incidents,
        -- recoveries on the day they end (integer sums: the same figure in any order)
        sum(end_us - start_us) FILTER (WHERE recovered_that_day) / 1e6
            / nullif(count(*) FILTER (WHERE recovered_that_day), 0) AS mttr_seconds
    FROM (
        SELECT
            *,
            kind = {DOWN} AND NOT ongoing AND end_us // {DAY} * {DAY} = day_us
                AS recovered_that_day
        FROM incident_days
        WHERE day_us IN (SELECT day_us FROM report_days)
    ) AS marked
    GROUP BY config_id, day_us
),
joined AS (
    SELECT
        grid.config_id,
        grid.day_us,
        coalesce(polls_up, 0) AS polls_up,
        coalesce(polls_down, 0) AS polls_down,
        coalesce(polls_degraded, 0) AS polls_degraded,
        coalesce(polls_unknown, 0) AS polls_unknown,
        coalesce(up_us, 0) AS up_us,
        coalesce(degraded_us, 0) AS degraded_us,
        coalesce(down_us, 0) AS down_us,
        available_us,
        limited_us,
        blocked_us,
        (SELECT degraded_counts_as_up FROM report_policy) AS degraded_counts_as_up,
        coalesce(incidents, 0) AS incidents,
        coalesce(blocked_incidents, 0) AS blocked_incidents,
        mttr_seconds,
        max_gap_seconds
    FROM grid
    LEFT JOIN samples USING (config_id, day_us)
    LEFT JOIN held USING (config_id, day_us)
    LEFT JOIN incident_counts USING (config_id, day_us)
)
SELECT
    config_id,
    day_us,
    polls_up,
    polls_down,
    polls_degraded,
    polls_unknown,
    (polls_up + CASE WHEN degraded_counts_as_up THEN polls_degraded ELSE 0 END)
        / nullif(polls_up + polls_degraded + polls_down, 0) AS availability_samples,
    (up_us + CASE WHEN degraded_counts_as_up THEN degraded_us ELSE 0 END)
        / nullif(up_us + degraded_us + down_us, 0) AS availability_time,
    (up_us + degraded_us + down_us) / {DAY} AS coverage,
    up_us / 1e6 AS seconds_up,
    degraded_us / 1e6 AS seconds_degraded,
    down_us / 1e6 AS seconds_down,
    down_us / 1e6 AS downtime_seconds,
    available_us / nullif(available_us + limited_us + blocked_us, 0) AS messaging_available_share,
    limited_us / nullif(available_us + limited_us + blocked_us, 0) AS messaging_limited_share,
    blocked_us / nullif(available_us + limited_us + blocked_us, 0) AS messaging_blocked_share,
    incidents,
    blocked_incidents,
    mttr_seconds,
    max_gap_seconds
FROM joined
