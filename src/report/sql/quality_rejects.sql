-- Rows rejected (ingest) and identity problems (identity stage), by source and reason.
SELECT CASE stage WHEN 'ingest' THEN 'rows rejected' ELSE stage || ' issues' END AS section,
    source || ': ' || reason AS item,
    CAST(rows AS BIGINT) AS count,
    CAST(NULL AS BIGINT) AS of_total
FROM data_quality
ORDER BY section, item
