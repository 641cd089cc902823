-- One person's services for the evidence printout, with the catalogue's name and whether
-- the service triggers participation (the 13 self-service/informational basic career
-- services do not). {{person_key}}: a parsed person key.
SELECT s.entry_date, s.service_date, s.service_code, c.name AS service_name, c.kind,
    s.staff_assisted, c.triggers_participation
FROM services s
LEFT JOIN service_catalog c ON c.code = s.service_code
WHERE s.person_key = '{{person_key}}'
-- Every column orders, so rows that tie on the dates and code still print in one order.
ORDER BY s.entry_date, s.service_date, s.service_code, s.staff_assisted
