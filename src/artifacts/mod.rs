//! Artifacts of a container: IOC, Email and Vault artifacts in the reference's order,
//! with byte-compatible SDIs and the reference's `run_automation` rule.

pub mod email;
pub mod file;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::extract::{Cap, Indicators, UrlFacts};

/// Indicators sorted by where they were found: the bodies (reference shape) and every
/// other place (trace headers, text-like attachments), which is recorded in `found_in`.
#[derive(Debug, Default)]
pub struct FoundIndicators {
    /// Found in body text, exactly where the reference looked. Its `cap` is the
    /// container's: [`FoundIndicators::scan_elsewhere`] lends it to each other place.
    pub body: Indicators,
    /// Found elsewhere, by location label such as `header Received`.
    pub elsewhere: BTreeMap<String, Indicators>,
}

impl FoundIndicators {
    /// No indicators yet, and `cap` on what is kept, over every place.
    pub fn capped(cap: Cap) -> FoundIndicators {
        FoundIndicators {
            body: Indicators {
                cap,
                ..Indicators::default()
            },
            elsewhere: BTreeMap::new(),
        }
    }

    /// Runs `scan` on an empty set of indicators that holds the container's cap, then adds
    /// what it found at `location` and takes the cap back: every place shares one cap, and
    /// a value already kept elsewhere costs no room.
    pub fn scan_elsewhere(&mut self, location: String, scan: impl FnOnce(&mut Indicators)) {
        let mut found = Indicators {
            cap: std::mem::take(&mut self.body.cap),
            ..Indicators::default()
        };
        scan(&mut found);
        self.body.cap = std::mem::take(&mut found.cap);
        self.add_elsewhere(location, found);
    }

    /// Add indicators found at `location`.
    fn add_elsewhere(&mut self, location: String, found: Indicators) {
        if !found.is_empty() || !found.warnings.is_empty() {
            self.elsewhere.entry(location).or_default().extend(found);
        }
    }

    /// The container's cap, which counts what it left out.
    pub fn cap(&self) -> &Cap {
        &self.body.cap
    }

    /// What could not be read wherever indicators were looked for, sorted and unique.
    pub fn warnings(&self) -> BTreeSet<&str> {
        std::iter::once(&self.body)
            .chain(self.elsewhere.values())
            .flat_map(|found| found.warnings.iter().map(String::as_str))
            .collect()
    }

    /// What the bodies and other places know about `url`, merged; `None` for most URLs.
    fn url_facts(&self, url: &str) -> Option<UrlFacts> {
        let mut known = std::iter::once(&self.body)
            .chain(self.elsewhere.values())
            .filter_map(|found| found.url_facts.get(url));
        let mut facts = known.next()?.clone();
        for more in known {
            facts.merge(more.clone());
        }
        Some(facts)
    }

    /// The IOC artifacts, class by class (IP, Hash, URL, Domain), values sorted, each with
    /// its SDI already set (computed with `run_automation` false, as [`finish`] does for
    /// the others).
    pub fn artifacts(&self) -> Vec<Map<String, Value>> {
        type Field = fn(&Indicators) -> &BTreeSet<String>;
        let classes: [(&str, &str, Field); 4] = [
            ("IP Artifact", "sourceAddress", |i| &i.ips),
            ("Hash Artifact", "fileHash", |i| &i.hashes),
            ("URL Artifact", "requestURL", |i| &i.urls),
            ("Domain Artifact", "destinationDnsDomain", |i| &i.domains),
        ];
        let mut scratch = String::new();
        let mut locations = Vec::new();
        let mut out = Vec::new();
        for (name, key, field) in classes {
            let body = field(&self.body);
            // (value, location) pairs, sorted by value; the sort is stable and locations
            // are visited in order, so each value's locations stay sorted and unique. One
            // vector per class instead of a map node and a list per value.
            let mut others: Vec<(&str, &str)> = Vec::new();
            for (location, found) in &self.elsewhere {
                for value in field(found) {
                    if !body.contains(value) {
                        others.push((value, location));
                    }
                }
            }
            others.sort_by(|a, b| a.0.cmp(b.0));
            // Both sides are sorted and disjoint: merging them gives the values in order.
            let mut body = body.iter().map(String::as_str).peekable();
            let mut rest = &others[..];
            loop {
                let value = match (body.peek(), rest.first()) {
                    (Some(b), Some(o)) if *b < o.0 => body.next(),
                    (_, Some(o)) => Some(o.0),
                    (Some(_), None) => body.next(),
                    (None, None) => break,
                };
                let Some(value) = value else { break };
                let same = rest.iter().take_while(|(v, _)| *v == value).count();
                locations.clear();
                locations.extend(rest[..same].iter().map(|(_, l)| *l));
                rest = &rest[same..];
                let facts = (key == "requestURL")
                    .then(|| self.url_facts(value))
                    .flatten();
                out.push(ioc_artifact(
                    &mut scratch,
                    (name, key, value),
                    &locations,
                    facts.as_ref(),
                ));
            }
        }
        out
    }
}

