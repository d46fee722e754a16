#!/usr/bin/env python3
"""A standard-library-only stand-in of the reference app's processor, for bulk timing.

Follows ../shared/reference/splunk-imap-behaviour.md §4.1-4.8 (Splunk SOAR IMAP
3.3.2's process_email.py) like benches/reference_pipeline.py, one message at a time
with a fresh state per message, and goes on to what the reference hands the platform:
- `email.message_from_bytes` (compat32), `walk()` every part: an Email Artifact from
  each part's headers (raw header dict, Received list, decodedSubject,
  decodedFrom/To/CC with the app's own encoded-word decoder), body or attachment by
  Content-Disposition;
- each body read back as UTF-8 text with universal newlines or kept as bytes, the inline
  "Forwarded message" header parse (the reference's linear 3.4.8 pattern), then the
  reference's regexes: e-mail addresses (domains), URLs (hrefs and srcs, or `URI_REGEX`
  over the unescaped text) checked like Django's `URLValidator`, IPv4 and the RFC 4291
  IPv6 alternation (every non-empty group a candidate, checked with inet_pton), hashes;
- the container (`source_data_identifier`, name, `data.raw_email`, artifacts) with each
  artifact's source data identifier (md5 of `json.dumps(sort_keys=True)`) and the
  run_automation flag on the last artifact, or on the last Vault Artifact;
- each attachment WRITTEN to the vault directory, as `vault_add` copies it into the
  SOAR vault: VAULT_DIR/<sha1[:2]>/<sha1>, a plain write, no fsync (the reference has
  none); its Vault Artifact with the reference's cef (headers, fileName, vaultId, cs6,
  cs6Label, the three hashes), cef_types from the extension and the first bytes,
  container_id and its own source data identifier;
- each container serialized with `json.dumps`, one per line, to stdout.

In place of the third-party packages of reference_pipeline.py, the standard library:
BeautifulSoup -> `html.parser.HTMLParser` collecting each href/src element's value and
text; `UnicodeDammit` -> UTF-8, else windows-1252 with replacement characters (its path
without chardet, less its BOM and `<meta charset>` sniffing); Django's `URLValidator` ->
`urllib.parse.urlsplit` with Django's host, user and port patterns, 2,048-character cap
and no whitespace (less its punycode retry).

Left out, each in the stand-in's favour: the temporary files the reference writes every
body and attachment to before the vault copies them (one write per attachment here),
libmagic (a byte-prefix sniff of the four signatures the reference acts on instead), the
platform's save calls and its database. The container id a save would return is the
email's number in LIST; `data.raw_email` is the file read as UTF-8, else latin-1 (the
reference has the text from its IMAP library). An attachment that cannot be written
fails its email here, where the reference logs it and goes on, so a broken vault shows.

Usage: reference_stdlib.py LIST VAULT_DIR > CONTAINERS.jsonl
  (LIST: a file with one email path per line; VAULT_DIR is created)
Prints one summary line to stderr: emails, failures, containers, vault files written,
artifacts by class. Needs only the Python standard library (3.9 or later).
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import html
import json
import mimetypes
import re
import sys
import urllib.parse
from email.header import decode_header, make_header
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from reference_rules import (
    clean_url,
    email_re,
    email_re2,
    encoded_word_re,
    forwarded_re,
    hash_re,
    ip_re,
    ipv6_re,
    is_ip,
    is_ipv4,
    is_ipv6,
    sdi,
    uri_re,
)

Artifact = dict[str, Any]

# Django's URLValidator patterns (django/core/validators.py): hosts, users, ports.
_UL = "\u00a1-\uffff"
_IPV4_HOST = (
    r"(?:0|25[0-5]|2[0-4][0-9]|1[0-9]?[0-9]?|[1-9][0-9]?)"
    r"(?:\.(?:0|25[0-5]|2[0-4][0-9]|1[0-9]?[0-9]?|[1-9][0-9]?)){3}"
)
_HOSTNAME = rf"[a-z{_UL}0-9](?:[a-z{_UL}0-9-]{{0,61}}[a-z{_UL}0-9])?"
_DOMAIN = rf"(?:\.(?!-)[a-z{_UL}0-9-]{{1,63}}(?<!-))*"
_TLD = rf"\.(?!-)(?:[a-z{_UL}-]{{2,63}}|xn--[a-z0-9]{{1,59}})(?<!-)\.?"
url_host_re = re.compile(
    rf"{_IPV4_HOST}|{_HOSTNAME}{_DOMAIN}{_TLD}|localhost", re.IGNORECASE
)
url_user_re = re.compile(r"[^\s:@/]+(?::[^\s:@/]*)?")
url_port_re = re.compile(r"[0-9]{1,5}")
whitespace_re = re.compile(r"\s")

# Elements that never hold text: their start tag is their whole element.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
    | {"param", "source", "track", "wbr"}
)
# The file extensions the reference maps to contains types (behaviour doc §4.8).
EXTENSION_CONTAINS = {
    "js": ["javascript"],
    "doc": ["doc"],
    "docx": ["doc"],
    "xls": ["xls"],
    "xlsx": ["xls"],
    "vmsn": ["os memory dump", "vm snapshot file"],
    "vmss": ["os memory dump", "vm suspend file"],
}


def dammit(data: str | bytes) -> str:
    """UnicodeDammit's result without chardet: text as is, else UTF-8, else
    windows-1252 with replacement characters."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def valid_url(url: str) -> bool:
    """Django's `URLValidator(schemes=["http", "https"])`, less its punycode retry."""
    scheme, sep, _ = url.partition("://")
    if (
        len(url) > 2048
        or whitespace_re.search(url)
        or not sep
        or scheme.lower() not in ("http", "https")
    ):
        return False
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:
        return False
    return valid_authority(netloc)


