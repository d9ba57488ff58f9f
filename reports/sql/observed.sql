-- Observations as polled, in time order per number (`seq`). An `ok` poll is an observation of
-- its body: a distinct (config_id, checked_at), since Kapso's cache repeats a body for 3
-- minutes. A failed or skipped poll is an observation of an unknown state at its `polled_at`.
-- Times are microseconds since 1970 (UTC); `day_us` is the observation's UTC midnight.
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
    SELECT * FROM polled
    WHERE ok
    QUALIFY row_number() OVER (PARTITION BY config_id, at_us ORDER BY polled_us) = 1
),
observed AS (
    SELECT * FROM bodies
    UNION ALL
    SELECT * FROM polled WHERE NOT ok
)
SELECT
    config_id,
    at_us,
    at_us // {DAY} * {DAY} AS day_us,
    CASE WHEN ok THEN coalesce(states.state, {UNKNOWN}) ELSE {UNKNOWN} END AS state,
    ok,
    CASE WHEN ok THEN quality_rating END AS quality_rating,
    CASE WHEN ok THEN can_send_message END AS can_send_message,
    CASE WHEN ok THEN phone_status END AS phone_status,
    row_number() OVER (PARTITION BY config_id ORDER BY at_us, NOT ok, polled_us) AS seq
FROM observed
LEFT JOIN report_states AS states USING (status)
