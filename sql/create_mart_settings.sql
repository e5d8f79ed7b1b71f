-- Settings the marts of this database were built with, one row per name. `time_basis`: the
-- clock that cuts the 5 s buckets, 'exchange' (event_ts) or 'receive' (ingest_ts); one per
-- database, so no table mixes clocks.
CREATE TABLE IF NOT EXISTS mart_settings (
    name VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
)
