-- One row per number whose newest known observation before the end is in trouble: since its
-- first troubled observation after its last good one (or since the first one read, when none
-- was good), with that last good observation.
WITH troubled AS (
    SELECT * EXCLUDE (before) FROM newest_known WHERE NOT before AND severity IS NOT NULL
),
since AS (
    SELECT config_id, min(known.at_us) AS since_us
    FROM known_observations AS known
    JOIN troubled USING (config_id)
    WHERE known.severity IS NOT NULL
        AND (troubled.good_us IS NULL OR known.at_us > troubled.good_us)
    GROUP BY config_id
)
SELECT
    config_id,
    project,
    severity,
    problems,
    since_us,
    good_us IS NOT NULL AS since_known,
    ((SELECT end_us FROM report_period) - since_us) / 1e6 AS seconds,
    at_us AS checked_at_us,
    polled_at_us,
    status,
    quality_rating,
    can_send_message,
    passed_webhook_verified,
    phone_status,
    good_us AS last_good_at_us,
    good_status AS last_good_status
FROM troubled
JOIN since USING (config_id)
