//! UID lists in IMAP sequence-set syntax (`1:500,502`): the UID sets of `UID FETCH`, and
//! the stored overflow queue, which stays small for the long runs latest first queues.

/// The most UIDs a stored set may expand to. A first latest-first poll of a very large
/// folder queues everything older; this bound is far above that and stops a damaged or
/// hand-edited `1:4294967295` from exhausting memory.
pub const MAX_UID_SET_LEN: usize = 10_000_000;

/// Encode UIDs (any order, duplicates allowed) as an ascending sequence set.
pub fn encode_uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut last = first;
        while i + 1 < sorted.len() && sorted[i + 1] == last + 1 {
            i += 1;
            last = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&first.to_string());
        if first != last {
            out.push(':');
            out.push_str(&last.to_string());
        }
        i += 1;
    }
    out
}

/// Decode a sequence set of UIDs into ascending, distinct UIDs.
pub fn decode_uid_set(text: &str) -> Result<Vec<u32>, String> {
    let mut uids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = if let Some((a, b)) = part.split_once(':') {
            (parse_uid(a)?, parse_uid(b)?)
        } else {
            let uid = parse_uid(part)?;
            (uid, uid)
        };
        let (low, high) = (first.min(last), first.max(last));
        let count = usize::try_from(high - low)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if uids.len().saturating_add(count) > MAX_UID_SET_LEN {
            return Err(format!("more than {MAX_UID_SET_LEN} UIDs"));
        }
        uids.extend(low..=high);
    }
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

fn parse_uid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(uid) if uid > 0 => Ok(uid),
        _ => Err(format!("{text:?} is not a UID (1 to 4294967295)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_runs_and_singletons() {
        let uids = [10, 1, 2, 3, 7, 9, 8, 3, 4_294_967_295];
        let text = encode_uid_set(&uids);
        assert_eq!(text, "1:3,7:10,4294967295");
        assert_eq!(
            decode_uid_set(&text).unwrap(),
            vec![1, 2, 3, 7, 8, 9, 10, 4_294_967_295]
        );
        assert_eq!(encode_uid_set(&[]), "");
        assert!(decode_uid_set("").unwrap().is_empty());
        assert_eq!(decode_uid_set("5:3, 4").unwrap(), vec![3, 4, 5]);
    }

    #[test]
    fn refuses_garbage_zero_and_huge_sets() {
        assert!(decode_uid_set("1:x").is_err());
        assert!(decode_uid_set("0").is_err());
        assert!(decode_uid_set("-3").is_err());
        let err = decode_uid_set("1:4294967295").unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }
}
