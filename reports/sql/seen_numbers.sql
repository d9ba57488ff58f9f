-- Per number, from its polls: its Kapso project (that of its latest poll; polls from before the
-- column existed are the default project) and the newest known `verified_name` and
-- `display_phone_number` (a missing value in a newer poll does not hide an older one: arg_max
-- skips nulls).
SELECT
    config_id,
    coalesce(arg_max_null(project, polled_at), {DEFAULT_PROJECT}) AS project,
    arg_max(verified_name, polled_at) AS verified_name,
    arg_max(display_phone_number, polled_at) AS display_phone_number
FROM polls
GROUP BY config_id
