-- Each number's newest known observation before the end (`before = false`) and before the day
-- before the end (`before = true`), with its troubles in words (`problems`, worst first); of a
-- body's repeats, the last polled. Both rows carry the number's last good observation before
-- the end (`good_us`, `good_status`; null when none was read). Aggregates per number, in one
-- pass: the known observations are not kept (`needs_attention` reads them once more).
WITH keyed AS (  -- `recency`: (at_us, polled_at_us) in one 128-bit integer that sorts as
    -- the pair does, a missing polled time last (compared faster than the pair)
    SELECT
        known,
        config_id,
        at_us,
        severity,
        status,
        -- at_us in the high 64 bits (x 2 ** 64), polled_at_us made non-negative in the low ones
        at_us::HUGEINT * 18446744073709551616
            + (coalesce(polled_at_us, 9223372036854775807)::HUGEINT + 9223372036854775808)
            AS recency
    FROM known_observations AS known
),
per_number AS (
    SELECT
        config_id,
        arg_max(known, recency) AS newest,
        arg_max(known, recency) FILTER (WHERE at_us < day_before_us) AS newest_before,
        max(at_us) FILTER (WHERE severity IS NULL) AS good_us,
        arg_max(status, recency) FILTER (WHERE severity IS NULL) AS good_status
    FROM keyed, (SELECT end_us - {DAY} AS day_before_us FROM report_period)
    GROUP BY config_id
),
newest AS (
    SELECT false AS before, unnest(newest), good_us, good_status FROM per_number
    UNION ALL
    SELECT true, unnest(newest_before), good_us, good_status
    FROM per_number
    WHERE newest_before IS NOT NULL
)
SELECT *, {PROBLEMS} AS problems
FROM newest
