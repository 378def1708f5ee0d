//! `framecast backup FILE`: an online copy of the SQLite catalog, taken with SQLite's
//! backup API while the server keeps serving (and importing).
//!
//! Copying the file with `cp` is not a backup: with the catalog in WAL mode, recent
//! transactions live in `catalog.sqlite3-wal` until a checkpoint, and a copy taken during
//! a write can be torn. The backup API copies a consistent snapshot instead; under WAL its
//! read transaction does not block the server's writers, so the whole database is copied
//! in one step (a copy in many steps would start over after every write by the server).
//!
//! A PostgreSQL catalog is backed up with PostgreSQL's own tools ([`POSTGRES_ADVICE`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What `framecast backup` says for a PostgreSQL catalog.
pub const POSTGRES_ADVICE: &str = "the catalog is in PostgreSQL: back it up with pg_dump, e.g. \
     `pg_dump --format=custom --file=catalog.dump \"$URL\"`, and restore with pg_restore";

/// How long the copy may wait for a lock (the server holds write locks only for the
/// length of one import's transaction).
const BUSY_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot open the catalog {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{0} is the catalog itself: give another file")]
    SameFile(PathBuf),
    #[error("cannot write the backup {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("the catalog stayed locked for {BUSY_LIMIT:?}")]
    Busy,
    #[error("the copy failed its integrity check: {0}")]
    Check(String),
}

/// What was copied.
#[derive(Debug)]
pub struct Copied {
    pub bytes: u64,
}

/// Copies the SQLite catalog at `catalog` to `dest` (replaced atomically if it exists: a
/// reader of `dest` sees the old backup or the new one, never half of one). The copy is a
/// single file (journal mode DELETE, no `-wal` beside it) that passed `PRAGMA quick_check`.
pub fn backup_sqlite(catalog: &Path, dest: &Path) -> Result<Copied, BackupError> {
    // Read-write without create: a mistyped data dir must not make an empty catalog.
    let source = Connection::open_with_flags(
        catalog,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| BackupError::Open {
        path: catalog.to_owned(),
        source,
    })?;
    if same_file(catalog, dest) {
        return Err(BackupError::SameFile(dest.to_owned()));
    }
    let write_error = |reason: String| BackupError::Write {
        path: dest.to_owned(),
        reason,
    };
    let file_name = dest
        .file_name()
        .ok_or_else(|| write_error("not a file name".into()))?;
    let partial = dest.with_file_name(format!(
        ".{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = copy_to(&source, &partial).and_then(|()| {
        std::fs::rename(&partial, dest).map_err(|e| write_error(e.to_string()))?;
        // The rename itself must survive a crash too.
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| write_error(e.to_string()))?;
        }
        let bytes = std::fs::metadata(dest)
            .map_err(|e| write_error(e.to_string()))?
            .len();
        Ok(Copied { bytes })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn copy_to(source: &Connection, partial: &Path) -> Result<(), BackupError> {
    let write_error = |e: &dyn std::fmt::Display| BackupError::Write {
        path: partial.to_owned(),
        reason: e.to_string(),
    };
    let mut copy = Connection::open(partial).map_err(|e| write_error(&e))?;
    {
        let backup = Backup::new(source, &mut copy).map_err(|e| write_error(&e))?;
        let started = Instant::now();
        loop {
            match backup.step(-1).map_err(|e| write_error(&e))? {
                StepResult::Done => break,
                StepResult::More => {}
                // Busy, Locked (and any later kind of "not yet").
                _ => {
                    if started.elapsed() > BUSY_LIMIT {
                        return Err(BackupError::Busy);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    // The copy keeps the catalog's WAL mode; as a backup it should be one file.
    copy.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| write_error(&e))?;
    let check: String = copy
        .pragma_query_value(None, "quick_check", |row| row.get(0))
        .map_err(|e| write_error(&e))?;
    if check != "ok" {
        return Err(BackupError::Check(check));
    }
    copy.close().map_err(|(_, e)| write_error(&e))?;
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| write_error(&e))
}

/// Whether `dest` names the catalog (or would once created): compared by canonical
/// directory and name, since `dest` usually does not exist yet.
fn same_file(catalog: &Path, dest: &Path) -> bool {
    let canonical = |path: &Path| -> Option<PathBuf> {
        if let Ok(path) = path.canonicalize() {
            return Some(path);
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.canonicalize().ok()?,
            _ => std::env::current_dir().ok()?,
        };
        Some(dir.join(path.file_name()?))
    };
    match (canonical(catalog), canonical(dest)) {
        (Some(catalog), Some(dest)) => {
            let catalog = catalog.to_string_lossy().into_owned();
            let dest = dest.to_string_lossy();
            // The -wal and -shm files beside it are the catalog too.
            dest == catalog
                || dest
                    .strip_prefix(&catalog)
                    .is_some_and(|s| s.starts_with('-'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_wal_database_into_one_checked_file() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.sqlite3");
        let writer = Connection::open(&catalog).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        // Still open, so the rows are in the -wal file only.
        let dest = dir.path().join("copy.sqlite3");
        backup_sqlite(&catalog, &dest).unwrap();
        writer.execute("INSERT INTO t VALUES (4)", []).unwrap();
        // Again over the first copy.
        backup_sqlite(&catalog, &dest).unwrap();
        assert!(!dir.path().join("copy.sqlite3-wal").exists());
        let copy = Connection::open(&dest).unwrap();
        let mode: String = copy
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn refuses_the_catalog_itself_and_a_missing_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.sqlite3");
        Connection::open(&catalog)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        for dest in [catalog.clone(), dir.path().join("./catalog.sqlite3-wal")] {
            assert!(matches!(
                backup_sqlite(&catalog, &dest),
                Err(BackupError::SameFile(_))
            ));
        }
        let missing = dir.path().join("nope.sqlite3");
        assert!(matches!(
            backup_sqlite(&missing, &dir.path().join("copy")),
            Err(BackupError::Open { .. })
        ));
        assert!(!missing.exists());
    }
}
