-- The known observations before the end of the period: `ok` polls with a ranked status
-- (`error` bodies and failed polls say nothing about the number), one per (number,
-- checked_at), each with `severity` (its worst trouble's index; null when it is good) and
-- `problems` (every trouble it has, worst first).
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
    {SEVERITY} AS severity,
    {PROBLEMS} AS problems
FROM polls
WHERE outcome = {OK}
    AND status IN {STATUS_ORDER}
    AND epoch_us(checked_at) < (SELECT end_us FROM report_period)
QUALIFY row_number() OVER (PARTITION BY config_id, checked_at ORDER BY polled_at DESC) = 1
