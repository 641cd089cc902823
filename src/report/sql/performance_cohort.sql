-- The rows of indicator_base that any indicator of program year {{py}} can use: the Q2
-- cohort, the Q4 cohort, and periods active during the year. performance.sql reads
-- this (materialized once in memory as `cohort`) many times, so the Parquet files are
-- scanned and the program rows built once per report instead of once per indicator.
SELECT *
FROM indicator_base
WHERE q2_cohort_py = {{py}}
   OR q4_cohort_py = {{py}}
   OR (entry_date <= {{py_end}} AND (exit_date IS NULL OR exit_date >= {{py_start}}))
