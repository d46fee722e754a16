#!/usr/bin/env python3
"""The reference app's email pipeline, in the reference's own style, as a speed baseline.

Follows ../shared/reference/splunk-imap-behaviour.md §4.1-4.6 (Splunk SOAR IMAP 3.3.2's
process_email.py) for every message, one message at a time, with a fresh state per message
as the reference's processor has:
- `email.message_from_bytes` with the module's default policy (compat32, the reference's);
- `walk()` every part: an Email Artifact from each part's headers (raw header dict,
  Received list, decodedSubject with `make_header(decode_header())`, decodedFrom/To/CC
  with the app's own encoded-word decoder), body or attachment by Content-Disposition,
  `get_payload(decode=True)`;
- each body: read back as UTF-8 text with universal newlines or kept as bytes, through
  BeautifulSoup's `UnicodeDammit`, the inline "Forwarded message" header parse (with the
  reference's 3.4.8 pattern: 3.3.2's is quadratic on long lines), then the
  reference's regexes: e-mail addresses (domains), URLs (BeautifulSoup `html.parser` hrefs
  and srcs, or `URI_REGEX` over the unescaped text) checked with Django's `URLValidator`,
  IPv4 and the RFC 4291 IPv6 alternation (every non-empty group a candidate, checked with
  inet_pton), MD5/SHA-1/SHA-256 hashes;
- each attachment hashed (MD5, SHA-1, SHA-256) for its Vault Artifact;
- the artifacts with their source data identifiers (md5 of `json.dumps(sort_keys=True)`).

Left out, each in the baseline's favour: the temporary files the reference writes every
body and attachment to (bodies stay in memory here), libmagic on each file, the vault copy
and the platform's save calls. No chardet is installed, so UnicodeDammit goes straight to
its UTF-8 / windows-1252 guesses, its fastest path.

Usage: reference_pipeline.py LIST   (LIST: a file with one email path per line)
Prints one summary line: emails, failures, artifacts by class. Needs beautifulsoup4 and
Django (benches/extract_side_by_side.sh installs them into a throwaway virtualenv).
"""

import email
import hashlib
import html
import json
import logging
import mimetypes
import re
import sys
import urllib.parse
import warnings
from email.header import decode_header, make_header

from bs4 import BeautifulSoup, UnicodeDammit
from django.core.validators import URLValidator
from reference_rules import (
    clean_url,
    email_re,
    email_re2,
    encoded_word_re,
    forwarded_re,
    hash_re,
    ip_re,
    is_ip,
    is_ipv4,
    ipv6_re,
    sdi,
    uri_re,
)

# UnicodeDammit logs a line for every undecodable body and BeautifulSoup warns about
# XML-looking HTML: the baseline should not pay for a terminal full of them.
logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")

validate_url = URLValidator(schemes=["http", "https"])


def decode_uni_string(value, default):
    """The app's own RFC 2047 decoder (behaviour doc §4.7)."""
    words = encoded_word_re.findall(value)
    if not words:
        return value
    try:
        decoded = [decode_header(w)[0] for w in words]
    except Exception:
        return default
    out, count = "", 0
    for data, charset in decoded:
        if not charset or not data:
            continue
        try:
            if charset != "utf-8":
                data = str(data, charset)
        except Exception:
            pass
        try:
            out += UnicodeDammit(data).unicode_markup
            count += 1
        except Exception:
            pass
    return out if out and count == len(words) else value


