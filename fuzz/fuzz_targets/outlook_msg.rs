//! cargo-fuzz target: see `soar_imap_fuzz::checks::outlook_msg` for what it drives and asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| soar_imap_fuzz::checks::outlook_msg(data));
