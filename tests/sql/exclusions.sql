-- Exclusions live in one table: 01-04 for every program, 05 for Youth only. Y3 (05) is
-- excluded as Youth but not as Wagner-Peyser; P10 (05) is not excluded as Adult; D2 (06)
-- is not excluded.
SELECT program, person_key, exit_reason, excluded, exclusion_reason
FROM indicator_base
WHERE exit_reason IS NOT NULL
ORDER BY person_key, program
