#!/usr/bin/env python3
"""Seeded generator of the synthetic email corpus the extraction benchmarks run on.

Writes COUNT messages (default 10,000) as OUT/00000.eml ... and prints a SHA-256 over the
whole corpus, so anyone can check they benchmark the same bytes: the same seed gives the
same files on any machine and Python >= 3.9 (each message has its own random.Random seeded
with the string "SEED:INDEX", which does not depend on PYTHONHASHSEED).

What a message looks like, on purpose close to what a phishing mailbox receives:
- 2-4 Received headers with relay hosts and IPs, sometimes X-Originating-IP, DKIM-Signature,
  Reply-To; a quarter of subjects and about two fifths of sender names are RFC 2047
  encoded words;
- a multipart/alternative text + HTML body (HTML links as <a href>, images as <img src>)
  whose text carries URLs (a few defanged), IPv4 and IPv6 addresses, domains, e-mail
  addresses and MD5/SHA-1/SHA-256 hashes, in utf-8, iso-8859-1, windows-1252, koi8-r or
  iso-2022-jp, as quoted-printable, base64, 8bit or 7bit;
- 0-3 base64 attachments: text/CSV, PDF-like, PNG/JPEG-like and ZIP-like bytes;
- some attached messages (message/rfc822), a few of them base64-encoded.

Usage: benches/gen_corpus.py OUT [--count N] [--seed S]
Needs only the Python standard library.
"""

import argparse
import base64
import hashlib
import os
import quopri
import random
import sys

DEFAULT_SEED = 20261124
DEFAULT_COUNT = 10_000

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est "
    "laborum please verify your account invoice payment password urgent security team "
    "update required click below login suspended mailbox delivery failed attached document"
).split()

# Non-ASCII words each charset can encode, so every body really uses its charset.
NATIVE_WORDS = {
    "utf-8": ["café", "Grüße", "naïve", "请确认", "пароль", "déjà", "Ærøskøbing", "€100", "“urgent”"],
    "iso-8859-1": ["café", "Grüße", "naïve", "déjà", "señor", "Ærøskøbing", "façade"],
    "windows-1252": ["café", "Grüße", "€250", "“invoice”", "naïve", "œuvre", "–"],
    "koi8-r": ["пароль", "счёт", "оплата", "срочно", "банк", "вход"],
    "iso-2022-jp": ["請求書", "確認", "パスワード", "至急", "アカウント"],
}
# (charset, transfer encoding, weight)
BODY_ENCODINGS = [
    ("utf-8", "quoted-printable", 30),
    ("utf-8", "base64", 15),
    ("utf-8", "8bit", 10),
    ("us-ascii", "7bit", 10),
    ("iso-8859-1", "quoted-printable", 15),
    ("windows-1252", "quoted-printable", 10),
    ("koi8-r", "base64", 5),
    ("iso-2022-jp", "7bit", 5),
]
TLDS = ["com", "net", "org", "io", "co.uk", "de", "info", "xyz", "ru", "biz", "online", "com.br", "fr"]
SYLLABLES = ["sec", "pay", "log", "mail", "cloud", "net", "web", "acc", "ver", "bank", "serv",
             "doc", "share", "pro", "upd", "sign", "box", "link", "safe", "port", "data", "hub"]
FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Olivia", "Peggy", "Trent", "Victor", "Walter"]
LAST = ["Smith", "Jones", "Müller", "García", "Dubois", "Rossi", "Novak", "Tanaka", "Kowalski"]
SUBJECTS = ["Invoice {n} overdue", "Your mailbox is almost full", "Password expires today",
            "Shared document: Q{q} report", "Payment confirmation #{n}", "Action required: verify account",
            "Delivery failure notice", "RE: contract {n}", "FW: urgent wire transfer", "Security alert for your account"]
ENCODED_SUBJECTS = ["Rechnung {n} überfällig", "Facture n°{n} à régler", "Счёт {n} к оплате",
                    "請求書 {n} のご確認", "Contraseña caducada {n}", "Ваш пароль истекает"]


