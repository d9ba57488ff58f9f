-- The observations in time order per number (`seq`), with what each needs of its neighbours,
-- in one pass: the interval since the one before (`step_us`, for the cadence), the next one's
-- time (`next_us`, until when it holds), the last rating and phone status before it (for
-- transitions), and whether the last known state (messaging) before it was bad and when the
-- next known one comes (for incidents).
SELECT
    *,
    row_number() OVER in_time AS seq,
    at_us - lag(at_us) OVER in_time AS step_us,
    lead(at_us) OVER in_time AS next_us,
    lag(quality_rating IGNORE NULLS) OVER in_time AS quality_rating_before,
    lag(phone_status IGNORE NULLS) OVER in_time AS phone_status_before,
    lag(CASE WHEN state IN {KNOWN_STATES} THEN state = {DOWN} END IGNORE NULLS) OVER in_time
        AS down_before,
    lead(CASE WHEN state IN {KNOWN_STATES} THEN at_us END IGNORE NULLS) OVER in_time
        AS next_known_state_us,
    lag(
        CASE WHEN can_send_message IN {MESSAGING} THEN can_send_message = {BLOCKED} END
        IGNORE NULLS
    ) OVER in_time AS blocked_before,
    lead(CASE WHEN can_send_message IN {MESSAGING} THEN at_us END IGNORE NULLS) OVER in_time
        AS next_known_messaging_us
FROM observed
WINDOW in_time AS (PARTITION BY config_id ORDER BY at_us, NOT ok, polled_us)
