-- Participant periods: no SSN on file (known by a temporary ID), self-reported statuses
-- contradicted by sufficient cross-match evidence, and records entered more than 30 days
-- after the information was obtained (Ohio WIOAPL 15-07.1).
WITH p AS (SELECT * FROM participants),
n AS (SELECT COUNT(*) AS total FROM p)
SELECT 'identity' AS section, 'periods without an SSN (temporary ID)' AS item,
    CAST(SUM(CASE WHEN NOT has_ssn THEN 1 ELSE 0 END) AS BIGINT) AS count,
    CAST(MAX(n.total) AS BIGINT) AS of_total
FROM p CROSS JOIN n
UNION ALL
SELECT 'self-report contradicted', 'SNAP', CAST(SUM(CASE WHEN snap_status_disagrees THEN 1 ELSE 0 END) AS BIGINT), CAST(MAX(n.total) AS BIGINT) FROM p CROSS JOIN n
UNION ALL
SELECT 'self-report contradicted', 'TANF', CAST(SUM(CASE WHEN tanf_status_disagrees THEN 1 ELSE 0 END) AS BIGINT), CAST(MAX(n.total) AS BIGINT) FROM p CROSS JOIN n
UNION ALL
SELECT 'self-report contradicted', 'UI claimant', CAST(SUM(CASE WHEN ui_claimant_status_disagrees THEN 1 ELSE 0 END) AS BIGINT), CAST(MAX(n.total) AS BIGINT) FROM p CROSS JOIN n
UNION ALL
SELECT 'self-report contradicted', 'TAA', CAST(SUM(CASE WHEN taa_status_disagrees THEN 1 ELSE 0 END) AS BIGINT), CAST(MAX(n.total) AS BIGINT) FROM p CROSS JOIN n
UNION ALL
SELECT 'timeliness', 'entered more than 30 days after information obtained',
    CAST(SUM(CASE WHEN entered_date > info_obtained_date + INTERVAL '30 days' THEN 1 ELSE 0 END) AS BIGINT),
    CAST(MAX(n.total) AS BIGINT)
FROM p CROSS JOIN n
