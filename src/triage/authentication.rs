//! SPF, DKIM and DMARC results as the receiving system recorded them, and one verdict.
//!
//! Sources, in order of trust:
//! 1. `Authentication-Results` (RFC 8601), also Microsoft's form without an authserv-id
//!    (`spf=pass (sender IP is ...) smtp.mailfrom=x; contoso.com; dkim=...;compauth=pass
//!    reason=100`), with stray words and `action=`/`compauth=` ignored;
//! 2. `Received-SPF` (RFC 7208 §9.1), for SPF only, when no `Authentication-Results` has SPF;
//! 3. fallbacks for a method none of the above reports: `ARC-Authentication-Results`, then
//!    `X-MS-Exchange-Authentication-Results`. Both record what an *earlier* hop (a forwarder,
//!    a list, the sender's own Exchange tenant) saw, not the final receiver, so they never
//!    override the receiver's own headers and never make a result appear on their own.
//!
//! Within each source the topmost header (the most recently added) wins per method: the
//! receiver's own verdict sits above anything the sender could have written.

use serde::Serialize;

use super::{Lexeme, lex};
use crate::mime::RawHeader;

/// The authentication results of one message, lowercased as written (`pass`, `fail`,
/// `softfail`, `neutral`, `none`, `temperror`, `permerror`, `policy`, `bestguesspass`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailAuthentication {
    /// SPF result, if any header reports one.
    pub spf: Option<String>,
    /// DKIM result, if any header reports one.
    pub dkim: Option<String>,
    /// DMARC result, if any header reports one.
    pub dmarc: Option<String>,
    /// The overall verdict over the three.
    pub verdict: Verdict,
}

/// The overall authentication verdict (the `AuthenticityCheck` of XSOAR's
/// `CheckEmailAuthenticity`, which analysts know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// SPF, DKIM and DMARC all pass (DMARC `bestguesspass` included).
    Pass,
    /// At least one of them is `fail`.
    Fail,
    /// None fails, but SPF is `softfail` or a method reports `policy`.
    Suspicious,
    /// Anything else: a method is missing, `none`, `neutral`, `temperror`, `permerror` or a
    /// word this crate does not know.
    Undetermined,
}

/// The three methods reported, in the order of the struct fields.
const METHODS: [&str; 3] = ["spf", "dkim", "dmarc"];

/// The SPF, DKIM and DMARC results of a header block (message order, topmost first) and
/// their verdict. `None` when the message carries neither `Authentication-Results` nor
/// `Received-SPF`.
pub fn email_authentication(headers: &[RawHeader]) -> Option<EmailAuthentication> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    };
    if named("authentication-results").next().is_none() && named("received-spf").next().is_none() {
        return None;
    }
    let mut found: [Option<String>; 3] = [None, None, None];
    fill_from(&mut found, named("authentication-results"));
    if found[0].is_none() {
        found[0] = named("received-spf").find_map(received_spf_result);
    }
    fill_from(&mut found, named("arc-authentication-results"));
    fill_from(&mut found, named("x-ms-exchange-authentication-results"));
    let [spf, dkim, dmarc] = found;
    let verdict = verdict(spf.as_deref(), dkim.as_deref(), dmarc.as_deref());
    Some(EmailAuthentication {
        spf,
        dkim,
        dmarc,
        verdict,
    })
}

/// Fills each still-missing method from the first (topmost) of `values` that reports it.
fn fill_from<'a>(found: &mut [Option<String>; 3], values: impl Iterator<Item = &'a str>) {
    for value in values {
        if found.iter().all(Option::is_some) {
            return;
        }
        let results = method_results(value);
        for (slot, method) in found.iter_mut().zip(METHODS) {
            if slot.is_none() {
                *slot = best_result(&results, method);
            }
        }
    }
}

