-- The time basis this database's marts are bucketed by.
SELECT value FROM mart_settings WHERE name = 'time_basis'
