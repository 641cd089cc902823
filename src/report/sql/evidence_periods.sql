-- One person's participant periods for the monitor's evidence printout (Ohio WIOAPL
-- 15-07.1 VII): programs, dates, exit reason, statuses at entry as the case file
-- self-reports them beside what sufficient cross-match evidence verified, training and
-- credentials, and the record-keeping dates (information obtained, entered: the 30-day
-- rule). {{person_key}} is a parsed person key (Crockford base 32), never free text.
SELECT entry_date, exit_date, local_area,
    adult, dislocated_worker, youth, wagner_peyser, snap_et, ndwg, taa, taa_declined_dw,
    exit_reason, employment_status_at_entry,
    snap, verified_snap, snap_status_disagrees,
    tanf, verified_tanf, tanf_status_disagrees,
    uc_status, verified_ui_claimant, ui_claimant_status_disagrees,
    verified_taa, taa_status_disagrees,
    low_income, training_type, edu_enrollment_date, edu_completion_date,
    credential_type, credential_date,
    info_obtained_date, entered_date, has_ssn
FROM participants
WHERE person_key = '{{person_key}}'
-- Exit date and area order periods that start on one day (a co-enrolment), so a rerun
-- prints them in the same order.
ORDER BY entry_date, exit_date, local_area
