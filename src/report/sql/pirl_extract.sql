-- The participant periods a PIRL file for program year {{py}} carries: every period
-- active during the year, and every period that exited into one of the year's indicator
-- cohorts (Q4 and credential cohort: exits from 1 January of {{py}} - 1; Q2 and median
-- earnings: from 1 July of {{py}} - 1), so the file alone yields every indicator of the
-- year. Which columns become which elements is `schemas/pirl.toml`'s business.
SELECT *
FROM participants
WHERE entry_date <= {{py_end}}
  AND (exit_date IS NULL OR exit_date >= make_date({{py}} - 1, 1, 1))
-- Exit date and area order periods that start on one day (a co-enrolment), so a rerun
-- prints them in the same order.
ORDER BY person_key, entry_date, exit_date, local_area
