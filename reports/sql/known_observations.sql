-- The known observations before the end of the period: `ok` polls with a ranked status
-- (`error` bodies and failed polls say nothing about the number), each with `severity` (its
-- worst trouble's index; null when it is good). A body's repeats are kept: they agree.
SELECT
    config_id,
    coalesce(project, {DEFAULT_PROJECT}) AS project,
    epoch_us(checked_at) AS at_us,
    epoch_us(polled_at) AS polled_at_us,
    status,
    quality_rating,
    can_send_message,
    passed_webhook_verified,
    phone_status,
    {SEVERITY} AS severity
FROM polls
WHERE outcome = {OK}
    AND status IN {STATUS_ORDER}
    AND epoch_us(checked_at) < (SELECT end_us FROM report_period)
