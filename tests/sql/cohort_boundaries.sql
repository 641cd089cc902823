-- Cohort years at the boundaries: 30 June / 1 July (Q2 cohort) and 31 December /
-- 1 January (Q4 cohort), for the Adult periods of the fixture.
SELECT person_key, exit_date, q2_cohort_py, q4_cohort_py
FROM indicator_base
WHERE program = 'Adult' AND person_key IN ('FXP000000001', 'FXP000000002', 'FXP000000003',
    'FXP000000004', 'FXP000000005', 'FXP000000006', 'FXP000000011', 'FXP000000012')
ORDER BY exit_date
