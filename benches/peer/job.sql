-- The peer job of the paired benchmark (issue 13): the cross-match a data engineer would
-- write by hand in DuckDB, over the same incoming Parquet files `xmatch run
-- nightly-crossmatch` reads. `benches/peer/peer.py` runs it; it is not part of xmatch.
--
-- Placeholders, substituted by peer.py before the job runs:
--   @INCOMING@  the directory holding participants.parquet, public_assistance.parquet,
--               ui_claims.parquet, taa.parquet and ui_wages.parquet
--   @OUT@       a fresh, empty output directory
-- The workspace's 32-byte key is passed as the DuckDB variable `peer_key` (64 hex digits,
-- `SET VARIABLE` from the runner, so it is never written to disk in a SQL file).
--
-- The job is split into steps by the `-- step: NAME` lines; peer.py runs them in order
-- on one connection and times each (the whole job is what the benchmark compares).
--
-- What it does:
--   * normalizes SSNs (spaces, dashes and dots removed, a spreadsheet's `.0` dropped,
--     7-8 digits left-padded, the deny-list of well-known fakes and SSA's structural rules:
--     area 000/666/9xx, group 00, serial 0000 -> null), names (accents stripped, upper
--     case, titles and suffixes dropped as words, only A-Z kept, placeholders -> null),
--     dates of birth (ISO, compact, slashed, US month-first; 1900-01-01 .. today) and ZIPs
--     (to ZIP3), like src/identity/{ssn,name,dob,demo}.rs;
--   * makes two prefix-keyed SHA-256 tokens per row: sha256(key || 'ssn:' || ssn) and
--     sha256(key || 'nd:' || last || '|' || first || '|' || dob), the key spelled as its
--     64 hex digits (how a secret usually reaches a SQL job). A token is then two SHA-256
--     compressions, as many as xmatch's pre-keyed HMAC spends;
--   * resolves participant rows into persons: rows sharing an SSN token, or a name+DOB
--     token, are one person (min-label propagation: SSN groups, joined across name+DOB,
--     closed once more over SSN);
--   * links each agency source's rows to persons: on the SSN token, else on a name+DOB
--     token that names exactly one person (wage rows have no DOB: SSN only);
--   * writes de-identified, Hive-partitioned Parquet (zstd) with the person id but no SSN,
--     name, DOB, full ZIP or record id: participants/program_year=…,
--     public_assistance/program_year=…, ui_claims/program_year=…, taa/program_year=…
--     (linked rows only) and quarterly_wages/year_quarter=… (linked rows, employer
--     accounts as keyed tokens).
--
-- What xmatch does and this job does not (so the peer does less work than xmatch):
--   * keyed tokens are HMAC-SHA256 with domain-separated, unambiguous encodings over five
--     rules (ssn, ssn_dob, name_dob, name_dob_zip3, name_init_sex_dob), not two
--     prefix-keyed SHA-256 rules;
--   * a persistent registry in the state store: person keys (random, check character)
--     and temporary IDs that stay stable from run to run, SSNs joining temporary-ID
--     persons, merges by pointer, a review queue for conflicts. Here the person id is the
--     smallest participant row number of the group: it changes whenever the input does;
--   * resolution by temporary ID and by case-record id; conflict rules (two different
--     valid SSNs behind one name+DOB are never merged or linked by name in xmatch, they
--     go to review; this job merges and links them). The min-label propagation is not a
--     full transitive closure (chains longer than SSN -> name+DOB -> SSN are cut);
--   * ingest checks: required columns, codes, dates and numbers validated per schema,
--     duplicate rows rejected, every reject counted and written with its reason and a
--     masked SSN; identity issues counted per reason (`data_quality`);
--   * the probabilistic pass (keyed Bloom-filter encodings, blocking, Fellegi-Sunter with
--     EM), when the pipeline enables it, as the shipped nightly pipeline does;
--   * evidence verdicts per participant period (entry window, sufficiency), verified
--     statuses at entry and disagreement flags; wage outcomes Q1-Q4 after exit and
--     retention; services per participant; age at entry;
--   * the secure zone (crosswalk, temporary-ID assignments, matches per source, rejects),
--     lineage of every file (hash, columns, PII classes, person sets), the run record,
--     the row-drop guard, the lease, and the atomic publish of a snapshot.
--
-- Settings: two threads (this machine's cores); memory_limit left at DuckDB's default
-- (80 % of RAM); preserve_insertion_order off, as DuckDB's documentation advises for
-- large exports whose row order does not matter.

-- step: settings
SET threads = 2;
SET preserve_insertion_order = false;

-- step: macros
-- SSN: separators out, a spreadsheet's trailing `.0` dropped, 7-8 digits left-padded.
CREATE MACRO ssn_digits(raw) AS
    replace(replace(replace(
        CASE WHEN ends_with(trim(raw), '.0') THEN trim(raw)[:-3] ELSE trim(raw) END,
        '-', ''), ' ', ''), '.', '');
CREATE MACRO ssn_padded(d) AS
    CASE WHEN regexp_full_match(d, '[0-9]{7,9}') THEN lpad(d, 9, '0') END;
-- Deny-list (well-known fakes, all-same-digit numbers, runs of the ascending and
-- descending digit cycles) and SSA's structural rules.
CREATE MACRO ssn_valid(s) AS
    CASE WHEN regexp_matches(s, '^(000|666|9)|^[0-9]{3}00|0000$')
           OR s IN ('012345678', '078051120', '098765432', '109876543', '111111111',
                    '123456789', '210987654', '219099999', '222222222', '234567890',
                    '321098765', '333333333', '345678901', '432109876', '444444444',
                    '456789012', '457555462', '543210987', '555555555', '567890123',
                    '654321098', '666666666', '678901234', '765432109', '777777777',
                    '789012345', '876543210', '888888888', '890123456', '901234567',
                    '987654320', '987654321', '987654322', '987654323', '987654324',
                    '987654325', '987654326', '987654327', '987654328', '987654329',
                    '999999999')
         THEN NULL ELSE s END;
CREATE MACRO norm_ssn(raw) AS ssn_valid(ssn_padded(ssn_digits(raw)));

-- Names: accents stripped, upper case, titles and suffixes dropped as whole words
-- (words split on whitespace and , . ; : / \ ( ) "), then only A-Z kept.
CREATE MACRO name_letters(raw) AS
    regexp_replace(
        regexp_replace(
            ' ' || regexp_replace(upper(strip_accents(raw)), '[\s,.;:/\\()"]+', '  ', 'g') || ' ',
            ' (MR|MRS|MS|MISS|MX|MSTR|DR|REV|PROF|SIR|DAME|HON|JR|SR|JNR|SNR|II|III|IV|V|VI|VII|VIII|IX|X|2ND|3RD|4TH|5TH|ESQ|PHD|MD) ',
            ' ', 'g'),
        '[^A-Z]', '', 'g');
CREATE MACRO name_valid(n) AS
    CASE WHEN n = ''
           OR n IN ('UNKNOWN', 'UNK', 'UNKN', 'TEST', 'TESTER', 'TESTING', 'NONE', 'NULL',
                    'NIL', 'NA', 'FNU', 'LNU', 'NFN', 'NLN', 'NMN', 'BABY', 'BABYBOY',
                    'BABYGIRL', 'INFANT', 'REFUSED', 'DECLINED', 'ANONYMOUS', 'NOTPROVIDED',
                    'NOTGIVEN', 'NOTAVAILABLE', 'NOTAPPLICABLE', 'NOTSTATED', 'NONAME',
                    'NOFIRSTNAME', 'NOLASTNAME', 'UNKNOWNNAME', 'MISSING', 'UNDEFINED',
                    'BLANK', 'DUMMY', 'SAMPLE', 'DELETED', 'NAME', 'FIRSTNAME', 'LASTNAME',
                    'ASDF', 'QWERTY')
           OR (length(n) >= 2 AND replace(n, n[1], '') = '')
         THEN NULL ELSE n END;
CREATE MACRO norm_name(raw) AS name_valid(name_letters(raw));

-- Date of birth: a trailing time part dropped; ISO, compact, slashed and US month-first
-- layouts; 1900-01-01 .. today. As YYYYMMDD text for the token.
CREATE MACRO dob_date(raw) AS
    try_strptime(regexp_replace(trim(raw), '[T ].*$', ''),
                 ['%Y-%m-%d', '%Y%m%d', '%Y/%m/%d', '%m/%d/%Y', '%m-%d-%Y'])::DATE;
CREATE MACRO dob_valid(d) AS
    CASE WHEN d BETWEEN DATE '1900-01-01' AND current_date THEN d END;
CREATE MACRO norm_dob(raw) AS dob_valid(dob_date(raw));

-- ZIP3: 5 or 9 digits (4 or 8 lost a leading zero), not 00000 or 99999.
CREATE MACRO zip5(z) AS
    CASE WHEN regexp_full_match(z, '[0-9]{5}|[0-9]{9}') THEN left(z, 5)
         WHEN regexp_full_match(z, '[0-9]{4}|[0-9]{8}') THEN '0' || left(z, 4) END;
CREATE MACRO zip3(raw) AS
    left(nullif(nullif(zip5(replace(replace(trim(raw), '-', ''), ' ', '')), '00000'), '99999'), 3);

-- The two token rules, keyed by prefixing the secret key.
CREATE MACRO ssn_token(ssn) AS sha256(getvariable('peer_key') || 'ssn:' || ssn);
CREATE MACRO nd_token(last, first, dob) AS
    sha256(getvariable('peer_key') || 'nd:' || last || '|' || first || '|' || strftime(dob, '%Y%m%d'));

-- WIOA program year: PY N runs 1 July N to 30 June N+1.
CREATE MACRO program_year(d) AS year(d) - CASE WHEN month(d) < 7 THEN 1 ELSE 0 END;

-- step: participants
CREATE TEMP TABLE p AS
SELECT n.*,
       ssn_token(ssn9) AS ssn_tok,
       nd_token(last_n, first_n, dob_d) AS nd_tok
FROM (
    SELECT *,
           norm_ssn(ssn) AS ssn9,
           norm_name(first_name) AS first_n,
           norm_name(last_name) AS last_n,
           norm_dob(dob) AS dob_d
    FROM read_parquet('@INCOMING@/participants.parquet', file_row_number = true)
) n;

-- step: resolve
-- One person per group of participant rows sharing an SSN token or a name+DOB token:
-- each row takes the smallest row number of its SSN group, then the smallest such label
-- across its name+DOB group, then the smallest across its SSN group once more.
CREATE TEMP TABLE resolved AS
WITH s1 AS (
    SELECT file_row_number AS rid, ssn_tok, nd_tok,
           CASE WHEN ssn_tok IS NULL THEN file_row_number
                ELSE min(file_row_number) OVER (PARTITION BY ssn_tok) END AS g1
    FROM p
), s2 AS (
    SELECT *, CASE WHEN nd_tok IS NULL THEN g1
                   ELSE min(g1) OVER (PARTITION BY nd_tok) END AS g2
    FROM s1
)
SELECT rid, ssn_tok, nd_tok,
       CASE WHEN ssn_tok IS NULL THEN g2
            ELSE min(g2) OVER (PARTITION BY ssn_tok) END AS person_id
FROM s2;

-- step: token_maps
-- An SSN token names one person by construction; a name+DOB token is used for linking
-- only where it names exactly one person.
CREATE TEMP TABLE ssn_person AS
SELECT ssn_tok, min(person_id) AS person_id
FROM resolved WHERE ssn_tok IS NOT NULL GROUP BY ssn_tok;
CREATE TEMP TABLE nd_person AS
SELECT nd_tok, min(person_id) AS person_id
FROM resolved WHERE nd_tok IS NOT NULL GROUP BY nd_tok
HAVING min(person_id) = max(person_id);

-- step: write_participants
COPY (
    SELECT r.person_id,
           year(p.dob_d) AS birth_year,
           zip3(p.zip) AS zip3,
           p.* EXCLUDE (individual_id, temp_id, ssn, first_name, middle_name, last_name,
                        dob, zip, file_row_number, ssn9, first_n, last_n, dob_d,
                        ssn_tok, nd_tok),
           program_year(p.entry_date) AS program_year
    FROM p JOIN resolved r ON r.rid = p.file_row_number
) TO '@OUT@/participants' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (program_year));

-- step: link_public_assistance
CREATE TEMP TABLE l_public_assistance AS
WITH src AS (
    SELECT *, ssn_token(ssn9) AS ssn_tok, nd_token(last_n, first_n, dob_d) AS nd_tok
    FROM (
        SELECT *, norm_ssn(ssn) AS ssn9, norm_name(first_name) AS first_n,
               norm_name(last_name) AS last_n, norm_dob(dob) AS dob_d
        FROM read_parquet('@INCOMING@/public_assistance.parquet')
    )
)
SELECT coalesce(bs.person_id, bn.person_id) AS person_id,
       CASE WHEN bs.person_id IS NOT NULL THEN 'ssn'
            WHEN bn.person_id IS NOT NULL THEN 'name_dob' END AS linked_by,
       year(src.dob_d) AS birth_year, src.sex, zip3(src.zip) AS zip3,
       src.program, src.determination_date, src.benefit_start, src.benefit_end,
       src.benefit_type
FROM src
LEFT JOIN ssn_person bs ON bs.ssn_tok = src.ssn_tok
LEFT JOIN nd_person bn ON bn.nd_tok = src.nd_tok;

-- step: write_public_assistance
COPY (
    SELECT *, program_year(coalesce(determination_date, benefit_start)) AS program_year
    FROM l_public_assistance WHERE person_id IS NOT NULL
) TO '@OUT@/public_assistance' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (program_year));

