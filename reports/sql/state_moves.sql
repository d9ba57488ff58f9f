-- Per number known both a day before the end and at the end: its newest known observation
-- before each, when any state or its trouble differs between them.
WITH now AS (SELECT * FROM newest_known WHERE NOT before),
before AS (SELECT * FROM newest_known WHERE before)
SELECT
    config_id,
    now.project,
    now.problems,
    before.status AS old_status,
    now.status AS new_status,
    before.quality_rating AS old_quality_rating,
    now.quality_rating AS new_quality_rating,
    before.can_send_message AS old_can_send_message,
    now.can_send_message AS new_can_send_message,
    before.passed_webhook_verified AS old_passed_webhook_verified,
    now.passed_webhook_verified AS new_passed_webhook_verified,
    before.phone_status AS old_phone_status,
    now.phone_status AS new_phone_status,
    before.severity AS old_severity,
    now.severity AS new_severity
FROM now
JOIN before USING (config_id)
WHERE (before.status, before.quality_rating, before.can_send_message,
        before.passed_webhook_verified, before.phone_status, before.severity)
    IS DISTINCT FROM (now.status, now.quality_rating, now.can_send_message,
        now.passed_webhook_verified, now.phone_status, now.severity)
