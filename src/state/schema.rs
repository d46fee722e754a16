//! The state database file: created whole, opened with the settings the store relies
//! on, and migrated to the schema this build writes.

use std::{fs::File, path::Path, time::Duration};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::StateError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 3;
/// How long a write waits for another asset's run to finish its transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema migrations; entry `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('container_id', 1);

CREATE TABLE positions (
    asset_id       TEXT    NOT NULL,
    folder_hash    TEXT    NOT NULL,
    uidvalidity    INTEGER NOT NULL CHECK (uidvalidity BETWEEN 0 AND 4294967295),
    next_uid       INTEGER NOT NULL CHECK (next_uid BETWEEN 1 AND 4294967295),
    first_run_done INTEGER NOT NULL CHECK (first_run_done IN (0, 1)),
    pending        TEXT    NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (asset_id, folder_hash, uidvalidity)
) WITHOUT ROWID;

CREATE TABLE failed_uids (
    asset_id    TEXT    NOT NULL,
    folder_hash TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    reason      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL CHECK (attempts >= 0),
    PRIMARY KEY (asset_id, folder_hash, uidvalidity, uid),
    FOREIGN KEY (asset_id, folder_hash, uidvalidity)
        REFERENCES positions (asset_id, folder_hash, uidvalidity) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY CHECK (id > 0),
    asset_id    TEXT    NOT NULL,
    sdi         TEXT    NOT NULL,
    message_id  TEXT,
    sha256      TEXT    NOT NULL CHECK (length(sha256) = 64),
    name        TEXT    NOT NULL,
    folder_hash TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    container   TEXT    NOT NULL,
    ingested_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (asset_id, folder_hash, uidvalidity, uid)
);
CREATE INDEX ledger_by_sdi ON ledger (asset_id, sdi);
CREATE INDEX ledger_by_sha256 ON ledger (asset_id, sha256);

CREATE TABLE vault_index (
    container_id INTEGER NOT NULL REFERENCES ledger (id) ON DELETE CASCADE,
    vault_id     TEXT    NOT NULL CHECK (length(vault_id) = 40),
    file_name    TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (container_id, vault_id, file_name)
) WITHOUT ROWID;
CREATE INDEX vault_index_by_vault_id ON vault_index (vault_id);

CREATE TABLE secrets (
    asset_id   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (asset_id, key)
) WITHOUT ROWID;
",
    r"
-- Containers committed by a run whose response has not (yet) reached its reader whole.
-- A run's rows carry its number (`delivery_run`); the run deletes them once its whole
-- response is written, and the next poll of the folder delivers what is left again.
-- Rows of ledger entries from before this table existed: none (they were delivered).
CREATE TABLE undelivered (
    asset_id     TEXT    NOT NULL,
    container_id INTEGER NOT NULL REFERENCES ledger (id) ON DELETE CASCADE,
    folder_hash  TEXT    NOT NULL,
    run          INTEGER NOT NULL CHECK (run > 0),
    PRIMARY KEY (asset_id, container_id)
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('delivery_run', 0);
",
    r"
-- What after_ingest does to each new container's mail, once the container is delivered
-- (no row in undelivered) and until a session has done it.
CREATE TABLE mailbox_actions (
    asset_id     TEXT    NOT NULL,
    container_id INTEGER NOT NULL REFERENCES ledger (id) ON DELETE CASCADE,
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    action       TEXT    NOT NULL CHECK (action IN ('mark_seen', 'flag', 'move')),
    target       TEXT,
    PRIMARY KEY (asset_id, container_id)
) WITHOUT ROWID;
",
];

/// Create `dir` (and parents) readable by the owner only, if it does not exist.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StateError::Io {
        action: "create state directory",
        path: dir.to_owned(),
        source,
    })
}

/// Create the database at `path` whole: schema written in a temporary file beside it,
/// then linked into place (never over another run's file). So a file under that name
/// is always a database this connector made, and an empty one is one whose contents were
/// lost (truncated, or a crash of the disk), not a first run killed early: starting
/// over in it would ingest the whole folder again with nobody told.
pub(super) fn create_database(data_dir: &Path, path: &Path) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        action: "create state database",
        path: path.to_owned(),
        source,
    };
    // Owner-only (it holds tokens): tempfile creates files 0600, and SQLite gives its
    // WAL and shared-memory files the same mode.
    let fresh = tempfile::Builder::new()
        .prefix(".state.sqlite3.")
        .suffix(".new")
        .tempfile_in(data_dir)
        .map_err(io)?;
    {
        let mut conn = open_connection(fresh.path())?;
        migrate(&mut conn, fresh.path())?;
        // Closing checkpoints the journal into the file and removes it.
    }
    match fresh.persist_noclobber(path) {
        Ok(_) => {}
        // A run of another asset created it first; ours is deleted.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io(e.error)),
    }
    // The new name must outlive a crash as surely as the commits made under it.
    File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io)
}

/// Open the database file (which must exist) configured for the store.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StateError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, "open", e))?;
    configure(&conn, path)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let err = |e| classify(path, "configure", e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // The first statement that reads the file: a non-database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::Io {
            action: "use write-ahead logging for",
            path: path.to_owned(),
            source: std::io::Error::other(format!("journal mode stayed {mode}")),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    Ok(())
}

pub(super) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let err = |e| classify(path, "migrate", e);
    if schema_version(conn).map_err(err)? == SCHEMA_VERSION {
        return Ok(());
    }
    // Runs of other assets may open the file at the same moment: take the write lock
    // first and look again, so exactly one of them migrates.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let found = schema_version(&tx).map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(err)?;
    for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql).map_err(err)?;
    }
    tx.execute("DELETE FROM schema_version", []).map_err(err)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// A damaged file is a different failure from a failed query: it needs the user.
pub(super) fn classify(path: &Path, action: &'static str, source: rusqlite::Error) -> StateError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StateError::Corrupt {
            path: path.to_owned(),
            source,
        },
        _ => StateError::Database {
            action,
            path: path.to_owned(),
            source,
        },
    }
}
