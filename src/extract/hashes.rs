//! Hashes: word-bounded hex runs of MD5, SHA-1, SHA-256 or SHA-512 length, case as written.

use super::{Class, Indicators, char_at, char_before, is_word_char, runs::hex_runs};

/// Adds every standalone hex run of exactly 32, 40, 64 or 128 digits (SHA-512 is new here;
/// the reference stopped at 64).
pub(super) fn scan(text: &str, out: &mut Indicators) {
    // whole hex runs long enough to be a digest (MD5 is the shortest, at 32 digits)
    for run in hex_runs(text) {
        // a run glued to other word characters is an identifier, not a digest
        if matches!(run.len(), 32 | 40 | 64 | 128)
            && !char_before(text, run.start).is_some_and(is_word_char)
            && !char_at(text, run.end).is_some_and(is_word_char)
        {
            out.add(Class::Hash, &text[run]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
    const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SHA512: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

    fn hashes(text: &str) -> Vec<String> {
        let mut out = Indicators::default();
        scan(text, &mut out);
        out.hashes.into_iter().collect()
    }

    #[test]
    fn every_supported_digest_length_is_found() {
        let text = format!("md5 {MD5}\nsha1: {SHA1}, sha256={SHA256}; sha512 ({SHA512})");
        let mut expected = vec![MD5, SHA1, SHA256, SHA512];
        expected.sort_unstable();
        assert_eq!(hashes(&text), expected);
    }

    #[test]
    fn case_is_kept_as_written() {
        let upper = MD5.to_uppercase();
        assert_eq!(hashes(&format!("{upper} {MD5}")), [upper.as_str(), MD5]);
    }

    #[test]
    fn off_by_one_lengths_give_nothing() {
        assert!(hashes(&format!("{MD5}0")).is_empty());
        assert!(hashes(&MD5[1..]).is_empty());
        assert!(hashes(&format!("{SHA256}{MD5}")).is_empty());
    }

    #[test]
    fn runs_glued_to_word_characters_give_nothing() {
        for glued in [
            format!("g{MD5}"),
            format!("{MD5}z"),
            format!("_{MD5}"),
            format!("{MD5}_x"),
            format!("é{MD5}"),
        ] {
            assert!(hashes(&glued).is_empty(), "{glued}");
        }
    }

    #[test]
    fn punctuation_and_paths_bound_a_hash() {
        assert_eq!(
            hashes(&format!("https://x.example.com/files/{MD5}.exe")),
            [MD5]
        );
        assert_eq!(hashes(&format!("\"{MD5}\"")), [MD5]);
    }

    #[test]
    fn runs_are_found_at_any_alignment() {
        for pad in 0..70 {
            let text = format!("{}-{SHA1} {}", "x".repeat(pad), "ab ".repeat(pad));
            assert_eq!(hashes(&text), [SHA1], "pad {pad}");
            let text = format!("{}{MD5}", "f ".repeat(pad));
            assert_eq!(hashes(&text), [MD5], "pad {pad}");
        }
        assert_eq!(hashes(MD5), [MD5]);
        assert_eq!(hashes(&format!("{MD5} {SHA256}")), [MD5, SHA256]);
    }

    #[test]
    fn hex_words_and_guids_are_not_hashes() {
        assert!(hashes("deadbeef cafebabe 123e4567-e89b-12d3-a456-426614174000").is_empty());
    }
}
