-- Each number's cadence per day, when the policy has no fixed max gap: how long its
-- observations hold at most, `cadence_factor` x the median interval between its observations
-- that day and the day before, clamped to the policy's range.
WITH steps AS (
    SELECT config_id, day_us, step_us
    FROM ordered
    WHERE step_us > 0 AND (SELECT max_gap_us IS NULL FROM report_policy)
),
two_days AS (
    SELECT config_id, day_us, step_us FROM steps
    UNION ALL
    SELECT config_id, day_us + {DAY}, step_us FROM steps
)
SELECT
    config_id,
    day_us,
    CAST(floor(least(
        greatest(median(step_us) * any_value(policy.cadence_factor), any_value(policy.low_us)),
        any_value(policy.high_us)
    )) AS BIGINT) AS max_gap_us
FROM two_days, report_policy AS policy
GROUP BY config_id, day_us
