-- Each number's newest known observation before the end (`before = false`) and before the day
-- before the end (`before = true`), with its troubles in words (`problems`, worst first); of a
-- body's repeats, the last polled.
WITH newest AS (
    SELECT config_id, false AS before, max(at_us) AS at_us
    FROM known_observations
    GROUP BY config_id
    UNION ALL
    SELECT config_id, true, max(at_us)
    FROM known_observations
    WHERE at_us < (SELECT end_us - {DAY} FROM report_period)
    GROUP BY config_id
)
SELECT newest.before, known.*, {PROBLEMS} AS problems
FROM known_observations AS known
JOIN newest USING (config_id, at_us)
QUALIFY row_number() OVER (PARTITION BY config_id, before ORDER BY polled_at_us DESC) = 1
