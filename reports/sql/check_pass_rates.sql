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
marked AS (  -- `apart_us`: the time of a check that may repeat an observation's
    SELECT
        dated.*,
        checked_us IS NULL OR repeated.config_id IS NOT NULL AS apart,
        CASE WHEN apart THEN checked_us END AS apart_us
    FROM dated
    LEFT JOIN repeated_bodies AS repeated USING (config_id, checked_us)
    WHERE day_us IN (SELECT day_us FROM report_days)
),
counted AS (  -- each check apart once per distinct time (one for those without)
    SELECT
        config_id,
        day_us,
        check_name,
        passed,
        CASE WHEN apart THEN 1 ELSE count(*) END AS observations
    FROM marked
    GROUP BY config_id, day_us, check_name, passed, apart, apart_us
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