/// The result of `method` in one header: `pass` if any of its results passes, else the
/// first one written.
///
/// Several DKIM results in one header are normal: a list or forwarder adds its own
/// signature, a domain signs with two keys during a rotation (Yahoo's `dkim=perm_fail` for
/// the old key next to `dkim=pass` for the new one). RFC 6376 §6.3 treats a failed signature
/// like no signature, and DMARC passes on any aligned pass, so one valid signature
/// authenticates the message; a broken extra one is not evidence of forgery.
fn best_result(results: &[(String, String)], method: &str) -> Option<String> {
    let mut of_method = results.iter().filter(|(m, _)| m == method);
    let first = of_method.next()?;
    if first.1 == "pass" || of_method.any(|(_, r)| r == "pass") {
        Some("pass".to_owned())
    } else {
        Some(first.1.clone())
    }
}

/// Every `method[/version]=result` of an `Authentication-Results`-like value, in order,
/// both lowercased, the version dropped.
///
/// Tolerant of what real receivers write: the value is split on `;` outside comments and
/// quoted strings; in each part the first `key=value` pair is the method if its key has no
/// `.` (`header.from=` is a property, never a method), and everything else (the
/// authserv-id with its version, Microsoft's stray `contoso.com` parts, `reason=`,
/// `action=`, `ptype.prop=value`) is skipped. Comments may sit anywhere, even inside a
/// `dkim / 1` method or a `policy . expired` property (RFC 8601 Appendix B.7).
fn method_results(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut part: Vec<Lexeme<'_>> = Vec::new();
    for (lexeme, _) in lex(value) {
        match lexeme {
            Lexeme::Semicolon => {
                out.extend(method_of_part(&part));
                part.clear();
            }
            Lexeme::Comment(_) => {}
            other => part.push(other),
        }
    }
    out.extend(method_of_part(&part));
    out
}

/// The method result of one `;`-separated part (comments already removed), if it has one.
fn method_of_part(part: &[Lexeme<'_>]) -> Option<(String, String)> {
    let items = glue_dotted_words(part);
    let key_at = items.windows(3).position(|w| {
        matches!(
            w,
            [Item::Text(_), Item::Equals, Item::Text(_) | Item::Quoted]
        )
    })?;
    let (Some(Item::Text(key)), Some(Item::Text(value))) =
        (items.get(key_at), items.get(key_at + 2))
    else {
        return None;
    };
    let method = key.split('/').next().unwrap_or_default().trim();
    if method.is_empty() || method.contains('.') {
        return None;
    }
    let result: String = value
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    if result.is_empty() {
        return None;
    }
    Some((method.to_ascii_lowercase(), result.to_ascii_lowercase()))
}

/// A part's lexemes after gluing words that RFC 8601 lets comments and white space split.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Text(String),
    Quoted,
    Equals,
}

