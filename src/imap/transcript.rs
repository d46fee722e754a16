//! Record and replay of IMAP conversations (SPEC §6).