-- step: link_ui_claims
CREATE TEMP TABLE l_ui_claims AS
WITH src AS (
    SELECT *, ssn_token(ssn9) AS ssn_tok, nd_token(last_n, first_n, dob_d) AS nd_tok
    FROM (
        SELECT *, norm_ssn(ssn) AS ssn9, norm_name(first_name) AS first_n,
               norm_name(last_name) AS last_n, norm_dob(dob) AS dob_d
        FROM read_parquet('@INCOMING@/ui_claims.parquet')
    )
)
SELECT coalesce(bs.person_id, bn.person_id) AS person_id,
       CASE WHEN bs.person_id IS NOT NULL THEN 'ssn'
            WHEN bn.person_id IS NOT NULL THEN 'name_dob' END AS linked_by,
       year(src.dob_d) AS birth_year, zip3(src.zip) AS zip3,
       src.claim_type, src.claim_filed_date, src.benefit_year_begin, src.benefit_year_end,
       src.weeks_paid, src.separation_reason
FROM src
LEFT JOIN ssn_person bs ON bs.ssn_tok = src.ssn_tok
LEFT JOIN nd_person bn ON bn.nd_tok = src.nd_tok;

-- step: write_ui_claims
COPY (
    SELECT *, program_year(claim_filed_date) AS program_year
    FROM l_ui_claims WHERE person_id IS NOT NULL
) TO '@OUT@/ui_claims' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (program_year));

