-- indicator_base: one row per participant period per WIOA program it was enrolled in
-- (a period in Adult and Wagner-Peyser counts once in each), with everything the
-- indicators need and no program-year parameter, so `xmatch query` can read it too.
--
--   q2_cohort_py   the report year whose Q2 / median cohort holds this exit: exits
--                  1 Jul PY-1 .. 30 Jun PY, i.e. (program year of the exit) + 1
--   q4_cohort_py   the report year whose Q4 / credential cohort holds it: exits
--                  1 Jan PY-1 .. 31 Dec PY-1, i.e. (calendar year of the exit) + 1
--   exit_quarter   calendar quarter of the exit (YYYYQn): the "by quarter" breakdown
--   excluded       exit reason in exclusion_rules for this program
--   sex_group, age_group, race_group   breakdowns that partition the cohort
--   co_enrolled    the period is in two or more programs (of the seven the export flags)
WITH periods AS (
    SELECT
        p.*,
        CAST(date_part('year', p.exit_date) AS INT) AS exit_year,
        CAST(date_part('month', p.exit_date) AS INT) AS exit_month
    FROM participants p
),
programs AS (
    SELECT program FROM (VALUES ('Adult'), ('Dislocated Worker'), ('Youth'), ('Wagner-Peyser')) AS t(program)
),
by_program AS (
    SELECT pr.program, pe.*
    FROM periods pe
    CROSS JOIN programs pr
    WHERE (pr.program = 'Adult' AND pe.adult = 1)
       OR (pr.program = 'Dislocated Worker' AND pe.dislocated_worker = 1)
       OR (pr.program = 'Youth' AND pe.youth = 1)
       OR (pr.program = 'Wagner-Peyser' AND pe.wagner_peyser = 1)
)
SELECT
    b.program,
    b.person_key,
    b.program_year AS entry_program_year,
    b.local_area,
    b.entry_date,
    b.exit_date,
    b.exit_reason,
    CASE WHEN b.exit_date IS NULL THEN NULL
         WHEN b.exit_month >= 7 THEN b.exit_year + 1
         ELSE b.exit_year END AS q2_cohort_py,
    b.exit_year + 1 AS q4_cohort_py,
    CASE WHEN b.exit_date IS NULL THEN NULL
         ELSE CAST(b.exit_year AS VARCHAR) || 'Q' || CAST((b.exit_month + 2) / 3 AS VARCHAR)
    END AS exit_quarter,
    r.reason IS NOT NULL AS excluded,
    r.reason AS exclusion_reason,
    CASE b.sex WHEN '1' THEN 'Male' WHEN '2' THEN 'Female' ELSE 'Did not self-identify' END AS sex_group,
    CASE WHEN b.age_at_entry IS NULL THEN 'Unknown'
         WHEN b.age_at_entry < 16 THEN 'Under 16'
         WHEN b.age_at_entry <= 18 THEN '16-18'
         WHEN b.age_at_entry <= 24 THEN '19-24'
         WHEN b.age_at_entry <= 44 THEN '25-44'
         WHEN b.age_at_entry <= 54 THEN '45-54'
         WHEN b.age_at_entry <= 59 THEN '55-59'
         ELSE '60 and over' END AS age_group,
    -- Mutually exclusive, so the groups add up to the total (which complementary
    -- suppression relies on): Hispanic first, then one race, else two or more.
    CASE WHEN b.ethnicity_hispanic = '1' THEN 'Hispanic or Latino'
         WHEN COALESCE(b.race_aian, 0) + COALESCE(b.race_asian, 0) + COALESCE(b.race_black, 0)
              + COALESCE(b.race_nhpi, 0) + COALESCE(b.race_white, 0) >= 2 THEN 'Two or more races'
         WHEN b.race_aian = 1 THEN 'American Indian or Alaska Native'
         WHEN b.race_asian = 1 THEN 'Asian'
         WHEN b.race_black = 1 THEN 'Black or African American'
         WHEN b.race_nhpi = 1 THEN 'Native Hawaiian or Pacific Islander'
         WHEN b.race_white = 1 THEN 'White'
         ELSE 'Not reported' END AS race_group,
    COALESCE(b.low_income, 0) = 1 AS barrier_low_income,
    COALESCE(b.homeless, 0) = 1 AS barrier_homeless,
    COALESCE(b.ex_offender, 0) = 1 AS barrier_ex_offender,
    COALESCE(b.english_learner, 0) = 1 AS barrier_english_learner,
    COALESCE(b.basic_skills_deficient, 0) = 1 AS barrier_basic_skills_deficient,
    COALESCE(b.single_parent, 0) = 1 AS barrier_single_parent,
    b.disability = '1' AS barrier_disability,
    COALESCE(b.adult, 0) + COALESCE(b.dislocated_worker, 0) + COALESCE(b.youth, 0)
        + COALESCE(b.wagner_peyser, 0) + COALESCE(b.snap_et, 0) + COALESCE(b.ndwg, 0)
        + COALESCE(b.taa, 0) >= 2 AS co_enrolled,
    b.training_type,
    b.edu_enrollment_date,
    b.edu_completion_date,
    b.postsecondary_enrollment_date,
    b.credential_type,
    b.credential_date,
    b.msg_edu_level_date,
    b.msg_postsec_transcript_date,
    b.msg_secondary_transcript_date,
    b.msg_training_milestone_date,
    b.msg_skills_progression_date,
    b.youth_placement_q2,
    b.youth_placement_q4,
    b.employed_q1,
    b.employed_q2,
    b.employed_q3,
    b.employed_q4,
    b.wages_q2,
    b.retention_same_employer
FROM by_program b
LEFT JOIN exclusion_rules r
    ON r.exit_reason = b.exit_reason AND (r.program = '*' OR r.program = b.program)
