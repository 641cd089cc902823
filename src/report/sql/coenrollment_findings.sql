-- Missouri P13 co-enrolment findings: one row per participant period and rule broken,
-- for case managers to act on (person_key is the pseudonymous PIRL 100 key).
--   staff_assisted_without_wagner_peyser  a staff-assisted service that triggers
--       participation (service_catalog: not one of the 13 self-service/informational
--       basic career services) with no W-P enrolment on the period
--   taa_without_dislocated_worker         TAA participant, not in DW, and did not decline
--       DW co-enrolment (20 CFR 618.325)
--   ndwg_without_dislocated_worker        NDWG participant not in DW (eligibility is for
--       the case manager to confirm)
--   snap_et_training_without_adult        SNAP E&T (SkillUP) participant who received
--       training (a training service, or a training type other than 00) not in Adult
WITH triggering AS (
    SELECT s.person_key, s.entry_date, MIN(s.service_date) AS service_date
    FROM services s
    JOIN service_catalog c ON c.code = s.service_code
    WHERE s.staff_assisted AND c.triggers_participation
    GROUP BY s.person_key, s.entry_date
),
training AS (
    SELECT s.person_key, s.entry_date, MIN(s.service_date) AS service_date
    FROM services s
    JOIN service_catalog c ON c.code = s.service_code
    WHERE c.kind = 'training'
    GROUP BY s.person_key, s.entry_date
)
SELECT p.person_key, 'staff_assisted_without_wagner_peyser' AS rule, p.local_area,
    p.program_year, p.entry_date, p.exit_date, t.service_date
FROM participants p
JOIN triggering t ON t.person_key = p.person_key AND t.entry_date = p.entry_date
WHERE COALESCE(p.wagner_peyser, 0) <> 1
UNION ALL
SELECT p.person_key, 'taa_without_dislocated_worker', p.local_area,
    p.program_year, p.entry_date, p.exit_date, CAST(NULL AS DATE)
FROM participants p
WHERE p.taa = 1 AND COALESCE(p.dislocated_worker, 0) <> 1 AND COALESCE(p.taa_declined_dw, 0) <> 1
UNION ALL
SELECT p.person_key, 'ndwg_without_dislocated_worker', p.local_area,
    p.program_year, p.entry_date, p.exit_date, CAST(NULL AS DATE)
FROM participants p
WHERE p.ndwg = 1 AND COALESCE(p.dislocated_worker, 0) <> 1
UNION ALL
SELECT p.person_key, 'snap_et_training_without_adult', p.local_area,
    p.program_year, p.entry_date, p.exit_date, t.service_date
FROM participants p
LEFT JOIN training t ON t.person_key = p.person_key AND t.entry_date = p.entry_date
WHERE p.snap_et = 1 AND COALESCE(p.adult, 0) <> 1
  AND (t.service_date IS NOT NULL OR COALESCE(p.training_type, '00') <> '00')