-- step: link_taa
CREATE TEMP TABLE l_taa AS
WITH src AS (
    SELECT *, ssn_token(ssn9) AS ssn_tok, nd_token(last_n, first_n, dob_d) AS nd_tok
    FROM (
        SELECT *, norm_ssn(ssn) AS ssn9, norm_name(first_name) AS first_n,
               norm_name(last_name) AS last_n, norm_dob(dob) AS dob_d
        FROM read_parquet('@INCOMING@/taa.parquet')
    )
)
SELECT coalesce(bs.person_id, bn.person_id) AS person_id,
       CASE WHEN bs.person_id IS NOT NULL THEN 'ssn'
            WHEN bn.person_id IS NOT NULL THEN 'name_dob' END AS linked_by,
       year(src.dob_d) AS birth_year,
       src.petition_number, src.certification_date, src.benefit_type,
       src.service_start, src.service_end
FROM src
LEFT JOIN ssn_person bs ON bs.ssn_tok = src.ssn_tok
LEFT JOIN nd_person bn ON bn.nd_tok = src.nd_tok;

-- step: write_taa
COPY (
    SELECT *, program_year(certification_date) AS program_year
    FROM l_taa WHERE person_id IS NOT NULL
) TO '@OUT@/taa' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (program_year));

-- step: link_write_ui_wages
-- Wage records carry no DOB, so they link on the SSN token alone. Linked rows only, the
-- employer account as a keyed token (one hash per distinct employer). The token is a
-- column of the CTE, not an expression in the join condition: DuckDB took twice as long
-- with the expression in ON.
COPY (
    WITH w AS (
        SELECT ssn_token(norm_ssn(ssn)) AS ssn_tok, employer_id, wages, year_quarter
        FROM read_parquet('@INCOMING@/ui_wages.parquet')
    ), employers AS (
        SELECT employer_id,
               sha256(getvariable('peer_key') || 'emp:' || employer_id) AS employer_token
        FROM (SELECT DISTINCT employer_id FROM read_parquet('@INCOMING@/ui_wages.parquet'))
    )
    SELECT s.person_id, e.employer_token, w.wages, w.year_quarter
    FROM w
    JOIN ssn_person s ON s.ssn_tok = w.ssn_tok
    JOIN employers e ON e.employer_id = w.employer_id
) TO '@OUT@/quarterly_wages' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year_quarter));

-- step: summary
-- Rows read and linked per source (the wage link's count is the previous step's COPY
-- count), and persons.
SELECT 'participants' AS source, count(*) AS read, count(*) AS linked,
       count(DISTINCT person_id) AS persons, NULL::BIGINT AS by_ssn, NULL::BIGINT AS by_name_dob
FROM resolved
UNION ALL
SELECT 'public_assistance', count(*), count(person_id), count(DISTINCT person_id),
       count(*) FILTER (linked_by = 'ssn'), count(*) FILTER (linked_by = 'name_dob')
FROM l_public_assistance
UNION ALL
SELECT 'ui_claims', count(*), count(person_id), count(DISTINCT person_id),
       count(*) FILTER (linked_by = 'ssn'), count(*) FILTER (linked_by = 'name_dob')
FROM l_ui_claims
UNION ALL
SELECT 'taa', count(*), count(person_id), count(DISTINCT person_id),
       count(*) FILTER (linked_by = 'ssn'), count(*) FILTER (linked_by = 'name_dob')
FROM l_taa
UNION ALL
SELECT 'ui_wages', count(*), NULL, NULL, NULL, NULL
FROM read_parquet('@INCOMING@/ui_wages.parquet');