/// Joins `dkim` `/` `1` into `dkim/1` and `policy` `.` `expired` into `policy.expired`:
/// adjacent words are one when a `/` or `.` sits at their seam.
fn glue_dotted_words(part: &[Lexeme<'_>]) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::with_capacity(part.len());
    for lexeme in part {
        match lexeme {
            Lexeme::Word(word) => {
                if let Some(Item::Text(last)) = items.last_mut()
                    && (last.ends_with(['/', '.']) || word.starts_with(['/', '.']))
                {
                    last.push_str(word);
                } else {
                    items.push(Item::Text((*word).to_owned()));
                }
            }
            Lexeme::Quoted(_) => items.push(Item::Quoted),
            Lexeme::Equals => items.push(Item::Equals),
            Lexeme::Comment(_) | Lexeme::Semicolon => {}
        }
    }
    items
}

/// The result word that starts a `Received-SPF` value (`Pass (protection.outlook.com: ...)`,
/// `softfail (example.com: ...) client-ip=...`), lowercased.
fn received_spf_result(value: &str) -> Option<String> {
    let result: String = value
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    (!result.is_empty()).then(|| result.to_ascii_lowercase())
}

/// The verdict over the three results: fail, then suspicious, then pass only when every
/// method passed; anything else is undetermined.
///
/// `permerror` is undetermined, not a failure: it says the sender's DNS record is broken,
/// not that this message is forged. DMARC `bestguesspass` (Microsoft: no DMARC record, but
/// SPF or DKIM passed aligned with the From domain) counts as a pass: the alignment DMARC
/// checks holds; only the owner's policy is missing. Microsoft's `compauth` is not one of
/// the three and does not count (it is derived from them and its own heuristics).
fn verdict(spf: Option<&str>, dkim: Option<&str>, dmarc: Option<&str>) -> Verdict {
    let results = [spf, dkim, dmarc];
    if results.contains(&Some("fail")) {
        Verdict::Fail
    } else if spf == Some("softfail") || results.contains(&Some("policy")) {
        Verdict::Suspicious
    } else if results
        .iter()
        .all(|r| matches!(r, Some("pass" | "bestguesspass")))
    {
        Verdict::Pass
    } else {
        Verdict::Undetermined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> RawHeader {
        RawHeader {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    fn auth(headers: &[(&str, &str)]) -> Option<EmailAuthentication> {
        let headers: Vec<_> = headers.iter().map(|(n, v)| header(n, v)).collect();
        email_authentication(&headers)
    }

    fn expect(
        headers: &[(&str, &str)],
        spf: Option<&str>,
        dkim: Option<&str>,
        dmarc: Option<&str>,
        verdict: Verdict,
    ) {
        let got = auth(headers).expect("headers present");
        assert_eq!(
            (
                got.spf.as_deref(),
                got.dkim.as_deref(),
                got.dmarc.as_deref()
            ),
            (spf, dkim, dmarc),
            "{headers:?}"
        );
        assert_eq!(got.verdict, verdict, "{headers:?}");
    }

    /// Gmail's receiver headers, from a linux-mm message as archived on lore.kernel.org
    /// (mx.google.com, 2019).
    #[test]
    fn gmail_all_pass() {
        expect(
            &[
                (
                    "Received-SPF",
                    "pass (google.com: domain of righi.andrea@gmail.com designates 209.85.220.65 as permitted sender) client-ip=209.85.220.65;",
                ),
                (
                    "Authentication-Results",
                    "mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20161025 header.b=arDL1dow;\r\n       spf=pass (google.com: domain of righi.andrea@gmail.com designates 209.85.220.65 as permitted sender) smtp.mailfrom=righi.andrea@gmail.com;\r\n       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com",
                ),
            ],
            Some("pass"),
            Some("pass"),
            Some("pass"),
            Verdict::Pass,
        );
    }

    /// Microsoft 365 without an authserv-id, stray `example.com` parts glued to a `;`, and
    /// `Received-SPF: SoftFail`: mailgun/flanker `tests/fixtures/messages/bounce_office365.eml`
    /// (Apache-2.0), quoted-printable removed.
    #[test]
    fn microsoft_form_without_authserv_id_softfail() {
        expect(
            &[
                (
                    "Authentication-Results",
                    "spf=softfail (sender IP is 52.58.62.203)\r\n smtp.mailfrom=ninomail.com; example.com; dkim=pass (signature was\r\n verified) header.d=ninomail.com;example.com; dmarc=none action=none\r\n header.from=mailgunhq.com;",
                ),
                (
                    "Received-SPF",
                    "SoftFail (protection.outlook.com: domain of transitioning\r\n ninomail.com discourages use of 52.58.62.203 as permitted sender)",
                ),
            ],
            Some("softfail"),
            Some("pass"),
            Some("none"),
            Verdict::Suspicious,
        );
    }

    /// Microsoft Learn, "Email authentication in EOP" (`MicrosoftDocs`, CC BY 4.0): a
    /// composite-authentication failure with nothing published.
    #[test]
    fn microsoft_compauth_fail_with_nothing_published_is_undetermined() {
        expect(
            &[(
                "Authentication-Results",
                "spf=none (sender IP is 10.2.3.4)\r\n  smtp.mailfrom=fabrikam.com; contoso.com; dkim=none\r\n  (message not signed) header.d=none; contoso.com; dmarc=none\r\n  action=none header.from=fabrikam.com; compauth=fail reason=001",
            )],
            Some("none"),
            Some("none"),
            Some("none"),
            Verdict::Undetermined,
        );
    }

    /// Outlook.com's header as recorded in mjl-/mox `message/authresults_test.go` (MIT):
    /// no space after `;`, `compauth=` folded before its reason.
    #[test]
    fn outlook_com_pass_with_compauth() {
        expect(
            &[(
                "Authentication-Results",
                "x; spf=pass (sender IP is 84.22.96.237)\r\n smtp.mailfrom=ueber.net; dkim=pass (signature was verified)\r\n header.d=ueber.net;dmarc=pass action=none header.from=ueber.net;compauth=pass\r\n reason=100",
            )],
            Some("pass"),
            Some("pass"),
            Some("pass"),
            Verdict::Pass,
        );
    }

    /// Yahoo (mjl-/mox, MIT): `dkim=perm_fail` for a rotated key next to `dkim=pass`, and
    /// `dmarc=pass(p=REJECT)` with no space before the comment.
    #[test]
    fn yahoo_any_dkim_pass_wins_and_glued_comment() {
        expect(
            &[(
                "Authentication-Results",
                "atlas220.free.mail.bf1.yahoo.com;\r\n dkim=perm_fail header.i=@ueber.net header.s=2023a;\r\n dkim=pass header.i=@ueber.net header.s=2023b;\r\n spf=pass smtp.mailfrom=ueber.net;\r\n dmarc=pass(p=REJECT) header.from=ueber.net;",
            )],
            Some("pass"),
            Some("pass"),
            Some("pass"),
            Verdict::Pass,
        );
    }

    /// Proton writes one method per header (mjl-/mox, MIT); the methods merge, and a
    /// `permerror` DKIM next to a pass is a pass.
    #[test]
    fn proton_one_method_per_header_merges() {
        expect(
            &[
                (
                    "Authentication-Results",
                    "mail.protonmail.ch; dkim=permerror (0-bit key) header.d=ueber.net\r\n header.i=mechiel@ueber.net header.b=\"a4SMWyJ7\"; dkim=pass (2048-bit key)\r\n header.d=ueber.net header.i=mechiel@ueber.net header.b=\"mQickWQ7\"",
                ),
                (
                    "Authentication-Results",
                    "mail.protonmail.ch; dmarc=pass (p=reject dis=none)\r\n header.from=ueber.net",
                ),
                (
                    "Authentication-Results",
                    "mail.protonmail.ch; spf=pass smtp.mailfrom=ueber.net",
                ),
                (
                    "Authentication-Results",
                    "mail.protonmail.ch; arc=none smtp.remote-ip=84.22.96.237",
                ),
            ],
            Some("pass"),
            Some("pass"),
            Some("pass"),
            Verdict::Pass,
        );
    }

    /// apache/spamassassin `t/data/nice/authres` (Apache-2.0): a spaced, commented `reason`
    /// whose quoted text holds `(`, and a `;` inside a comment that must not split.
    #[test]
    fn spamassassin_quoted_and_commented_oddities() {
        expect(
            &[(
                "Authentication-Results",
                "authrestest4int 2; spf=fail reason (BAH) = \"just some (<>.%&! reason\" smtp.mailfrom=dogma.slashnull.org",
            )],
            Some("fail"),
            None,
            None,
            Verdict::Fail,
        );
        expect(
            &[(
                "Authentication-Results",
                "authrestest6int;\r\n        dkim=fail (2048-bit key; unprotected) header.d=gmail.com header.i=\" foo bar \\\"xyz\\\"@gmail.com\" header.b=SI+iqkld;",
            )],
            None,
            Some("fail"),
            None,
            Verdict::Fail,
        );
    }

    /// RFC 8601 Appendix B.6 (two signatures, one broken in transit) and B.7 (comments
    /// everywhere, even inside `dkim / 1`).
    #[test]
    fn rfc8601_appendix_examples() {
        expect(
            &[(
                "Authentication-Results",
                "example.com;\r\n          dkim=pass (good signature) header.d=mail-router.example.net;\r\n          dkim=fail (bad signature) header.d=newyork.example.com",
            )],
            None,
            Some("pass"),
            None,
            Verdict::Undetermined,
        );
        expect(
            &[(
                "Authentication-Results",
                "foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
            )],
            None,
            Some("fail"),
            None,
            Verdict::Fail,
        );
        expect(
            &[("Authentication-Results", "example.org 1; none")],
            None,
            None,
            None,
            Verdict::Undetermined,
        );
    }

    /// apache/spamassassin `t/data/nice/spf3-received-spf` (Apache-2.0): three `Received-SPF`
    /// headers; the topmost (most recent) wins.
    #[test]
    fn received_spf_topmost_wins() {
        expect(
            &[
                (
                    "Received-SPF",
                    "fail (dostech.ca: 69.61.78.188 is authorized to use\r\n 'spamassassin@dostech.ca' in 'mfrom' identity (mechanism 'mx' matched))\r\n receiver=FC5-VPC; identity=mfrom; envelope-from=\"spamassassin@dostech.ca\";\r\n helo=smtp.dostech.net; client-ip=69.61.78.188",
                ),
                (
                    "Received-SPF",
                    "softfail (dostech.ca: 69.61.78.188 is authorized to use\r\n 'dostech.ca' in 'helo' identity (mechanism 'mx' matched)) receiver=FC5-VPC;\r\n identity=helo; helo=dostech.ca; client-ip=69.61.78.188",
                ),
                (
                    "Received-SPF",
                    "neutral (herse.apache.org: domain of spamassassin@dostech.ca\r\n designates 69.61.78.188 as permitted sender)",
                ),
            ],
            Some("fail"),
            None,
            None,
            Verdict::Fail,
        );
    }

    #[test]
    fn authentication_results_beat_received_spf_and_topmost_header_wins() {
        expect(
            &[
                ("Received-SPF", "Pass (protection.outlook.com: ...)"),
                (
                    "Authentication-Results",
                    "mx.example.com; spf=fail smtp.mailfrom=a.example",
                ),
                (
                    "Authentication-Results",
                    "mx.example.com; spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example",
                ),
            ],
            Some("fail"),
            Some("pass"),
            None,
            Verdict::Fail,
        );
    }

    /// Microsoft's `Received-SPF: None` and an `Authentication-Results` with an empty
    /// sender IP and `<>` mail-from (mailgun/flanker `bounce_office365.eml`, Apache-2.0).
    #[test]
    fn microsoft_bounce_with_null_sender() {
        expect(
            &[
                (
                    "Received-SPF",
                    "None (protection.outlook.com:  does not designate permitted\r\n sender hosts)",
                ),
                (
                    "Authentication-Results",
                    "spf=none (sender IP is ) smtp.mailfrom=<>; ",
                ),
            ],
            Some("none"),
            None,
            None,
            Verdict::Undetermined,
        );
    }

    /// The fallbacks fill only what the receiver's headers lack. Shapes: a kernel.org list
    /// receiver's one-method header, and Microsoft's ARC and Exchange headers as archived from
    /// the linux-kernel and xen-devel lists (the ARC header's `spf=pass` changed to `fail` here
    /// to show that it does not override the receiver's own SPF result).
    #[test]
    fn arc_and_exchange_headers_only_fill_gaps() {
        expect(
            &[
                (
                    "Authentication-Results",
                    "smtp.subspace.kernel.org; spf=pass smtp.mailfrom=cixtech.com",
                ),
                (
                    "ARC-Authentication-Results",
                    "i=1; mx.microsoft.com 1; spf=fail (sender ip is\r\n 222.71.101.198) smtp.rcpttodomain=cixtech.com smtp.mailfrom=cixtech.com;\r\n dmarc=bestguesspass action=none header.from=cixtech.com; dkim=none (message\r\n not signed); arc=none (0)",
                ),
            ],
            Some("pass"),
            Some("none"),
            Some("bestguesspass"),
            Verdict::Undetermined,
        );
        expect(
            &[
                (
                    "X-MS-Exchange-Authentication-Results",
                    "spf=pass (sender IP is 63.35.35.123)\r\n smtp.mailfrom=arm.com; lists.xenproject.org; dkim=pass (signature was\r\n verified) header.d=armh.onmicrosoft.com;lists.xenproject.org;\r\n dmarc=bestguesspass action=none header.from=arm.com;",
                ),
                (
                    "Received-SPF",
                    "Pass (protection.outlook.com: domain of arm.com designates\r\n 63.35.35.123 as permitted sender) receiver=protection.outlook.com;\r\n client-ip=63.35.35.123; helo=64aa7808-outbound-1.mta.getcheckrecipient.com;",
                ),
            ],
            Some("pass"),
            Some("pass"),
            Some("bestguesspass"),
            Verdict::Pass,
        );
        // Without a receiver header there is no result at all, whatever earlier hops said.
        assert_eq!(
            auth(&[(
                "ARC-Authentication-Results",
                "i=1; mx.google.com; spf=pass smtp.mailfrom=a.example"
            )]),
            None
        );
    }

    /// Yahoo's old DomainKeys-era header (mailgun/flanker, Apache-2.0): `from=` parts are
    /// not methods that matter, `dkim=pass (ok)` is read.
    #[test]
    fn legacy_yahoo_header() {
        expect(
            &[(
                "Authentication-Results",
                "mta1247.mail.bf1.yahoo.com  from=example.com; domainkeys=pass (ok);  from=example.com; dkim=pass (ok)",
            )],
            None,
            Some("pass"),
            None,
            Verdict::Undetermined,
        );
    }

    #[test]
    fn verdict_rules() {
        use Verdict::{Fail, Pass, Suspicious, Undetermined};
        for (spf, dkim, dmarc, want) in [
            (Some("pass"), Some("pass"), Some("pass"), Pass),
            (Some("pass"), Some("pass"), Some("bestguesspass"), Pass),
            (Some("softfail"), Some("pass"), Some("fail"), Fail),
            (Some("softfail"), Some("pass"), Some("pass"), Suspicious),
            (Some("pass"), Some("policy"), Some("pass"), Suspicious),
            (Some("pass"), Some("policy"), None, Suspicious),
            (Some("pass"), Some("pass"), None, Undetermined),
            (Some("permerror"), Some("pass"), Some("pass"), Undetermined),
            (Some("pass"), Some("temperror"), Some("pass"), Undetermined),
            (Some("neutral"), Some("pass"), Some("pass"), Undetermined),
            (Some("pass"), Some("pass"), Some("none"), Undetermined),
            (Some("pass"), Some("perm_fail"), Some("pass"), Undetermined),
            (None, None, None, Undetermined),
        ] {
            assert_eq!(
                verdict(spf, dkim, dmarc),
                want,
                "{spf:?} {dkim:?} {dmarc:?}"
            );
        }
    }

    #[test]
    fn dkim_policy_is_suspicious() {
        expect(
            &[(
                "Authentication-Results",
                "mx.example.org; spf=pass smtp.mailfrom=example.net; dkim=policy (signature by third party) header.d=esp.example; dmarc=pass header.from=example.net",
            )],
            Some("pass"),
            Some("policy"),
            Some("pass"),
            Verdict::Suspicious,
        );
    }

    #[test]
    fn absent_headers_give_none_and_empty_ones_undetermined() {
        assert_eq!(auth(&[("From", "a@example.com")]), None);
        expect(
            &[("authentication-RESULTS", "")],
            None,
            None,
            None,
            Verdict::Undetermined,
        );
        expect(
            &[("Received-SPF", "  ")],
            None,
            None,
            None,
            Verdict::Undetermined,
        );
        expect(
            &[("Received-SPF", "(no result word) pass")],
            None,
            None,
            None,
            Verdict::Undetermined,
        );
    }

    #[test]
    fn methods_and_results_are_lowercased_and_versions_dropped() {
        expect(
            &[(
                "Authentication-Results",
                "mx.example.com; SPF=PASS smtp.mailfrom=a.example; DKIM/1=Pass; dmarc=\"pass\"",
            )],
            Some("pass"),
            Some("pass"),
            None,
            Verdict::Undetermined,
        );
    }

    #[test]
    fn hostile_values_never_panic() {
        const PIECES: [&str; 16] = [
            "spf", "dkim", "=", ";", "(", ")", "\"", "\\", "/", ".", "pass", " ", "\r\n ", "é",
            "header.d", "fail",
        ];
        for text in crate::extract::pseudo_random_texts(0x05ee_da11, &PIECES, 30, 2000) {
            let _ = auth(&[
                ("Authentication-Results", &text),
                ("Received-SPF", &text),
                ("ARC-Authentication-Results", &text),
            ]);
        }
        let long = "(".repeat(100_000) + &"dkim=pass;".repeat(10_000);
        let _ = auth(&[("Authentication-Results", &long)]);
    }
}
