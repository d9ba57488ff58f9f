-- Per number, the newest known `verified_name` and `display_phone_number` among its polls (a
-- missing value in a newer poll does not hide an older one: arg_max skips nulls).
SELECT
    config_id,
    arg_max(verified_name, polled_at) AS verified_name,
    arg_max(display_phone_number, polled_at) AS display_phone_number
FROM polls
GROUP BY config_id
