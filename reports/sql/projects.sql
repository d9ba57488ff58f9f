-- The Kapso project of each number: that of its latest poll; polls from before the column
-- existed are the default project.
SELECT config_id, coalesce(arg_max_null(project, polled_at), {DEFAULT_PROJECT}) AS project
FROM polls
GROUP BY config_id
