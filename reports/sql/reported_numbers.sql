-- The numbers a report on its days lists: observed on one of them, or holding a state into one
-- (observations of the margin days alone do not put a number in the report).
SELECT config_id FROM observations WHERE day_us IN (SELECT day_us FROM report_days)
UNION
SELECT config_id FROM held_daily
