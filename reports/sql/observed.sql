-- Observations as polled. An `ok` poll is an observation of its body: one per (config_id,
-- checked_at), since Kapso's cache repeats a body for 3 minutes (`polls_of_body`
-- counts its polls).
-- A failed or skipped poll is an observation of an unknown state at its `polled_at`. Times are
-- microseconds since 1970 (UTC); `day_us` is the observation's UTC midnight.
WITH polled AS (
    SELECT
        config_id,
        coalesce(outcome = {OK}, false) AS ok,
        epoch_us(polled_at) AS polled_us,
        epoch_us(
            CASE WHEN outcome = {OK} THEN coalesce(checked_at, polled_at) ELSE polled_at END
        ) AS at_us,
        status,
        quality_rating,
        can_send_message,
        phone_status
    FROM polls
),
bodies AS (
    SELECT
        config_id,
        at_us,
        true AS ok,
        min(polled_us) AS polled_us,
        count(*) AS polls_of_body,
        any_value(status) AS status,  -- a body's polls agree: it is one body
        any_value(quality_rating) AS quality_rating,
        any_value(can_send_message) AS can_send_message,
        any_value(phone_status) AS phone_status
    FROM polled
    WHERE ok
    GROUP BY config_id, at_us
),
failed AS (
    SELECT config_id, at_us, ok, polled_us, 1 AS polls_of_body, NULL AS status, NULL AS quality_rating,
        NULL AS can_send_message, NULL AS phone_status
    FROM polled
    WHERE NOT ok
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
FROM (SELECT * FROM bodies UNION ALL SELECT * FROM failed) AS observed
LEFT JOIN report_states AS states USING (status)