def valid_authority(netloc: str) -> bool:
    """Django's user, host and port patterns over a URL's authority."""
    user, at, hostport = netloc.rpartition("@")
    if at and not url_user_re.fullmatch(user):
        return False
    if hostport.startswith("["):
        host, bracket, port = hostport[1:].partition("]")
        port_ok = not port or (port[0] == ":" and url_port_re.fullmatch(port[1:]))
        return bool(bracket and port_ok) and is_ipv6(host)
    host, colon, port = hostport.partition(":")
    port_ok = not colon or url_port_re.fullmatch(port)
    return (
        bool(port_ok) and len(host) <= 253 and url_host_re.fullmatch(host) is not None
    )


def decode_uni_string(value: str, default: str) -> str:
    """The app's own RFC 2047 decoder (behaviour doc §4.7)."""
    words = encoded_word_re.findall(value)
    if not words:
        return value
    try:
        decoded = [decode_header(w)[0] for w in words]
    except Exception:  # noqa: BLE001 - the reference returns its default on any error
        return default
    out, count = "", 0
    for data, charset in decoded:
        if not charset or not data:
            continue
        text: str | bytes = data
        if charset != "utf-8" and isinstance(data, bytes):
            with contextlib.suppress(LookupError, UnicodeDecodeError):
                text = str(data, charset)
        out += dammit(text)
        count += 1
    return out if out and count == len(words) else value


class LinkCollector(HTMLParser):
    """What the reference asks BeautifulSoup (`html.parser`) for: every element with an
    href, every element with a src, each with its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, list[str]]] = []
        self.srcs: list[tuple[str, list[str]]] = []
        # Open elements, each with the text list it collects into when it is a link.
        self.stack: list[tuple[str, list[str] | None]] = []
        self.collecting: list[list[str]] = []

    def record(self, attrs: list[tuple[str, str | None]]) -> list[str] | None:
        values = dict(attrs)  # the last of a repeated attribute, as BeautifulSoup keeps
        text: list[str] | None = None
        if "href" in values:
            text = []
            self.links.append((values["href"] or "", text))
        if "src" in values:
            text = [] if text is None else text
            self.srcs.append((values["src"] or "", text))
        return text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text = self.record(attrs)
        if tag in VOID_ELEMENTS:
            return
        self.stack.append((tag, text))
        if text is not None:
            self.collecting.append(text)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.record(attrs)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                closed = self.stack[depth:]
                del self.stack[depth:]
                if any(text is not None for _, text in closed):
                    self.collecting = [t for _, t in self.stack if t is not None]
                return

    def handle_data(self, data: str) -> None:
        for text in self.collecting:
            text.append(data)


def contains_of(file_name: str, payload: bytes) -> list[str]:
    """The vault file's contains types: its extension's, then the byte signatures the
    reference reads off libmagic's description."""
    ext = file_name.rsplit(".", 1)[1].lower() if "." in file_name else ""
    types = list(EXTENSION_CONTAINS.get(ext, []))
    if payload.startswith(b"MZ"):
        types += ["pe file", "hash"]
    elif payload.startswith(b"%PDF-"):
        types.append("pdf")
    elif payload.startswith(b"MDMP"):
        types.append("process dump")
    elif payload.startswith((b"FWS", b"CWS", b"ZWS")):
        types.append("flash")
    return types


