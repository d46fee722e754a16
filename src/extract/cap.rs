//! The cap on how many distinct indicators (and warnings about them) one container keeps,
//! shared by every place they are looked for (bodies, trace headers, text-like
//! attachments), and the count of what it left out. Applied as each value is found, so an
//! email of 200,000 URLs costs memory for the values kept, not for every value in it.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};

/// An indicator class: the same text in two classes is two artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Class {
    Ip,
    Hash,
    Url,
    Domain,
}

/// How many distinct indicators, and warnings about them, may be kept; which are; and how
/// many were refused.
///
/// Warnings have their own, smaller, limit: a warning names one malformed link, so an
/// email of 120,000 of them would otherwise hold 120,000 warnings, and an analyst reads
/// the first few.
///
/// Values are remembered by a 64-bit fingerprint, not by their text: the text of a kept
/// value lives in the [`Indicators`](super::Indicators) that found it, and a refused one
/// must cost a few bytes, not its length. Two values would have to share a fingerprint
/// (about one chance in 30 million for a million values) for a count to be off by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cap {
    indicators: Tally,
    warnings: Tally,
}

/// One limit, and the fingerprints of the values kept and refused under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    /// At most this many distinct values are kept; `None`: every value is.
    limit: Option<usize>,
    /// Fingerprints of the values kept, wherever they were found.
    kept: HashSet<u64>,
    /// Fingerprints of the distinct values refused.
    left_out: HashSet<u64>,
}

impl Cap {
    /// A cap of `indicators` distinct indicators and `warnings` distinct warnings.
    pub fn new(indicators: usize, warnings: usize) -> Cap {
        let tally = |limit| Tally {
            limit: Some(limit),
            ..Tally::default()
        };
        Cap {
            indicators: tally(indicators),
            warnings: tally(warnings),
        }
    }

    /// How many distinct indicators were refused.
    pub fn indicators_left_out(&self) -> usize {
        self.indicators.left_out.len()
    }

    /// How many distinct warnings were refused.
    pub fn warnings_left_out(&self) -> usize {
        self.warnings.left_out.len()
    }

    /// Whether `value` of `class`, new where it was just found, may be kept: yes if it is
    /// kept already (found in another place) or there is room left, and then it counts as
    /// kept. The first values found win, so the same email keeps the same values.
    pub(super) fn admit(&mut self, class: Class, value: &str) -> bool {
        self.indicators.admit(|| fingerprint(Some(class), value))
    }

    /// Whether the warning `text`, new where it was just written, may be kept (as
    /// [`Cap::admit`]).
    pub(super) fn admit_warning(&mut self, text: &str) -> bool {
        self.warnings.admit(|| fingerprint(None, text))
    }
}

impl Tally {
    fn admit(&mut self, print: impl FnOnce() -> u64) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let print = print();
        if self.kept.contains(&print) {
            return true;
        }
        if self.kept.len() < limit {
            self.kept.insert(print);
            return true;
        }
        self.left_out.insert(print);
        false
    }
}

/// `DefaultHasher::new()` is `SipHash` with fixed keys: the same value gives the same print
/// on every run, so whether two values collide does not change from run to run. `None`
/// is a warning's class.
fn fingerprint(class: Option<Class>, value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    class.hash(&mut hasher);
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_values_are_kept_and_distinct_refusals_counted() {
        let mut cap = Cap::new(2, 1);
        assert!(cap.admit(Class::Url, "https://a.example/"));
        assert!(cap.admit(Class::Domain, "a.example"));
        // kept already (found again in another place): still kept, no room used
        assert!(cap.admit(Class::Url, "https://a.example/"));
        assert!(!cap.admit(Class::Url, "https://b.example/"));
        assert!(!cap.admit(Class::Url, "https://b.example/"));
        // the same text in another class is another value
        assert!(!cap.admit(Class::Domain, "https://a.example/"));
        assert_eq!(cap.indicators_left_out(), 2);
        // warnings count apart from indicators
        assert!(cap.admit_warning("a link could not be decoded: x"));
        assert!(cap.admit_warning("a link could not be decoded: x"));
        assert!(!cap.admit_warning("a link could not be decoded: y"));
        assert_eq!(cap.warnings_left_out(), 1);
        assert_eq!(cap.indicators_left_out(), 2);
    }

    #[test]
    fn without_a_limit_everything_is_kept_and_nothing_remembered() {
        let mut cap = Cap::default();
        for i in 0..100 {
            assert!(cap.admit(Class::Ip, &format!("10.0.0.{i}")));
            assert!(cap.admit_warning(&format!("warning {i}")));
        }
        assert_eq!(cap.indicators_left_out() + cap.warnings_left_out(), 0);
        assert!(cap.indicators.kept.is_empty() && cap.warnings.kept.is_empty());
    }
}