def domain(rng):
    name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    if rng.random() < 0.3:
        name += str(rng.randint(1, 99))
    if rng.random() < 0.15:
        name = rng.choice(SYLLABLES) + "-" + name
    return f"{name}.{rng.choice(TLDS)}"


def ipv4(rng):
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def ipv6(rng):
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:  # a compressed form, as people write them
        return f"2001:db8:{groups[2]}::{groups[7]}"
    return ":".join(groups)


def hexhash(rng):
    digits = rng.choice([32, 40, 64])  # MD5, SHA-1, SHA-256
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def url(rng, host=None):
    host = host or (("www." if rng.random() < 0.3 else "") + domain(rng))
    path = "/".join(rng.choice(SYLLABLES + LOREM) for _ in range(rng.randint(0, 4)))
    u = f"{rng.choice(['http', 'https', 'https'])}://{host}/{path}"
    if rng.random() < 0.5:
        u += f"?id={rng.getrandbits(40):x}&ref={rng.choice(LOREM)}"
    return u


def address(rng, dom=None):
    return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower().encode('ascii', 'ignore').decode()}@{dom or domain(rng)}"


def indicator(rng):
    """One indicator as it appears in text, and the URL to link it to in HTML (or None)."""
    kind = rng.random()
    if kind < 0.35:
        u = url(rng)
        return u, u
    if kind < 0.40:  # defanged, as analysts forward them
        u = url(rng)
        return u.replace("http", "hxxp", 1).replace(".", "[.]", 1), None
    if kind < 0.55:
        return ipv4(rng), None
    if kind < 0.62:
        return ipv6(rng), None
    if kind < 0.75:
        return hexhash(rng), None
    if kind < 0.88:
        return address(rng), None
    return domain(rng), None


def paragraphs(rng, charset, count):
    """Paragraphs as lists of (text, link) tokens."""
    native = NATIVE_WORDS.get(charset, [])
    out = []
    for _ in range(count):
        tokens = []
        for _ in range(rng.randint(35, 80)):
            r = rng.random()
            if r < 0.05:
                tokens.append(indicator(rng))
            elif r < 0.09 and native:
                tokens.append((rng.choice(native), None))
            else:
                tokens.append((rng.choice(LOREM), None))
        out.append(tokens)
    return out


def wrap(words, width=72):
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    if line:
        lines.append(line)
    return lines


def text_body(paras):
    lines = []
    for p in paras:
        lines += wrap([t for t, _ in p])
        lines.append("")
    return "\n".join(lines)


def html_body(rng, paras):
    parts = ['<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html">',
             "<style>body{font-family:Arial,sans-serif;font-size:14px}p{margin:0 0 12px}"
             ".btn{background:#0a66c2;color:#fff;padding:8px 16px}</style></head><body>",
             f'<table width="100%"><tr><td><img src="https://cdn.{domain(rng)}/logo.png" alt="logo" width="120"></td></tr>']
    for p in paras:
        words = []
        for text, link in p:
            if link and rng.random() < 0.5:
                words.append(f'<a href="{link}">click here</a>')
            elif link:
                words.append(f'<a href="{link}">{text}</a>')
            else:
                words.append(text.replace("&", "&amp;").replace("<", "&lt;"))
        parts.append("<tr><td><p>" + "\n".join(wrap(words)) + "</p></td></tr>")
    parts.append(f'<tr><td><a class="btn" href="{url(rng)}">Verify now</a></td></tr></table></body></html>')
    return "\n".join(parts)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def b64_lines(data):
    enc = base64.b64encode(data).decode("ascii")
    return "\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def encode_text(text, charset, cte):
    """The header lines and body bytes of a text part."""
    data = text.encode(charset)
    if cte == "quoted-printable":
        body = crlf(quopri.encodestring(data).decode("ascii")).encode("ascii")
    elif cte == "base64":
        body = b64_lines(data).encode("ascii")
    else:  # 7bit or 8bit: every charset used here keeps LF as the byte 0x0A
        body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return body


