-- Cross-match evidence found but insufficient (Ohio WIOAPL 15-07.1), by source and verdict.
SELECT 'evidence insufficient' AS section, source || ': ' || verdict AS item,
    CAST(COUNT(*) AS BIGINT) AS count,
    CAST(NULL AS BIGINT) AS of_total
FROM evidence
WHERE NOT sufficient
GROUP BY source, verdict
ORDER BY item
