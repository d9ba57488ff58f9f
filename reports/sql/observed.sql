-- The polls as observations: an `ok` poll observes its body at `checked_at`; a failed or
-- skipped poll is an observation of an unknown state at its `polled_at`. One row per poll: a
-- body Kapso's cache repeated (3 minutes, the same `checked_at`) is folded into one by
-- `ordered`. Times are microseconds since 1970 (UTC); `day_us` is the observation's UTC
-- midnight.
WITH polled AS (
    SELECT
        *,
        coalesce(outcome = {OK}, false) AS ok,
        epoch_us(
            CASE WHEN outcome = {OK} THEN coalesce(checked_at, polled_at) ELSE polled_at END
        ) AS at_us
    FROM polls
)
SELECT
    config_id,
    at_us,
    at_us // {DAY} * {DAY} AS day_us,
    CAST(
        CASE WHEN ok THEN coalesce(states.state, {UNKNOWN}) ELSE {UNKNOWN} END AS report_state
    ) AS state,
    ok,
    CASE WHEN ok THEN quality_rating END AS quality_rating,
    CASE WHEN ok THEN can_send_message END AS can_send_message,
    CASE WHEN ok THEN phone_status END AS phone_status,
    epoch_us(polled_at) AS polled_us
FROM polled
LEFT JOIN report_states AS states USING (status)
