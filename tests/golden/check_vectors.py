#!/usr/bin/env python3
"""Independent check of xmatch identity token golden vectors (standard library only).

Rebuilds every token message from the *normalized* fields in token_vectors.json using
the documented encoding, and compares HMAC-SHA256 against the recorded hex:

    message = b"xmatch/v1/" + rule + b"\\x00" + b"\\x1f".join(fields)
    token   = HMAC-SHA256(key, message)

A rule's token must be null exactly when one of its fields is null.
Usage: python3 check_vectors.py [path/to/token_vectors.json]
"""
import hashlib
import hmac
import json
import os
import re
import sys

# Field order per rule, written out independently of the Rust code.
RULES = {
    "ssn": ["ssn"],
    "ssn_dob": ["ssn", "dob"],
    "name_dob": ["last", "first", "dob"],
    "name_init_sex_dob": ["last", "first_initial", "sex", "dob"],
    "name_dob_zip3": ["last", "first", "dob", "zip3"],
}
FORMATS = {
    "ssn": r"[0-9]{9}",
    "dob": r"(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])",
    "first": r"[A-Z]+",
    "last": r"[A-Z]+",
    "sex": r"[MF]",
    "zip": r"[0-9]{5}",
}


def field_values(norm):
    for name, pattern in FORMATS.items():
        value = norm.get(name)
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"normalized field {name!r} has a bad format")
    first, zip5 = norm.get("first"), norm.get("zip")
    return {
        "ssn": norm.get("ssn"),
        "dob": norm.get("dob"),
        "last": norm.get("last"),
        "first": first,
        "first_initial": first[0] if first else None,
        "sex": norm.get("sex"),
        "zip3": zip5[:3] if zip5 else None,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "token_vectors.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc["rule_set_version"] not in (1, 2):
        sys.exit(f"unsupported rule_set_version {doc['rule_set_version']}")
    key = bytes.fromhex(doc["key_hex"])
    passed = failed = 0
    for case in doc["cases"]:
        values = field_values(case["normalized"])
        for rule, fields in RULES.items():
            recorded = case["tokens"][rule]
            parts = [values[f] for f in fields]
            if any(p is None for p in parts):
                expected = None
            else:
                msg = f"xmatch/v1/{rule}".encode() + b"\x00" + b"\x1f".join(p.encode("ascii") for p in parts)
                expected = hmac.new(key, msg, hashlib.sha256).hexdigest()
            if expected == recorded:
                passed += 1
            else:
                failed += 1
                print(f"MISMATCH case {case['case']!r} rule {rule}: expected {expected}, recorded {recorded}",
                      file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
