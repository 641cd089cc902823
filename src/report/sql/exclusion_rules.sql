-- exclusion_rules: exiters left out of every indicator's numerator AND denominator
-- (TEGL 10-16, PIRL 923 "other reasons for exit"). `program` = '*' applies to every
-- program; 05 (foster care) excludes Youth only. This is the one place the codes live:
-- indicator_base joins it, and every indicator reads indicator_base.
SELECT exit_reason, program, reason
FROM (VALUES
    ('01', '*', 'institutionalized'),
    ('02', '*', 'health/medical'),
    ('03', '*', 'deceased'),
    ('04', '*', 'reserve or National Guard called to active duty'),
    ('05', 'Youth', 'foster care (youth only)')
) AS t(exit_reason, program, reason)
