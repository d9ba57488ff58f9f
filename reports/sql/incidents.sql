-- Maximal runs of `down` (kind `down`) and of BLOCKED messaging (kind `blocked`) per number.
-- An incident starts at its first bad observation and ends at the first good one after it;
-- unknown observations in between neither end nor extend it. Without a recovery it is
-- `ongoing` and lasts until its last bad observation stops holding.
WITH known AS (
    SELECT {DOWN} AS kind, config_id, seq, at_us, max_gap_us, state = {DOWN} AS bad,
        down_before AS bad_before, next_known_state_us AS next_known_us
    FROM observations
    WHERE state IN {KNOWN_STATES}
    UNION ALL
    SELECT 'blocked', config_id, seq, at_us, max_gap_us, can_send_message = {BLOCKED},
        blocked_before, next_known_messaging_us
    FROM observations
    WHERE can_send_message IN {MESSAGING}
),
edges AS (  -- where a run starts, and each number's last known observation
    SELECT *, bad IS DISTINCT FROM bad_before AS starts_run, next_known_us IS NULL AS is_last
    FROM known
    WHERE bad IS DISTINCT FROM bad_before OR next_known_us IS NULL
),
bad_runs AS (  -- each bad run's start, with the next edge: its recovery, or its last row
    SELECT
        *,
        lead(starts_run) OVER by_number AS recovers,
        lead(at_us) OVER by_number AS next_us,
        lead(at_us + max_gap_us) OVER by_number AS next_stops_holding_us
    FROM edges
    WINDOW by_number AS (PARTITION BY kind, config_id ORDER BY seq)
    QUALIFY bad AND starts_run
),
ended AS (
    SELECT
        *,
        CASE
            WHEN recovers THEN next_us
            ELSE coalesce(next_stops_holding_us, at_us + max_gap_us)
        END AS end_us
    FROM bad_runs
)
SELECT
    kind || ':' || config_id || ':' || strftime(make_timestamp(at_us), '%Y-%m-%dT%H:%M:%SZ')
        AS incident_id,
    kind,
    config_id,
    at_us AS start_us,
    end_us,
    NOT coalesce(recovers, false) AS ongoing,
    (end_us - at_us) / 1e6 AS duration_seconds
FROM ended
