-- Per number, day and check name (any name, also new ones): observations in which the check
-- passed and failed, and the pass rate. A check counts once per observation (distinct
-- `checked_at`, a missing one counting as one); `passed` null is neither. A row counts on its
-- observation's day when that is the day it was polled (the day whose files hold it).
WITH dated AS (
    SELECT
        config_id,
        check_name,
        passed,
        checked_at,
        epoch_us(coalesce(checked_at, polled_at)) // {DAY} * {DAY} AS day_us,
        epoch_us(polled_at) // {DAY} * {DAY} AS polled_day_us
    FROM checks
),
counted AS (
    SELECT
        config_id,
        day_us,
        check_name,
        passed,
        count(DISTINCT checked_at) + (count(*) > count(checked_at))::INTEGER AS observations
    FROM dated
    WHERE day_us = polled_day_us AND day_us IN (SELECT day_us FROM report_days)
    GROUP BY config_id, day_us, check_name, passed
)
SELECT
    config_id,
    day_us,
    check_name,
    coalesce(sum(observations) FILTER (WHERE passed), 0) AS passed,
    coalesce(sum(observations) FILTER (WHERE NOT passed), 0) AS failed,
    coalesce(sum(observations) FILTER (WHERE passed), 0)
        / nullif(sum(observations) FILTER (WHERE passed IS NOT NULL), 0) AS pass_rate
FROM counted
GROUP BY config_id, day_us, check_name
