-- Each observation with how long it holds at most (`max_gap_us`): the policy's fixed max gap,
-- else its number's cadence that day, else (fewer than two observations to measure one) the
-- cadence range's lower bound.
SELECT
    ordered.*,
    coalesce(policy.max_gap_us, cadence.max_gap_us, policy.low_us) AS max_gap_us
FROM ordered
CROSS JOIN report_policy AS policy
LEFT JOIN cadence USING (config_id, day_us)
