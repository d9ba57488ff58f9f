-- The observations in time order per number (`seq`), in one pass with what later pieces need
-- of the neighbours: the interval since the one before (`step_us`, for the cadence), the next
-- one's time (`next_us`, until when it holds), and where each of the state, messaging, rating
-- and phone status columns starts or ends a stretch of equal values (`<column>_edge`): only
-- those rows can start, end or change anything in incidents and transitions.
SELECT
    *,
    row_number() OVER in_time AS seq,
    at_us - lag(at_us) OVER in_time AS step_us,
    lead(at_us) OVER in_time AS next_us,
    state IS DISTINCT FROM lag(state) OVER in_time
        OR state IS DISTINCT FROM lead(state) OVER in_time AS state_edge,
    can_send_message IS DISTINCT FROM lag(can_send_message) OVER in_time
        OR can_send_message IS DISTINCT FROM lead(can_send_message) OVER in_time
        AS can_send_message_edge,
    quality_rating IS DISTINCT FROM lag(quality_rating) OVER in_time AS quality_rating_edge,
    phone_status IS DISTINCT FROM lag(phone_status) OVER in_time AS phone_status_edge
FROM observed
WINDOW in_time AS (PARTITION BY config_id ORDER BY at_us, NOT ok, polled_us)
