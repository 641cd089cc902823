-- WIOA primary indicators (TEGL 10-16) and participation counts for program year {{py}}.
-- One row per (program, indicator, breakdown, group). `outcome` per cohort member:
-- 1 success, 0 not, NULL = not known yet (its wage quarter is not loaded): such rows are
-- counted as `awaiting`, never as a failure, and kept out of the denominator.
WITH b AS (
    SELECT * FROM cohort WHERE NOT excluded
),
outcomes AS (
    -- Employment rate Q2 after exit: exits 1 Jul PY-1 .. 30 Jun PY. Youth: employed OR
    -- in education/training in Q2 (PIRL 1900); a placement counts even while wages are
    -- unknown.
    SELECT b.*, 'Employment rate Q2' AS indicator,
        CASE WHEN employed_q2 THEN 1
             WHEN program = 'Youth' AND youth_placement_q2 IN ('1', '2', '3') THEN 1
             WHEN employed_q2 IS NULL THEN NULL
             ELSE 0 END AS outcome,
        CASE WHEN employed_q2 THEN CAST(wages_q2 * 100 AS BIGINT) END AS q2_cents
    FROM b WHERE q2_cohort_py = {{py}}
    UNION ALL
    -- Employment rate Q4 after exit: exits 1 Jan .. 31 Dec PY-1.
    SELECT b.*, 'Employment rate Q4',
        CASE WHEN employed_q4 THEN 1
             WHEN program = 'Youth' AND youth_placement_q4 IN ('1', '2', '3') THEN 1
             WHEN employed_q4 IS NULL THEN NULL
             ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM b WHERE q4_cohort_py = {{py}}
    UNION ALL
    -- Credential attainment: Q4 cohort members who were in education or training other
    -- than OJT (01) or customized training (05) only; a postsecondary credential
    -- (types 2-7) between entry and one year after exit, or a secondary diploma (type 1)
    -- plus employment (Q1-Q4) or postsecondary enrolment within that year.
    SELECT b.*, 'Credential attainment rate',
        CASE WHEN credential_date IS NULL OR credential_date < entry_date
                  OR credential_date > exit_date + INTERVAL '1 year' THEN 0
             WHEN credential_type IN ('2', '3', '4', '5', '6', '7') THEN 1
             WHEN credential_type <> '1' THEN 0
             WHEN employed_q1 OR employed_q2 OR employed_q3 OR employed_q4 THEN 1
             WHEN postsecondary_enrollment_date IS NOT NULL
                  AND postsecondary_enrollment_date <= exit_date + INTERVAL '1 year' THEN 1
             WHEN employed_q1 IS NULL OR employed_q2 IS NULL OR employed_q3 IS NULL
                  OR employed_q4 IS NULL THEN NULL
             ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM b
    WHERE q4_cohort_py = {{py}}
      AND ((training_type IS NOT NULL AND training_type NOT IN ('00', '01', '05'))
           OR edu_enrollment_date IS NOT NULL)
    UNION ALL
    -- Measurable skill gains (TEGL 10-16, Change 1 and 2; 20 CFR 677.155(a)(1)(v)):
    --   "the percentage of program participants who, during a program year, are in an
    --   education or training program that leads to a recognized postsecondary
    --   credential or employment and who are achieving measurable skill gains, defined
    --   as documented academic, technical, occupational, or other forms of progress,
    --   towards such a credential or employment. Depending upon the type of education
    --   or training program, documented progress is defined as one of the following:
    --   1. Documented achievement of at least one educational functioning level of a
    --      participant who is receiving instruction below the postsecondary education
    --      level;                                                       -> PIRL 1806
    --   2. Documented attainment of a secondary school diploma or its recognized
    --      equivalent;                          -> PIRL 1800 = 1 with its date 1801
    --   3. Secondary or postsecondary transcript or report card for a sufficient number
    --      of credit hours that shows a participant is meeting the State unit's
    --      academic standards;                            -> PIRL 1808 and 1807
    --   4. Satisfactory or better progress report, towards established milestones, such
    --      as completion of OJT or completion of 1 year of an apprenticeship program or
    --      similar milestones, from an employer or training provider who is providing
    --      training; or                                                 -> PIRL 1809
    --   5. Successful passage of an exam that is required for a particular occupation
    --      or progress in attaining technical or occupational skills as evidenced by
    --      trade-related benchmarks such as knowledge-based exams."     -> PIRL 1810
    -- Denominator: participants during the PY (entry on or before its last day, no exit
    -- before its first) in education or training during it (PIRL 1811 on or before the
    -- PY's last day; 1813 blank or on or after its first), less the exit-reason
    -- exclusions. Numerator: those with at least one gain of the five types dated within
    -- the PY (a participant counts once however many gains). A credential of another
    -- type (1800 = 2-7) is not a skill gain: it counts for credential attainment above.
    SELECT b.*, 'Measurable skill gains rate',
        CASE WHEN msg_edu_level_date BETWEEN {{py_start}} AND {{py_end}}
               OR (credential_type = '1' AND credential_date BETWEEN {{py_start}} AND {{py_end}})
               OR msg_postsec_transcript_date BETWEEN {{py_start}} AND {{py_end}}
               OR msg_secondary_transcript_date BETWEEN {{py_start}} AND {{py_end}}
               OR msg_training_milestone_date BETWEEN {{py_start}} AND {{py_end}}
               OR msg_skills_progression_date BETWEEN {{py_start}} AND {{py_end}}
             THEN 1 ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM b
    WHERE entry_date <= {{py_end}}
      AND (exit_date IS NULL OR exit_date >= {{py_start}})
      AND edu_enrollment_date <= {{py_end}}
      AND (edu_completion_date IS NULL OR edu_completion_date >= {{py_start}})
    UNION ALL
    -- Retention with the same employer (effectiveness in serving employers): Q4 cohort
    -- members employed in Q2; success = the same employer paid wages in Q2 and Q4.
    SELECT b.*, 'Retention with same employer',
        CASE WHEN retention_same_employer THEN 1
             WHEN retention_same_employer IS NULL THEN NULL
             ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM b WHERE q4_cohort_py = {{py}} AND (employed_q2 IS NULL OR employed_q2)
    UNION ALL
    -- ETA-9169 participation: periods served during the PY (exclusions do not apply);
    -- the share that exited in the PY and the share co-enrolled in another program.
    SELECT ib.*, 'Exited during program year',
        CASE WHEN exit_date BETWEEN {{py_start}} AND {{py_end}} THEN 1 ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM cohort ib
    WHERE entry_date <= {{py_end}} AND (exit_date IS NULL OR exit_date >= {{py_start}})
    UNION ALL
    SELECT ib.*, 'Co-enrolled in another program',
        CASE WHEN co_enrolled THEN 1 ELSE 0 END,
        CAST(NULL AS BIGINT)
    FROM cohort ib
    WHERE entry_date <= {{py_end}} AND (exit_date IS NULL OR exit_date >= {{py_start}})
),
grouped AS (
    SELECT program, indicator, 'Total' AS breakdown, 'Total' AS grp, outcome, q2_cents FROM outcomes
    UNION ALL SELECT program, indicator, 'Sex', sex_group, outcome, q2_cents FROM outcomes
    UNION ALL SELECT program, indicator, 'Age at entry', age_group, outcome, q2_cents FROM outcomes
    UNION ALL SELECT program, indicator, 'Race/ethnicity', race_group, outcome, q2_cents FROM outcomes
    -- Exit-based indicators by the calendar quarter of exit: the quarters partition the
    -- cohort, so they are additive like sex or age (complementary suppression applies).
    UNION ALL SELECT program, indicator, 'Exit quarter', exit_quarter, outcome, q2_cents FROM outcomes
        WHERE indicator IN ('Employment rate Q2', 'Employment rate Q4', 'Credential attainment rate', 'Retention with same employer')
    UNION ALL SELECT program, indicator, 'Barrier', 'Low income', outcome, q2_cents FROM outcomes WHERE barrier_low_income
    UNION ALL SELECT program, indicator, 'Barrier', 'Homeless', outcome, q2_cents FROM outcomes WHERE barrier_homeless
    UNION ALL SELECT program, indicator, 'Barrier', 'Ex-offender', outcome, q2_cents FROM outcomes WHERE barrier_ex_offender
    UNION ALL SELECT program, indicator, 'Barrier', 'English language learner', outcome, q2_cents FROM outcomes WHERE barrier_english_learner
    UNION ALL SELECT program, indicator, 'Barrier', 'Basic skills deficient', outcome, q2_cents FROM outcomes WHERE barrier_basic_skills_deficient
    UNION ALL SELECT program, indicator, 'Barrier', 'Single parent', outcome, q2_cents FROM outcomes WHERE barrier_single_parent
    UNION ALL SELECT program, indicator, 'Barrier', 'Individual with a disability', outcome, q2_cents FROM outcomes WHERE barrier_disability
),
cells AS (
    SELECT program, indicator, breakdown, grp,
        CAST(SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END) AS BIGINT) AS numerator,
        CAST(SUM(CASE WHEN outcome IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS denominator,
        CAST(SUM(CASE WHEN outcome IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS awaiting
    FROM grouped
    GROUP BY program, indicator, breakdown, grp
),
-- Median earnings Q2 of those employed in Q2: rank the wages; the median is the middle
-- value, or for an even count the mean of the two middle values (ranks (n+1)/2 and
-- (n+2)/2 in integer division pick one rank for odd n, two for even n). Ties are fine:
-- row_number gives tied wages distinct, adjacent ranks.
ranked AS (
    SELECT program, breakdown, grp, q2_cents,
        row_number() OVER (PARTITION BY program, breakdown, grp ORDER BY q2_cents) AS rn,
        count(*) OVER (PARTITION BY program, breakdown, grp) AS n
    FROM grouped
    WHERE indicator = 'Employment rate Q2' AND q2_cents IS NOT NULL
),
medians AS (
    SELECT program, breakdown, grp,
        CAST(MAX(n) AS BIGINT) AS n,
        AVG(CAST(q2_cents AS DOUBLE)) / 100.0 AS median
    FROM ranked
    WHERE CAST(rn AS BIGINT) IN ((n + 1) / 2, (n + 2) / 2)
    GROUP BY program, breakdown, grp
)
SELECT program, indicator, breakdown, grp, numerator, denominator, awaiting,
    CAST(NULL AS DOUBLE) AS median
FROM cells
UNION ALL
SELECT program, 'Median earnings Q2', breakdown, grp, n AS numerator, n AS denominator, CAST(0 AS BIGINT) AS awaiting, median
FROM medians
