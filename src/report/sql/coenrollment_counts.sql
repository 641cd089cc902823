-- Findings per rule and local area (reads the coenrollment_findings view).
SELECT rule, local_area, COUNT(*) AS findings, COUNT(DISTINCT person_key) AS persons
FROM coenrollment_findings
GROUP BY rule, local_area
ORDER BY rule, local_area
