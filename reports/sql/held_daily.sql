-- Per number and report day, how long its observations held each state, messaging value and
-- rating (`<value>_us`, null when none did; `rated_us`: any rating), from the day's pieces: the
-- time sums availability and quality divide. A number holding only unknown time has a row.
SELECT
    config_id,
    day_us,
    sum(end_us - start_us) FILTER (WHERE state = {UP}) AS up_us,
    sum(end_us - start_us) FILTER (WHERE state = {DEGRADED}) AS degraded_us,
    sum(end_us - start_us) FILTER (WHERE state = {DOWN}) AS down_us,
    sum(end_us - start_us) FILTER (WHERE can_send_message = {AVAILABLE}) AS available_us,
    sum(end_us - start_us) FILTER (WHERE can_send_message = {LIMITED}) AS limited_us,
    sum(end_us - start_us) FILTER (WHERE can_send_message = {BLOCKED}) AS blocked_us,
    {SECONDS_BY_RATING},
    sum(end_us - start_us) FILTER (WHERE quality_rating IS NOT NULL) AS rated_us
FROM pieces
WHERE day_us IN (SELECT day_us FROM report_days)
GROUP BY config_id, day_us