def encoded_word(rng, text):
    if rng.random() < 0.6:
        return "=?utf-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="
    try:
        data = text.encode("iso-8859-1")
        cs = "iso-8859-1"
    except UnicodeEncodeError:
        data = text.encode("utf-8")
        cs = "utf-8"
    q = "".join(chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else
                "_" if b == 32 else f"={b:02X}" for b in data)
    return f"=?{cs}?Q?{q}?="


def rfc_date(rng):
    day = rng.randint(1, 28)
    mon = rng.choice(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    dow = rng.choice(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    return f"{dow}, {day} {mon} 2026 {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000"


def boundary(rng):
    return f"=_Part_{rng.getrandbits(64):016x}"


def attachment(rng):
    """(content type, file name, bytes) of one attachment."""
    kind = rng.random()
    stem = rng.choice(["invoice", "report", "scan", "document", "statement", "photo", "archive", "Rechnung_ü"])
    if kind < 0.3:
        rows = [",".join([address(rng), ipv4(rng), url(rng), hexhash(rng)]) for _ in range(rng.randint(5, 30))]
        return "text/csv", f"{stem}.csv", ("email,ip,url,hash\r\n" + "\r\n".join(rows) + "\r\n").encode()
    if kind < 0.55:
        body = rng.randbytes(rng.randint(600, 4000))
        pdf = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
               b"2 0 obj\n<< /Type /Annot /URI (" + url(rng).encode() + b") >>\nendobj\nstream\n"
               + body + b"\nendstream\n%%EOF\n")
        return "application/pdf", f"{stem}.pdf", pdf
    if kind < 0.8:
        if rng.random() < 0.5:
            return "image/png", f"{stem}.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(rng.randint(300, 3500))
        return "image/jpeg", f"{stem}.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(rng.randint(300, 3500))
    return "application/zip", f"{stem}.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + rng.randbytes(rng.randint(400, 4000))


def attachment_part(rng, ctype, name, data):
    if any(ord(c) > 127 for c in name):
        disp = f"attachment; filename*=utf-8''{''.join(c if c.isascii() else ''.join(f'%{b:02X}' for b in c.encode()) for c in name)}"
        ct_name = encoded_word(rng, name)
    else:
        disp = f'attachment; filename="{name}"'
        ct_name = name
    return (f'Content-Type: {ctype}; name="{ct_name}"\r\nContent-Transfer-Encoding: base64\r\n'
            f"Content-Disposition: {disp}\r\n\r\n").encode() + b64_lines(data).encode() + b"\r\n"


def headers(rng, sender_dom, nested):
    h = []
    if not nested:
        hops = rng.randint(2, 4)
        for k in range(hops):
            relay = f"mail{rng.randint(1, 40)}.{domain(rng) if k else sender_dom}"
            h.append(f"Received: from {relay} ({relay} [{ipv4(rng)}])\r\n"
                     f"\tby mx{k + 1}.soc-example.org with ESMTPS id {rng.getrandbits(48):012X}\r\n"
                     f"\tfor <phishing@soc-example.org>; {rfc_date(rng)}")
        h.append(f"Return-Path: <{address(rng, sender_dom)}>")
        if rng.random() < 0.3:
            h.append(f"X-Originating-IP: [{ipv4(rng)}]")
        if rng.random() < 0.4:
            sig = base64.b64encode(rng.randbytes(128)).decode()
            h.append(f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={sender_dom}; s=s1;\r\n"
                     f"\th=from:to:subject:date:message-id; bh={base64.b64encode(rng.randbytes(32)).decode()};\r\n"
                     f"\tb={sig[:70]}\r\n\t{sig[70:]}")
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    shown = encoded_word(rng, name) if (rng.random() < 0.2 or not name.isascii()) else f'"{name}"'
    h.append(f"From: {shown} <{address(rng, sender_dom)}>")
    to = ", ".join(f"<{address(rng, 'soc-example.org')}>" for _ in range(rng.randint(1, 3)))
    h.append(f"To: {to}")
    if rng.random() < 0.3:
        h.append(f"Cc: {address(rng)}")
    if rng.random() < 0.2:
        h.append(f"Reply-To: {address(rng)}")
    n = rng.randint(1000, 99999)
    if rng.random() < 0.25:
        h.append("Subject: " + encoded_word(rng, rng.choice(ENCODED_SUBJECTS).format(n=n)))
    else:
        h.append("Subject: " + rng.choice(SUBJECTS).format(n=n, q=rng.randint(1, 4)))
    h.append(f"Date: {rfc_date(rng)}")
    h.append(f"Message-ID: <{rng.getrandbits(96):024x}@{sender_dom}>")
    h.append("MIME-Version: 1.0")
    if rng.random() < 0.5:
        h.append(f"X-Mailer: {rng.choice(['Microsoft Outlook 16.0', 'Apple Mail (2.3774)', 'Thunderbird 128.0', 'PHPMailer 6.9'])}")
    return h


def alternative(rng, nested):
    charset, cte = rng.choices([(c, t) for c, t, _ in BODY_ENCODINGS], [w for _, _, w in BODY_ENCODINGS])[0]
    paras = paragraphs(rng, charset, rng.randint(1, 2) if nested else rng.randint(1, 4))
    text = text_body(paras)
    html = html_body(rng, paras)
    b = boundary(rng)
    out = [f'Content-Type: multipart/alternative; boundary="{b}"\r\n\r\n'.encode(), f"--{b}\r\n".encode()]
    out.append(f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode())
    out.append(encode_text(text, charset, cte) + b"\r\n")
    out.append(f"--{b}\r\n".encode())
    out.append(f"Content-Type: text/html; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode())
    out.append(encode_text(html, charset, cte) + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out)


def message(rng, nested=False):
    sender_dom = domain(rng)
    hdrs = "\r\n".join(headers(rng, sender_dom, nested)).encode("ascii")
    n_att = rng.choices([0, 1, 2, 3], [40, 35, 15, 10])[0] if not nested else rng.choices([0, 1], [70, 30])[0]
    attached_message = (not nested) and rng.random() < 0.08
    body = alternative(rng, nested)
    if n_att == 0 and not attached_message:
        return hdrs + b"\r\n" + body
    b = boundary(rng)
    out = [hdrs, f'\r\nContent-Type: multipart/mixed; boundary="{b}"\r\n\r\n'.encode(),
           b"This is a multi-part message in MIME format.\r\n\r\n", f"--{b}\r\n".encode(), body]
    for _ in range(n_att):
        out += [f"--{b}\r\n".encode(), attachment_part(rng, *attachment(rng))]
    if attached_message:
        inner = message(rng, nested=True)
        out.append(f"--{b}\r\n".encode())
        if rng.random() < 0.25:  # base64-encoded, as some clients forward them
            out.append(b'Content-Type: message/rfc822; name="forwarded.eml"\r\nContent-Transfer-Encoding: base64\r\n'
                       b'Content-Disposition: attachment; filename="forwarded.eml"\r\n\r\n' + b64_lines(inner).encode() + b"\r\n")
        else:
            out.append(b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="directory to write NNNNN.eml files into (created)")
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    width = max(5, len(str(args.count - 1)))
    corpus = hashlib.sha256()
    sizes = []
    for i in range(args.count):
        rng = random.Random(f"{args.seed}:{i}")
        data = message(rng)
        name = f"{i:0{width}d}.eml"
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        # Name and length go into the digest too, so moved bytes change it.
        corpus.update(f"{name}\0{len(data)}\0".encode())
        corpus.update(data)
        sizes.append(len(data))
    sizes.sort()
    print(f"{args.count} emails in {args.out}: {sum(sizes) / 1e6:.1f} MB, median {sizes[len(sizes) // 2] / 1e3:.1f} KB, "
          f"min {sizes[0] / 1e3:.1f} KB, max {sizes[-1] / 1e3:.1f} KB; seed {args.seed}; corpus sha256 {corpus.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
