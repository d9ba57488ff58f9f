-- Every change of quality rating or phone status between a number's consecutive observations
-- that carry one. `worse` when the vocabulary ranks the new value worse than the old (the rule
-- of the `kapso.number.worsened` events; `value_ranks` holds its ranks).
WITH changed AS (
    SELECT 'quality_rating' AS field, config_id, at_us, day_us,
        quality_rating_before AS from_value, quality_rating AS to_value
    FROM observations
    WHERE quality_rating <> quality_rating_before
    UNION ALL
    SELECT 'phone_status', config_id, at_us, day_us, phone_status_before, phone_status
    FROM observations
    WHERE phone_status <> phone_status_before
)
SELECT
    config_id,
    at_us,
    day_us,
    changed.field,
    from_value,
    to_value,
    coalesce(after.rank > before.rank, false) AS worse
FROM changed
LEFT JOIN value_ranks AS before ON before.field = changed.field AND before.value = from_value
LEFT JOIN value_ranks AS after ON after.field = changed.field AND after.value = to_value