def decoded_payload(part: Message) -> bytes | None:
    """A leaf's payload, its transfer encoding undone (`get_payload(decode=True)`)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


class ProcessEmail:
    """One message's worth of state, as the reference's processor keeps it."""

    def __init__(self, email_id: int, vault_dir: Path) -> None:
        self.email_id = email_id
        self.vault_dir = vault_dir
        self.ips: set[str] = set()
        self.hashes: set[str] = set()
        self.urls: set[str] = set()
        self.domains: set[str] = set()
        self.header_artifacts: list[Artifact] = []
        self.bodies: list[bytes] = []
        self.files: list[tuple[str, bytes, dict[str, Any]]] = []

    @staticmethod
    def headers_of(part: Message) -> dict[str, Any]:
        items = part.items()
        if not items:
            return {}
        headers: dict[str, tuple[str, Any]] = {}  # case-insensitive, the last one wins
        for name, value in items:
            headers[name.lower()] = (name, value)
        received = [v for k, v in items if k.lower() == "received"]
        if received:
            headers["received"] = ("Received", received)
        # Values are str, or compat32 Header objects for raw 8-bit ones.
        subject = headers.get("subject", ("", None))[1]
        if subject:
            try:
                decoded = str(make_header(decode_header(subject)))
            except Exception:  # noqa: BLE001 - the reference falls back on any error
                decoded = decode_uni_string(subject, subject)
            headers["decodedsubject"] = ("decodedSubject", decoded)
        for key in ("To", "From", "CC"):
            value = headers.get(key.lower(), ("", None))[1]
            if value:
                decoded = decode_uni_string(str(value), value)
                headers["decoded" + key.lower()] = ("decoded" + key, decoded)
        return dict(headers.values())

    def email_artifact(self, part: Message, email_id: int | None = None) -> None:
        headers = self.headers_of(part)
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        cef: dict[str, Any] = {}
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
            {
                "run_automation": False,
                "name": "Email Artifact",
                "cef": cef,
                "cef_types": cef_types,
            }
        )

    def handle_part(self, part: Message, index: int) -> None:
        file_name = part.get_filename()
        disposition = part.get("Content-Disposition")
        content_type = part.get("Content-Type")
        content_id = part.get("Content-ID")
        if file_name is None:
            name, extension = f"part_{index}", f".{index}"
            if content_type is not None:
                extension = str(
                    mimetypes.guess_extension(re.sub(";.*", "", content_type))
                )
            if content_id is not None:
                name = content_id
            file_name = f"{name}{extension}"
        else:
            file_name = decode_uni_string(file_name, file_name)
        if disposition is not None and disposition.lower().strip() == "inline":
            if content_type is None:
                return  # the reference's `in None` raises: the part is skipped
            is_body = "text/html" in content_type or "text/plain" in content_type
        else:
            is_body = disposition is None
        if is_body:
            payload = decoded_payload(part)
            if payload:
                self.bodies.append(payload)
            return
        if content_type is not None and "message/rfc822" in content_type:
            return
        headers = self.headers_of(part)
        payload = decoded_payload(part)
        if payload:
            self.files.append((file_name, payload, headers))

    def handle_body(self, payload: bytes) -> None:
        # The reference reads the body file back as locale (UTF-8) text with universal
        # newlines, or as bytes when that fails.
        data: str | bytes
        try:
            data = payload.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            data = payload
        if not data:
            return
        text = dammit(data)
        if not text:
            return
        # Inline forwarded headers: drop the first "Forwarded message" line, parse the
        # rest.
        forwarded = forwarded_re.sub("", text, count=1)
        self.email_artifact(email.message_from_string(forwarded.strip()), self.email_id)

        for address in email_re.findall(text) + email_re2.findall(text):
            dom = address[address.rfind("@") + 1 :]
            if dom and not is_ipv4(dom):
                self.domains.add(dom)
        self.urls_and_domains(text)
        candidates = ip_re.findall(text)
        for groups in ipv6_re.findall(text):
            candidates.extend(g for g in groups if g)
        self.ips |= {c for c in set(candidates) if is_ip(c)}
        self.hashes |= set(hash_re.findall(text))

    def urls_and_domains(self, text: str) -> None:
        parser = LinkCollector()
        parser.feed(text)
        parser.close()
        links, srcs = parser.links, parser.srcs
        uris = []
        if links or srcs:
            link_text = []
            for href, href_text in links:
                link_text.append(clean_url("".join(href_text)))
                if not href.startswith("mailto:"):
                    uris.append(href)
            for src, src_text in srcs:
                link_text.append(clean_url("".join(src_text)))
                uris.append(src)
            uris.extend(t for t in link_text if t.startswith("http"))
        else:
            uris = [clean_url(u) for u in uri_re.findall(html.unescape(text))]
        valid = [u for u in uris if valid_url(u)]
        self.urls |= set(valid)
        for u in valid:
            try:
                host = urllib.parse.urlparse(u).hostname
            except ValueError:
                host = None
            if host and not is_ip(host):
                self.domains.add(host)
        for href, _ in links:
            if href.startswith("mailto:"):
                dom = href[href.find("@") + 1 :]
                if dom and not is_ip(dom):
                    self.domains.add(dom.split("?", 1)[0])

    def walk(self, mail: Message) -> None:
        if mail.is_multipart():
            for index, part in enumerate(mail.walk()):
                self.email_artifact(part, self.email_id if index == 0 else None)
                if part.is_multipart():
                    continue
                try:
                    self.handle_part(part, index)
                except Exception:  # noqa: BLE001, S112 - logged and skipped by the reference
                    continue
        else:
            self.email_artifact(mail, self.email_id)
            payload = decoded_payload(mail)
            if payload:
                self.bodies.append(payload)
        for body in self.bodies:
            self.handle_body(body)

    def vault_artifact(
        self, file_name: str, payload: bytes, headers: dict[str, Any]
    ) -> Artifact:
        """Copy one attachment into the vault and make its Vault Artifact (§4.8)."""
        sha1 = hashlib.sha1(payload, usedforsecurity=False).hexdigest()
        directory = self.vault_dir / sha1[:2]
        directory.mkdir(exist_ok=True)
        (directory / sha1).write_bytes(payload)
        artifact: Artifact = {
            "name": "Vault Artifact",
            "container_id": self.email_id,
            "run_automation": False,
            "cef": {
                "headers": headers,
                "fileName": file_name,
                "vaultId": sha1,
                "cs6": sha1,
                "cs6Label": "Vault ID",
                "fileHashSha256": hashlib.sha256(payload).hexdigest(),
                "fileHashMd5": hashlib.md5(payload, usedforsecurity=False).hexdigest(),
                "fileHashSha1": sha1,
            },
        }
        contains = contains_of(file_name, payload)
        if contains:
            artifact["cef_types"] = {"vaultId": contains, "cs6": contains}
        return artifact

    def process(self, path: Path, raw: bytes) -> dict[str, Any] | None:
        """The container of one email, or None when it has no artifact (then the
        reference creates no container and vaults nothing)."""
        mail = email.message_from_bytes(raw)
        name = mail.get("Subject")
        if name:
            try:
                name = str(make_header(decode_header(name)))
            except Exception:  # noqa: BLE001 - the reference falls back on any error
                name = decode_uni_string(name, f"Email ID: {self.email_id}")
        self.walk(mail)

        artifacts: list[Artifact] = []
        for key, values, label in (
            ("sourceAddress", self.ips, "IP Artifact"),
            ("fileHash", self.hashes, "Hash Artifact"),
            ("requestURL", self.urls, "URL Artifact"),
            ("destinationDnsDomain", self.domains, "Domain Artifact"),
        ):
            artifacts.extend(
                {"run_automation": False, "cef": {key: value}, "name": label}
                for value in values
                if value
            )
        artifacts.extend(self.header_artifacts)
        if not artifacts:
            return None
        for artifact in artifacts:
            artifact["source_data_identifier"] = sdi(artifact)
        if not self.files:
            artifacts[-1]["run_automation"] = True

        # After the container is saved: each file into the vault, its artifact saved
        # alone, the last one flagged before its identifier is computed.
        vault = [self.vault_artifact(*file) for file in self.files]
        if vault:
            vault[-1]["run_automation"] = True
        for artifact in vault:
            artifact["source_data_identifier"] = sdi(artifact)

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        folder = hashlib.md5(
            str(path.parent).encode(), usedforsecurity=False
        ).hexdigest()
        return {
            "source_data_identifier": f"{folder} : {self.email_id}",
            "name": name or f"Email ID: {self.email_id}",
            "data": {"raw_email": text},
            "run_automation": False,
            "artifacts": artifacts + vault,
        }


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(
            "usage: reference_stdlib.py LIST VAULT_DIR > CONTAINERS.jsonl\n"
        )
        return 2
    paths = [
        Path(line.rstrip("\n"))
        for line in Path(sys.argv[1]).read_text().splitlines()
        if line.strip()
    ]
    vault_dir = Path(sys.argv[2])
    vault_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    failed = containers = files = 0
    out = sys.stdout
    for email_id, path in enumerate(paths, start=1):
        try:
            container = ProcessEmail(email_id, vault_dir).process(
                path, path.read_bytes()
            )
        except Exception:  # noqa: BLE001 - one email's failure does not stop the others
            failed += 1
            continue
        if container is None:
            continue
        out.write(json.dumps(container, default=str))
        out.write("\n")
        containers += 1
        for artifact in container["artifacts"]:
            counts[artifact["name"]] = counts.get(artifact["name"], 0) + 1
        files += sum(1 for a in container["artifacts"] if a["name"] == "Vault Artifact")
    out.flush()
    summary = {
        "pipeline": "reference-stdlib",
        "emails": len(paths),
        "failed": failed,
        "containers": containers,
        "vault_files": files,
        "artifacts": dict(sorted(counts.items())),
    }
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
