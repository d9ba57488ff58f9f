-- Maximal runs of `down` (kind `down`) and of BLOCKED messaging (kind `blocked`) per number.
-- An incident starts at its first bad observation and ends at the first good one after it;
-- unknown observations in between neither end nor extend it. Without a recovery it is
-- `ongoing` and lasts until its last bad observation stops holding. Only the first and last
-- observation of each stretch of equal values can start or end a run: the rest are left out.
WITH known AS (
    SELECT {DOWN} AS kind, config_id, seq, at_us, max_gap_us, state = {DOWN} AS bad
    FROM observations
    WHERE state IN {KNOWN_STATES} AND state_edge
    UNION ALL
    SELECT 'blocked', config_id, seq, at_us, max_gap_us, can_send_message = {BLOCKED}
    FROM observations
    WHERE can_send_message IN {MESSAGING} AND can_send_message_edge
),
marked AS (  -- `run`: the last good observation up to this one (null: none yet)
    SELECT
        *,
        lead(at_us) OVER by_number AS next_us,
        max(CASE WHEN NOT bad THEN seq END) OVER by_number AS run
    FROM known
    WINDOW by_number AS (PARTITION BY kind, config_id ORDER BY seq)
),
bad_runs AS (
    SELECT
        kind,
        config_id,
        min(at_us) AS start_us,
        arg_max_null(next_us, seq) AS recovered_us,  -- the first good observation; null: open
        max(at_us) + arg_max(max_gap_us, seq) AS stops_holding_us
    FROM marked
    WHERE bad
    GROUP BY kind, config_id, run
)
SELECT
    kind || ':' || config_id || ':' || strftime(make_timestamp(start_us), '%Y-%m-%dT%H:%M:%SZ')
        AS incident_id,
    kind,
    config_id,
    start_us,
    coalesce(recovered_us, stops_holding_us) AS end_us,
    recovered_us IS NULL AS ongoing,
    (coalesce(recovered_us, stops_holding_us) - start_us) / 1e6 AS duration_seconds
FROM bad_runs
