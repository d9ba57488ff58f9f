"""kapso-health: Prefect flows that keep a Parquet history of Kapso WhatsApp number health."""