/// One IOC artifact with its SDI. Body indicators keep the reference's exact shape (and
/// so its SDI); the others say where they came from in a field of their own. A URL the
/// analyst saw differently (wrapped by a gateway, behind other link text) says how in
/// `cef`, and its SDI covers that.
fn ioc_artifact(
    scratch: &mut String,
    (name, key, value): (&str, &str, &str),
    locations: &[&str],
    facts: Option<&UrlFacts>,
) -> Map<String, Value> {
    let mut cef = Map::new();
    cef.insert(key.to_owned(), Value::String(value.to_owned()));
    let mut described = false;
    if let Some(facts) = facts {
        for (field, fact) in [
            ("wrappedURL", &facts.wrapped),
            ("urlRewriter", &facts.rewriter),
            ("displayedURL", &facts.displayed),
        ] {
            if let Some(fact) = fact {
                cef.insert(field.to_owned(), Value::String(fact.clone()));
                described = true;
            }
        }
    }
    // the common shape is hashed from its parts, without walking a map
    let sdi = (!described).then(|| crate::sdi::ioc_sdi(scratch, name, key, value, locations));
    let mut artifact = Map::new();
    artifact.insert("name".into(), Value::String(name.to_owned()));
    artifact.insert("cef".into(), Value::Object(cef));
    artifact.insert("run_automation".into(), Value::Bool(false));
    if !locations.is_empty() {
        let locations = locations.iter().map(|l| Value::String((*l).to_owned()));
        artifact.insert("found_in".into(), Value::Array(locations.collect()));
    }
    let sdi = sdi.unwrap_or_else(|| crate::sdi::map_sdi_with(scratch, &artifact));
    artifact.insert("source_data_identifier".into(), Value::String(sdi));
    artifact
}

/// Put the artifacts in order (IOCs, Email, Vault), give each Email and Vault artifact its
/// SDI (IOC artifacts come with theirs from [`FoundIndicators::artifacts`]), and set
/// `run_automation` on the one that should trigger playbooks: the last vault artifact
/// if there are files, else the last artifact.
///
/// As in the reference, IOC and Email SDIs are computed with `run_automation` false,
/// while a vault artifact's SDI covers its real flag and its container id.
pub fn finish(
    iocs: Vec<Map<String, Value>>,
    emails: Vec<Map<String, Value>>,
    mut vaults: Vec<Map<String, Value>>,
) -> Vec<Value> {
    let mut scratch = String::new();
    let mut emails = emails;
    for artifact in &mut emails {
        with_sdi(&mut scratch, artifact);
    }
    let mut artifacts: Vec<Map<String, Value>> = iocs;
    artifacts.append(&mut emails);
    if let Some(last) = vaults.last_mut() {
        last.insert("run_automation".into(), json!(true));
    } else if let Some(last) = artifacts.last_mut() {
        last.insert("run_automation".into(), json!(true));
    }
    for artifact in &mut vaults {
        with_sdi(&mut scratch, artifact);
    }
    artifacts
        .into_iter()
        .chain(vaults)
        .map(Value::Object)
        .collect()
}

