-- The observations in time order per number (`seq`), in one sorted pass with what later pieces
-- need of the neighbours: the interval since the one before (`step_us`, for the cadence), the
-- next one's time (`next_us`, until when it holds), and where each of the state, messaging,
-- rating and phone status columns starts or ends a stretch of equal values (`<column>_edge`):
-- only those rows can start, end or change anything in incidents and transitions. A body's
-- repeats follow its first poll directly and are folded into it (`polls_of_body`); its last
-- poll knows what follows the body.
WITH sequenced AS (
    SELECT
        *,
        ok AND coalesce(lag(ok) OVER in_time AND lag(at_us) OVER in_time = at_us, false)
            AS is_repeat,
        ok AND coalesce(lead(ok) OVER in_time AND lead(at_us) OVER in_time = at_us, false)
            AS has_repeat,
        row_number() OVER in_time AS seq,
        at_us - lag(at_us) OVER in_time AS step_us,
        lead(at_us) OVER in_time AS next_us,
        state IS DISTINCT FROM lag(state) OVER in_time AS state_starts,
        state IS DISTINCT FROM lead(state) OVER in_time AS state_ends,
        can_send_message IS DISTINCT FROM lag(can_send_message) OVER in_time AS messaging_starts,
        can_send_message IS DISTINCT FROM lead(can_send_message) OVER in_time AS messaging_ends,
        quality_rating IS DISTINCT FROM lag(quality_rating) OVER in_time AS quality_rating_edge,
        phone_status IS DISTINCT FROM lag(phone_status) OVER in_time AS phone_status_edge
    FROM observed
    WINDOW in_time AS (PARTITION BY config_id ORDER BY at_us, NOT ok, polled_us)
),
repeated AS (  -- bodies polled more than once (rare), as their last poll sees what follows
    SELECT
        config_id,
        at_us,
        count(*) AS polls_of_body,
        arg_max_null(next_us, seq) AS next_us,
        arg_max(state_ends, seq) AS state_ends,
        arg_max(messaging_ends, seq) AS messaging_ends
    FROM sequenced
    WHERE is_repeat OR has_repeat
    GROUP BY config_id, at_us
)
SELECT
    first.* EXCLUDE (
        is_repeat, has_repeat, next_us, state_starts, state_ends, messaging_starts,
        messaging_ends
    ),
    CASE WHEN has_repeat THEN repeated.polls_of_body ELSE 1 END AS polls_of_body,
    CASE WHEN has_repeat THEN repeated.next_us ELSE first.next_us END AS next_us,
    state_starts
        OR CASE WHEN has_repeat THEN repeated.state_ends ELSE first.state_ends END
        AS state_edge,
    messaging_starts
        OR CASE WHEN has_repeat THEN repeated.messaging_ends ELSE first.messaging_ends END
        AS can_send_message_edge
FROM sequenced AS first
LEFT JOIN repeated ON has_repeat AND repeated.config_id = first.config_id
    AND repeated.at_us = first.at_us
WHERE NOT is_repeat
