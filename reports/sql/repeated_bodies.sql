-- The bodies polled more than once (Kapso's cache repeats a body for 3 minutes): only their
-- checks can be counted twice.
SELECT config_id, at_us AS checked_us FROM observations WHERE polls_of_body > 1
