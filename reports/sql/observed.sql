-- Observations as polled. An `ok` poll is an observation of its body: one per (config_id,
-- checked_at), since Kapso's cache repeats a body for 3 minutes (`polls_of_body` counts its
-- polls). A failed or skipped poll is an observation of an unknown state at its `polled_at`.
-- Times are microseconds since 1970 (UTC); `day_us` is the observation's UTC midnight.
WITH observed AS (
    SELECT
        config_id,
        epoch_us(coalesce(checked_at, polled_at)) AS at_us,
        true AS ok,
        min(epoch_us(polled_at)) AS polled_us,
        count(*) AS polls_of_body,
        any_value(status) AS status,  -- a body's polls agree: it is one body
        any_value(quality_rating) AS quality_rating,
        any_value(can_send_message) AS can_send_message,
        any_value(phone_status) AS phone_status
    FROM polls
    WHERE outcome = {OK}
    GROUP BY config_id, at_us
    UNION ALL
    SELECT
        config_id,
        epoch_us(polled_at),
        false,
        epoch_us(polled_at),
        1,
        NULL,
        NULL,
        NULL,
        NULL
    FROM polls
    WHERE outcome IS DISTINCT FROM {OK}
)
SELECT
    config_id,
    at_us,
    at_us // {DAY} * {DAY} AS day_us,
    coalesce(states.state, {UNKNOWN}) AS state,
    ok,
    quality_rating,
    can_send_message,
    phone_status,
    polled_us,
    polls_of_body
FROM observed
LEFT JOIN report_states AS states USING (status)
