-- One person's cross-matches for the evidence printout: per participant period and linked
-- agency record, the details Ohio WIOAPL 15-07.1 VI.C.4 asks of a cross-match (date of
-- the eligibility determination, period of participation, benefit or service rendered),
-- how the record was matched (pass, and the match weight of a probabilistic link) and the
-- verdict. {{match_score}} is `match_score`, or NULL for a snapshot written before the
-- evidence dataset carried it. {{person_key}}: a parsed person key.
SELECT entry_date, source, program, determination_date, period_start, period_end,
    benefit_type, match_pass, {{match_score}} AS match_score, sufficient, verdict
FROM evidence
WHERE person_key = '{{person_key}}'
-- Every column orders, so two matches that tie on the dates still print in one order.
ORDER BY entry_date, source, determination_date, period_start, period_end, program,
    benefit_type, match_pass, match_score, sufficient, verdict
