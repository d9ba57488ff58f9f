-- Each number's newest listing (the `numbers` table, every listing up to the report's last
-- day): the roll-ups' customer and WABA, and the names a number's polls lack. A listing without
-- a time counts as the newest, as a sort that puts missing times last would keep it. One
-- aggregate per number: the listings are not kept.
SELECT unnest(arg_max(listing, (listed_at IS NULL, listed_at)))
FROM numbers AS listing
GROUP BY config_id
