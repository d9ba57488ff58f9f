-- Each number's newest listing (the `numbers` table, every listing up to the report's last
-- day): the roll-ups' customer and WABA, and the names a number's polls lack. A listing without
-- a time counts as the newest, as a sort that puts missing times last would keep it.
SELECT *
FROM numbers
QUALIFY row_number() OVER (
    PARTITION BY config_id ORDER BY listed_at DESC NULLS FIRST
) = 1
