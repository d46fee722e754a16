"""What the two stand-ins of the reference app's processor share, as the reference has it
(../shared/reference/splunk-imap-behaviour.md §4): its regexes, its IP checks, its source
data identifiers and its URL clean-up. `reference_pipeline.py` (BeautifulSoup + Django)
and `reference_stdlib.py` (the standard library only) import it; it needs only the
standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from typing import Any

# The reference's regexes (behaviour doc §4.4).
URI_REGEX = (
    r"[Hh][Tt][Tt][Pp][Ss]?://(?:[a-zA-Z]|[0-9]|[$-_@.&+#]|[!*\(\),]"
    r"|(?:%[0-9a-fA-F][0-9a-fA-F]))+"
)
EMAIL_REGEX = r"\b[A-Z0-9._%+-]+@+[A-Z0-9.-]+\.[A-Z]{2,}\b"
EMAIL_REGEX2 = r'".*"@[A-Z0-9.-]+\.[A-Z]{2,}\b'
HASH_REGEX = r"\b[0-9a-fA-F]{32}\b|\b[0-9a-fA-F]{40}\b|\b[0-9a-fA-F]{64}\b"
IP_REGEX = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"


def ipv6_regex() -> str:
    """The widely published "all RFC 4291 forms" IPv6 alternation the reference uses,
    with its capture groups, `::` compression, embedded IPv4, optional zone and `\\s*`
    ends."""
    h = "[0-9A-Fa-f]{1,4}"
    octet = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    v4 = rf"({octet}(\.{octet}){{3}})"
    alternatives = [
        rf"(({h}:){{7}}({h}|:))",
        rf"(({h}:){{6}}(:{h}|{v4}|:))",
        rf"(({h}:){{5}}(((:{h}){{1,2}})|:{v4}|:))",
    ]
    for k in (4, 3, 2, 1):
        lead = rf"(:{h})?" if k == 4 else rf"(:{h}){{0,{5 - k}}}"
        alternatives.append(rf"(({h}:){{{k}}}(((:{h}){{1,{7 - k}}})|({lead}:{v4})|:))")
    alternatives.append(rf"(:(((:{h}){{1,7}})|((:{h}){{0,5}}:{v4})|:))")
    return r"\s*(" + "|".join(alternatives) + r")(%.+)?\s*"


uri_re = re.compile(URI_REGEX)
email_re = re.compile(EMAIL_REGEX, re.IGNORECASE)
email_re2 = re.compile(EMAIL_REGEX2, re.IGNORECASE)
hash_re = re.compile(HASH_REGEX)
ip_re = re.compile(IP_REGEX)
ipv6_re = re.compile(ipv6_regex())
encoded_word_re = re.compile(r"=\?.*?\?=", re.IGNORECASE)
# 3.3.2's `.*Forwarded Message.*\r\n(.*)` backtracks quadratically on long lines (one
# 1.8 MB message of the shared corpus takes 150 s with it); the reference's own fix in
# 3.4.8 (behaviour doc §4.3) is linear, and is used here in the stand-ins' favour.
forwarded_re = re.compile(r"(?im)^.*forwarded message.*\r?\n")


def is_ipv4(s: str) -> bool:
    """The platform's `is_ip` for dotted quads: four decimal octets, no leading
    zeros."""
    parts = s.split(".")
    return len(parts) == 4 and all(
        p.isdigit() and int(p) <= 255 and str(int(p)) == p for p in parts
    )


def is_ipv6(s: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6, s)
    except (OSError, ValueError):
        return False
    return True


def is_ip(s: str) -> bool:
    return is_ipv4(s) or is_ipv6(s)


def sdi(artifact: dict[str, Any]) -> str:
    """The source data identifier: md5 of `json.dumps(sort_keys=True)`. default=str:
    compat32 returns Header objects for raw 8-bit header values, which the reference
    would have failed on; here they are only hashed."""
    text = json.dumps(artifact, sort_keys=True, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def clean_url(u: str) -> str:
    """The reference's trim of a URL found in text or link text."""
    u = u.strip(">),.]\r\n")
    if "<" in u:
        u = u[: u.find("<")]
    if ">" in u:
        u = u[: u.find(">")]
    return u.rstrip("]").strip()
