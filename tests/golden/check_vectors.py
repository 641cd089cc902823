#!/usr/bin/env python3
"""Independent check of xmatch golden vectors (standard library only).

Recomputes, from the *normalized* fields in token_vectors.json and the README's written
specification only, everything the Rust code recorded for each case:

Tokens (README "Token encoding"):

    message = b"xmatch/v1/" + rule + b"\\x00" + b"\\x1f".join(fields)
    token   = HMAC-SHA256(key, message)

Bloom-filter field encodings (README "Probabilistic linkage (rule set version 2)"):

    field key = HMAC-SHA256(key, "xmatch/v2/bloom/" + ("name" for first and last, else field))
    positions(tag, msg, n, m) = HMAC-SHA256(field key, tag + 0x00 + msg), bytes 2i, 2i+1
                                as a little-endian u16, mod m, for i < n
    filter    = OR over the grams of positions("gram", gram, k, m)
    output j  = XOR of the filter bits at positions("diffusion", u16be(j), 3, m)
    hex       = m/8 bytes, bit j is bit j mod 8 of byte j div 8

Blocking keys (same README section; the kinds of rule set versions 2 to 4):

    block key = HMAC-SHA256(key, "xmatch/v2/block")
    key       = first 8 bytes of HMAC-SHA256(block key, kind + 0x00 + material), as hex

with the materials of the README's table and American Soundex implemented here from its
standard definition (not from the rphonetic crate the Rust code uses).

A token, encoding or blocking key must be null exactly when a field it needs is null.
The Soundex implementation is first checked against published reference examples.
Prints "N passed, M failed"; exits non-zero naming case and item on any mismatch.
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

# Bloom-filter encodings: field -> (key label, bits m, positions per gram k).
BLOOM = {
    "first": ("xmatch/v2/bloom/name", 512, 6),
    "last": ("xmatch/v2/bloom/name", 512, 6),
    "dob": ("xmatch/v2/bloom/dob", 256, 4),
    "ssn": ("xmatch/v2/bloom/ssn", 256, 4),
    "zip": ("xmatch/v2/bloom/zip", 128, 4),
}
DIFFUSION_T = 3
# Version 3 replaced version 2's ssn_head (digits 1-5) and ssn_tail (6-9) with four
# windows of skipped digits, and soundex_last_month (the birth year and month) with
# soundex_last_dob (the whole date); the other kinds are unchanged.
BLOCK_KINDS = {
    2: ["ssn_head", "ssn_tail", "ssn_gap", "dob_initials", "soundex_last_month",
        "soundex_names_zip3"],
    3: ["ssn_skip_1_3", "ssn_skip_3_5", "ssn_skip_5_7", "ssn_skip_7_9", "ssn_gap",
        "dob_initials", "soundex_last_dob", "soundex_names_zip3"],
}
# Version 4 kept every version 3 kind and added the four windows with the last initial
# alone, for records without a first name, and soundex_first_dob.
BLOCK_KINDS[4] = BLOCK_KINDS[3] + ["ssn_skip_1_3_last", "ssn_skip_3_5_last",
                                   "ssn_skip_5_7_last", "ssn_skip_7_9_last",
                                   "soundex_first_dob"]
# ssn_skip_i_j: the SSN without its digits i..j (1-based, inclusive).
SSN_SKIPS = {"ssn_skip_1_3": (1, 3), "ssn_skip_3_5": (3, 5), "ssn_skip_5_7": (5, 7),
             "ssn_skip_7_9": (7, 9)}
SEP = "\x1f"


def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


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


def token(key, rule, values):
    parts = [values[f] for f in RULES[rule]]
    if any(p is None for p in parts):
        return None
    msg = f"xmatch/v1/{rule}".encode() + b"\x00" + b"\x1f".join(p.encode("ascii") for p in parts)
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


# --- Bloom-filter encodings -------------------------------------------------------------


def positions(field_key, tag, msg, n, m):
    h = hmac256(field_key, tag + b"\x00" + msg)
    return [int.from_bytes(h[2 * i:2 * i + 2], "little") % m for i in range(n)]


def grams(field, value):
    if field in ("first", "last"):
        padded = "_" + value + "_"
        return {padded[i:i + 2].encode("ascii") for i in range(len(padded) - 1)}
    # Position-digit pairs: the 0-based position as one ASCII digit, then the digit.
    return {(str(p) + d).encode("ascii") for p, d in enumerate(value)}


class Bloom:
    def __init__(self, key):
        self.key = key
        self.diffusion = {}

    def encode(self, field, value):
        label, m, k = BLOOM[field]
        field_key = hmac256(self.key, label.encode("ascii"))
        bits = [0] * m
        for g in grams(field, value):
            for p in positions(field_key, b"gram", g, k, m):
                bits[p] = 1
        if label not in self.diffusion:
            self.diffusion[label] = [positions(field_key, b"diffusion", j.to_bytes(2, "big"),
                                               DIFFUSION_T, m) for j in range(m)]
        out = bytearray(m // 8)
        for j, inputs in enumerate(self.diffusion[label]):
            x = 0
            for i in inputs:
                x ^= bits[i]
            if x:
                out[j // 8] |= 1 << (j % 8)
        return out.hex()


# --- Blocking keys ----------------------------------------------------------------------

# American Soundex (the U.S. National Archives' rules): keep the first letter; code the
# others B F P V = 1, C G J K Q S X Z = 2, D T = 3, L = 4, M N = 5, R = 6; vowels
# A E I O U Y are not coded but separate letters with equal codes; H and W are not coded
# and do not separate (equal codes either side of them are coded once); adjacent letters
# with equal codes, the first letter included, are coded once; pad with 0 or cut to a
# letter and three digits.
SOUNDEX_CODES = {}
for _letters, _digit in [("BFPV", "1"), ("CGJKQSXZ", "2"), ("DT", "3"), ("L", "4"),
                         ("MN", "5"), ("R", "6")]:
    for _c in _letters:
        SOUNDEX_CODES[_c] = _digit


def soundex(name):
    digits = []
    last = SOUNDEX_CODES.get(name[0])
    for c in name[1:]:
        if c in "HW":
            continue
        code = SOUNDEX_CODES.get(c)
        if code is not None and code != last:
            digits.append(code)
        last = code
    return (name[0] + "".join(digits) + "000")[:4]


# Published worked examples (the National Archives' "The Soundex Indexing System" and the
# Wikipedia article "Soundex"), checked first so that a mistake here is not mistaken for
# one in the vectors.
SOUNDEX_EXAMPLES = {
    "ROBERT": "R163", "RUPERT": "R163", "RUBIN": "R150", "ASHCRAFT": "A261",
    "ASHCROFT": "A261", "TYMCZAK": "T522", "PFISTER": "P236", "HONEYMAN": "H555",
    "LEE": "L000", "GUTIERREZ": "G362", "JACKSON": "J250", "WASHINGTON": "W252",
}


def material(kind, norm):
    ssn, dob, first, last, zip5 = (norm.get(f) for f in ("ssn", "dob", "first", "last", "zip"))
    initials = "".join(sorted(first[0] + last[0])) if first and last else None
    if kind in SSN_SKIPS:
        i, j = SSN_SKIPS[kind]
        return ssn[:i - 1] + ssn[j:] + SEP + initials if ssn and initials else None
    if kind.endswith("_last") and kind[:-len("_last")] in SSN_SKIPS:
        i, j = SSN_SKIPS[kind[:-len("_last")]]
        return ssn[:i - 1] + ssn[j:] + SEP + last[0] if ssn and last else None
    if kind == "ssn_head":
        return ssn[:5] + SEP + initials if ssn and initials else None
    if kind == "ssn_tail":
        return ssn[5:] + SEP + initials if ssn and initials else None
    if kind == "ssn_gap":
        return ssn[:4] + ssn[6:] if ssn else None
    if kind == "dob_initials":
        return dob + SEP + initials if dob and initials else None
    if kind == "soundex_last_dob":
        return soundex(last) + SEP + dob if last and dob else None
    if kind == "soundex_first_dob":
        return soundex(first) + SEP + dob if first and dob else None
    if kind == "soundex_last_month":
        return soundex(last) + SEP + dob[:6] if last and dob else None
    if kind == "soundex_names_zip3":
        if not (first and last and zip5):
            return None
        a, b = sorted([soundex(first), soundex(last)])
        return a + SEP + b + SEP + zip5[:3]
    raise ValueError(kind)


def block_key(block, kind, mat):
    return hmac256(block, kind.encode("ascii") + b"\x00" + mat.encode("ascii"))[:8].hex()


def show(x):
    return x.replace(SEP, "\\x1f") if isinstance(x, str) else x


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "token_vectors.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc["rule_set_version"] not in (1, 2, 3, 4):
        sys.exit(f"unsupported rule_set_version {doc['rule_set_version']}")
    key = bytes.fromhex(doc["key_hex"])
    bloom = Bloom(key)
    block = hmac256(key, b"xmatch/v2/block")
    passed = failed = 0

    def check(case, item, expected, recorded):
        nonlocal passed, failed
        if expected == recorded:
            passed += 1
        else:
            failed += 1
            print(f"MISMATCH case {case['case']!r} {item}: expected {show(expected)}, "
                  f"recorded {show(recorded)}", file=sys.stderr)

    for name, code in SOUNDEX_EXAMPLES.items():
        check({"case": "Soundex reference example"}, name, code, soundex(name))
    missing = "<missing>"
    for case in doc["cases"]:
        norm = case["normalized"]
        values = field_values(norm)
        for rule in RULES:
            check(case, f"rule {rule}", token(key, rule, values), case["tokens"][rule])
        if doc["rule_set_version"] < 2:
            continue
        for field in BLOOM:
            value = norm.get(field)
            # A one-letter name (an initial) is not encoded.
            encodable = value is not None and not (field in ("first", "last") and len(value) < 2)
            expected = bloom.encode(field, value) if encodable else None
            check(case, f"encoding {field}", expected, case.get("encodings", {}).get(field, missing))
        for kind in BLOCK_KINDS[doc["rule_set_version"]]:
            recorded = case.get("blocking_keys", {}).get(kind, missing)
            mat = material(kind, norm)
            expected = {"material": mat, "key": block_key(block, kind, mat) if mat else None}
            check(case, f"blocking key {kind}", expected, recorded)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
