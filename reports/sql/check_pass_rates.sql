-- Per number, day and check name (any name, also new ones): observations in which the check
-- passed and failed, and the pass rate. A check counts once per observation (distinct
-- `checked_at`, a missing one counting as one): only the checks of `repeated_bodies` (and
-- those without a time) need telling apart. `passed` null is neither. A row counts on its
-- observation's day when that is the day it was polled (the day whose files hold it).
WITH dated AS (
    SELECT
        config_id,
        check_name,
        passed,
        epoch_us(checked_at) AS checked_us,
        epoch_us(coalesce(checked_at, polled_at)) // {DAY} * {DAY} AS day_us
    FROM checks
    WHERE epoch_us(coalesce(checked_at, polled_at)) // {DAY} = epoch_us(polled_at) // {DAY}
),
in_range AS (
    SELECT * FROM dated WHERE day_us IN (SELECT day_us FROM report_days)
),
apart AS (  -- the checks that may repeat an observation's
    SELECT * FROM in_range SEMI JOIN repeated_bodies USING (config_id, checked_us)
    UNION ALL
    SELECT * FROM in_range WHERE checked_us IS NULL
),
counted AS (
    SELECT config_id, day_us, check_name, passed, count(*) AS observations
    FROM in_range
    ANTI JOIN repeated_bodies USING (config_id, checked_us)
    WHERE checked_us IS NOT NULL
    GROUP BY config_id, day_us, check_name, passed
    UNION ALL
    SELECT
        config_id,
        day_us,
        check_name,
        passed,
        count(DISTINCT checked_us) + (count(*) > count(checked_us))::INTEGER
    FROM apart
    GROUP BY config_id, day_us, check_name, passed
)
SELECT
    config_id,
    day_us,
    check_name,
    CAST(coalesce(sum(observations) FILTER (WHERE passed), 0) AS BIGINT) AS passed,
    CAST(coalesce(sum(observations) FILTER (WHERE NOT passed), 0) AS BIGINT) AS failed,
    coalesce(sum(observations) FILTER (WHERE passed), 0)
        / nullif(sum(observations) FILTER (WHERE passed IS NOT NULL), 0) AS pass_rate
FROM counted
GROUP BY config_id, day_us, check_name
