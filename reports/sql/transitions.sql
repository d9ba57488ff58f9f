-- Every change of quality rating or phone status between a number's consecutive observations
-- that carry one. `worse` when the vocabulary ranks the new value worse than the old (the rule
-- of the `kapso.number.worsened` events; `value_ranks` holds its ranks). An observation that
-- repeats the value just before it changes nothing: only the others are paired.
WITH carried AS (
    SELECT 'quality_rating' AS field, config_id, seq, at_us, day_us, quality_rating AS to_value
    FROM observations
    WHERE quality_rating IS NOT NULL AND quality_rating_edge
    UNION ALL
    SELECT 'phone_status', config_id, seq, at_us, day_us, phone_status
    FROM observations
    WHERE phone_status IS NOT NULL AND phone_status_edge
),
paired AS (
    SELECT *, lag(to_value) OVER (PARTITION BY field, config_id ORDER BY seq) AS from_value
    FROM carried
)
SELECT
    config_id,
    at_us,
    day_us,
    paired.field,
    from_value,
    to_value,
    coalesce(after.rank > before.rank, false) AS worse
FROM paired
LEFT JOIN value_ranks AS before ON before.field = paired.field AND before.value = from_value
LEFT JOIN value_ranks AS after ON after.field = paired.field AND after.value = to_value
WHERE from_value <> to_value
