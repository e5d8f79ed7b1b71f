-- Record the time basis on the first build. A database already holding mart rows from before
-- the setting existed was built on exchange time, whatever is asked now.
INSERT INTO mart_settings
SELECT
    'time_basis',
    CASE WHEN EXISTS (SELECT 1 FROM mart_l2_5s) THEN 'exchange' ELSE $time_basis END
WHERE NOT EXISTS (SELECT 1 FROM mart_settings WHERE name = 'time_basis')
