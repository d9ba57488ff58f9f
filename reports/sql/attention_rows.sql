-- The rows of some days' checks or entities (`day_rows`) that belong to the observations
-- needing attention (`attention_keys`: config_id, polled_at), in no fixed order: a day of a
-- large fleet is millions of rows, of which a few are wanted, and the scan reads only those.
SELECT * FROM day_rows SEMI JOIN attention_keys USING (config_id, polled_at)