class ProcessEmail:
    """One message's worth of state, as the reference's processor keeps it."""

    def __init__(self, email_id):
        self.email_id = email_id
        self.ips, self.hashes, self.urls, self.domains = set(), set(), set(), set()
        self.header_artifacts = []
        self.bodies = []
        self.files = []

    def headers_of(self, part):
        items = part.items()
        if not items:
            return {}
        headers = {}  # case-insensitive, last one wins with its spelling
        for name, value in items:
            headers[name.lower()] = (name, value)
        received = [v for k, v in items if k.lower() == "received"]
        if received:
            headers["received"] = ("Received", received)

        def get(name):
            entry = headers.get(name.lower())
            return entry[1] if entry else None

        subject = get("Subject")
        if subject:
            try:
                headers["decodedsubject"] = ("decodedSubject", str(make_header(decode_header(subject))))
            except Exception:
                headers["decodedsubject"] = ("decodedSubject", decode_uni_string(subject, subject))
        for key in ("To", "From", "CC"):
            value = get(key)
            if value:
                headers["decoded" + key.lower()] = ("decoded" + key, decode_uni_string(str(value), value))
        return dict(headers.values())

    def email_artifact(self, part, email_id=None):
        headers = self.headers_of(part)
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        cef = {}
        if lower.get("from"):
            cef["fromEmail"] = lower["from"]
        if lower.get("to"):
            cef["toEmail"] = lower["to"]
        if not cef and lower.get("message-id") is None:
            return
        cef["emailHeaders"] = headers
        cef_types = {"fromEmail": ["email"], "toEmail": ["email"]}
        if email_id is not None:
            cef["emailId"] = email_id
            cef_types["emailId"] = ["imap email id"]
        self.header_artifacts.append(
            {"run_automation": False, "name": "Email Artifact", "cef": cef, "cef_types": cef_types})

    def handle_part(self, part, index):
        file_name = part.get_filename()
        disposition = part.get("Content-Disposition")
        content_type = part.get("Content-Type")
        content_id = part.get("Content-ID")
        if file_name is None:
            name, extension = f"part_{index}", f".{index}"
            if content_type is not None:
                extension = mimetypes.guess_extension(re.sub(";.*", "", content_type))
            if content_id is not None:
                name = content_id
            file_name = f"{name}{extension}"
        else:
            file_name = decode_uni_string(file_name, file_name)
        is_body = disposition is None or (
            disposition.lower().strip() == "inline"
            and ("text/html" in content_type or "text/plain" in content_type))
        if is_body:
            payload = part.get_payload(decode=True)
            if payload:
                self.bodies.append(payload)
            return
        if content_type is not None and "message/rfc822" in content_type:
            return
        headers = self.headers_of(part)
        payload = part.get_payload(decode=True)
        if payload:
            self.files.append((file_name, payload, headers))

    def handle_body(self, payload):
        # The reference reads the body file back as locale (UTF-8) text with universal
        # newlines, or as bytes when that fails.
        try:
            data = payload.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            data = payload
        if not data:
            return
        text = UnicodeDammit(data).unicode_markup
        if not text:
            return
        # Inline forwarded headers: drop the first "Forwarded message" line, parse the rest.
        forwarded = forwarded_re.sub("", text, count=1)
        self.email_artifact(email.message_from_string(forwarded.strip()), self.email_id)

        addresses = email_re.findall(text) + email_re2.findall(text)
        for address in addresses:
            dom = address[address.rfind("@") + 1:]
            if dom and not is_ipv4(dom):
                self.domains.add(dom)
        self.urls_and_domains(text)
        candidates = ip_re.findall(text)
        for groups in ipv6_re.findall(text):
            candidates.extend(g for g in groups if g)
        self.ips |= {c for c in set(candidates) if is_ip(c)}
        self.hashes |= set(hash_re.findall(text))

    def urls_and_domains(self, text):
        soup = BeautifulSoup(text, "html.parser")
        links = soup.find_all(href=True)
        srcs = soup.find_all(src=True)
        uris = []
        if links or srcs:
            link_text = []
            for tag in links:
                link_text.append(clean_url(tag.get_text()))
                if not tag["href"].startswith("mailto:"):
                    uris.append(tag["href"])
            for tag in srcs:
                link_text.append(clean_url(tag.get_text()))
                uris.append(tag["src"])
            uris.extend(t for t in link_text if t.startswith("http"))
        else:
            uris = [clean_url(u) for u in uri_re.findall(html.unescape(text))]
        valid = []
        for u in uris:
            try:
                validate_url(u)
                valid.append(u)
            except Exception:
                pass
        self.urls |= set(valid)
        for u in valid:
            try:
                host = urllib.parse.urlparse(u).hostname
            except ValueError:
                host = None
            if host and not is_ip(host):
                self.domains.add(host)
        for tag in links:
            href = tag["href"]
            if href.startswith("mailto:"):
                dom = href[href.find("@") + 1:]
                if dom and not is_ip(dom):
                    self.domains.add(dom.split("?", 1)[0])

    def process(self, raw):
        mail = email.message_from_bytes(raw)
        name = mail.get("Subject")
        if name:
            try:
                name = str(make_header(decode_header(name)))
            except Exception:
                name = decode_uni_string(name, f"Email ID: {self.email_id}")
        if mail.is_multipart():
            for index, part in enumerate(mail.walk()):
                self.email_artifact(part, self.email_id if index == 0 else None)
                if part.is_multipart():
                    continue
                try:
                    self.handle_part(part, index)
                except Exception:
                    pass  # logged and skipped by the reference
        else:
            self.email_artifact(mail, self.email_id)
            payload = mail.get_payload(decode=True)
            if payload:
                self.bodies.append(payload)
        for body in self.bodies:
            self.handle_body(body)

        artifacts = []
        for key, values, label in (("sourceAddress", self.ips, "IP Artifact"),
                                   ("fileHash", self.hashes, "Hash Artifact"),
                                   ("requestURL", self.urls, "URL Artifact"),
                                   ("destinationDnsDomain", self.domains, "Domain Artifact")):
            for value in values:
                if value:
                    artifacts.append({"run_automation": False, "cef": {key: value}, "name": label})
        artifacts.extend(self.header_artifacts)
        for file_name, payload, headers in self.files:
            sha1 = hashlib.sha1(payload).hexdigest()
            artifacts.append({"run_automation": False, "name": "Vault Artifact", "cef": {
                "fileName": file_name, "vaultId": sha1, "fileHashSha1": sha1,
                "fileHashMd5": hashlib.md5(payload).hexdigest(),
                "fileHashSha256": hashlib.sha256(payload).hexdigest(),
                "fileSize": len(payload), "headers": headers}})
        for artifact in artifacts:
            artifact["source_data_identifier"] = sdi(artifact)
        if artifacts:
            artifacts[-1]["run_automation"] = True
        return {"name": name or f"Email ID: {self.email_id}", "artifacts": artifacts}


def main():
    with open(sys.argv[1]) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    counts, failed = {}, 0
    for email_id, path in enumerate(paths, start=1):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            container = ProcessEmail(email_id).process(raw)
        except Exception:
            failed += 1
            continue
        for artifact in container["artifacts"]:
            counts[artifact["name"]] = counts.get(artifact["name"], 0) + 1
    print(json.dumps({"pipeline": "reference-style", "emails": len(paths), "failed": failed,
                      "artifacts": dict(sorted(counts.items()))}))


if __name__ == "__main__":
    main()
