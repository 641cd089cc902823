-- The span of dates the published participant periods cover. A program year outside it
-- has no data: a period without an exit counts as active in every later year, which
-- must not turn a report on a year that has not begun into one of those periods alone.
SELECT
    min(entry_date) AS first_date,
    max(CASE WHEN exit_date > entry_date THEN exit_date ELSE entry_date END) AS last_date
FROM participants
