-- Each incident once per UTC day it touches, with the seconds it lasted that day.
WITH spans AS (
    SELECT
        *,
        start_us // {DAY} * {DAY} AS first_day_us,
        greatest(1, (end_us - start_us // {DAY} * {DAY} + {DAY} - 1) // {DAY}) AS days
    FROM incidents
),
touched AS (
    SELECT *, first_day_us + {DAY} * unnest(range(days)) AS day_us FROM spans
)
SELECT
    * EXCLUDE (first_day_us, days),
    (least(end_us, day_us + {DAY}) - greatest(start_us, day_us)) / 1e6 AS seconds_in_day
FROM touched
