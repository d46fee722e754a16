//! Integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// Every fixture email against its reviewed golden container.
mod golden;
// The binary as a platform or a shell user drives it: wire protocol, exit codes, logs.
mod cli;
// The subcommands for people (parse, test, poll, get) against the JSON requests they stand for.
mod cli_commands;
// Robustness over a directory of real-world mail (SOAR_IMAP_CORPUS).
mod corpus;
// app.json and the binary describe the same actions, parameters and config keys.
mod app_json;
// No secret in anything a run produces.
mod secrets;
// No secret in any output, transcript or file of any action, success or failure, Basic or OAuth.
mod secrets_all_actions;
// A real Dovecot started by the tests themselves (IMAP end-to-end tests).
#[allow(dead_code)]
mod dovecot;
// test connectivity against the real Dovecot.
mod connectivity;
// The IMAP session layer's search and fetch against the real Dovecot.
mod session;
// on poll against the real Dovecot.
mod poll;
// on poll under faults: SIGKILL, dropped connections, stateless runs, a busy asset.
mod poll_faults;
// Delivery: what a cut-off run committed goes out again with the next poll.
mod delivery;
// after_ingest: mailbox housekeeping once containers are delivered.
mod after_ingest;
// Fault injection: cuts after any byte either way, a full or read-only disk, corrupt state.
mod faults;
// get email against the real Dovecot.
mod get_email;
// An OAuth provider stub (token, authorize, introspection) and Dovecot's oauth2 passdb.
#[allow(dead_code)]
mod oauth_server;
// OAuth (XOAUTH2) end to end: refresh, expiry, revocation, client credentials, oauth login.
mod oauth;
// --record and --replay of IMAP transcripts.
mod replay;
// The project's recorded IMAP sessions (fixtures/imap/) replayed with no server.
mod imap_fixtures;
// Inputs the fuzzers found bugs with (fixtures/fuzz/), through the same checks.
mod fuzz_regressions;
// Shared helpers: spawning the binary, fixture paths.
mod support;