fn with_sdi(scratch: &mut String, artifact: &mut Map<String, Value>) {
    let sdi = crate::sdi::map_sdi_with(scratch, artifact);
    artifact.insert("source_data_identifier".into(), Value::String(sdi));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(ips: &[&str]) -> Indicators {
        Indicators {
            ips: ips.iter().map(|s| (*s).to_owned()).collect(),
            ..Indicators::default()
        }
    }

    #[test]
    fn body_indicators_keep_reference_shape_and_sdi() {
        let found = FoundIndicators {
            body: ind(&["10.1.2.3"]),
            ..Default::default()
        };
        let arts = finish(found.artifacts(), Vec::new(), Vec::new());
        assert_eq!(arts.len(), 1);
        assert_eq!(
            arts[0]["source_data_identifier"],
            "63cf0f9f0dfaac57f56130f94c0d2901"
        );
        assert_eq!(arts[0]["run_automation"], true);
        assert!(arts[0].get("found_in").is_none());
    }

    #[test]
    fn header_only_indicators_say_where_they_were_found() {
        let mut found = FoundIndicators {
            body: ind(&["10.1.2.3"]),
            ..Default::default()
        };
        found.add_elsewhere("header Received".into(), ind(&["10.1.2.3", "203.0.113.5"]));
        let arts = found.artifacts();
        assert_eq!(arts.len(), 2);
        assert!(arts[0].get("found_in").is_none());
        assert_eq!(arts[1]["found_in"], json!(["header Received"]));
    }

    #[test]
    fn a_url_seen_differently_says_how_and_its_sdi_covers_it() {
        let mut found = FoundIndicators::default();
        found.body.urls.insert("https://evil.example.net/x".into());
        found.body.urls.insert("https://plain.example.com/".into());
        found.body.note_url(
            "https://evil.example.net/x".into(),
            UrlFacts {
                wrapped: Some("https://eur01.safelinks.protection.outlook.com/?url=x".into()),
                rewriter: Some("microsoft_safelinks".into()),
                displayed: None,
            },
        );
        let mut elsewhere = Indicators::default();
        elsewhere.note_url(
            "https://evil.example.net/x".into(),
            UrlFacts {
                displayed: Some("https://paypal.com".into()),
                ..UrlFacts::default()
            },
        );
        elsewhere
            .warnings
            .insert("a link could not be unwrapped".into());
        found.add_elsewhere("attachment a.html".into(), elsewhere);
        let arts = found.artifacts();
        assert_eq!(arts.len(), 2);
        let cef = arts[0]["cef"].as_object().unwrap();
        assert_eq!(cef["requestURL"], "https://evil.example.net/x");
        assert_eq!(cef["urlRewriter"], "microsoft_safelinks");
        assert_eq!(cef["displayedURL"], "https://paypal.com");
        assert!(cef["wrappedURL"].as_str().unwrap().contains("safelinks"));
        let mut without_sdi = arts[0].clone();
        let sdi = without_sdi.remove("source_data_identifier").unwrap();
        assert_eq!(sdi, crate::sdi::map_sdi(&without_sdi));
        // an undescribed URL keeps the reference's shape
        assert_eq!(arts[1]["cef"].as_object().unwrap().len(), 1);
        assert_eq!(
            found.warnings().into_iter().collect::<Vec<_>>(),
            ["a link could not be unwrapped"]
        );
    }

    #[test]
    fn last_vault_artifact_triggers_automation() {
        let found = FoundIndicators {
            body: ind(&["10.1.2.3"]),
            ..Default::default()
        };
        let vault = vec![
            Map::from_iter([
                ("name".to_owned(), json!("Vault Artifact")),
                ("run_automation".to_owned(), json!(false)),
            ]),
            Map::from_iter([
                ("name".to_owned(), json!("Vault Artifact")),
                ("run_automation".to_owned(), json!(false)),
            ]),
        ];
        let arts = finish(found.artifacts(), Vec::new(), vault);
        let flags: Vec<bool> = arts.iter().map(|a| a["run_automation"] == true).collect();
        assert_eq!(flags, [false, false, true]);
    }
}
