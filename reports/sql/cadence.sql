-- Each number's cadence per day, when the policy has no fixed max gap: how long its
-- observations hold at most, `cadence_factor` x the time-weighted median interval between its
-- observations that day and the day before (the smallest interval such that the intervals up
-- to it cover half of the time: a spell of closer polls does not shorten it), clamped to the
-- policy's range.
WITH steps AS (
    SELECT config_id, day_us, step_us
    FROM ordered
    WHERE step_us > 0 AND (SELECT max_gap_us IS NULL FROM report_policy)
),
two_days AS (
    SELECT config_id, day_us, step_us FROM steps
    UNION ALL
    SELECT config_id, day_us + {DAY}, step_us FROM steps
),
weighted AS (
    SELECT
        config_id,
        day_us,
        step_us,
        sum(step_us) OVER (
            PARTITION BY config_id, day_us ORDER BY step_us
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS up_to_us,
        sum(step_us) OVER (PARTITION BY config_id, day_us) AS total_us
    FROM two_days
)
SELECT
    config_id,
    day_us,
    CAST(floor(least(
        greatest(min(step_us) * any_value(policy.cadence_factor), any_value(policy.low_us)),
        any_value(policy.high_us)
    )) AS BIGINT) AS max_gap_us
FROM weighted, report_policy AS policy
WHERE 2 * up_to_us >= total_us
GROUP BY config_id, day_us
