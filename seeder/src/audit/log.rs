//! The seeder's side: open (checking what is there), append.

use super::error::AuditError;
use super::verify::{check_chain, check_head, parse, read_files};
use super::{Entry, GENESIS, HEAD_FILE, Head, LOG_FILE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What one entry records; `seq`, `prev` and `hash` are the log's to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: u64,
    pub actor: String,
    pub from: String,
    pub action: String,
    pub outcome: String,
    pub status: u16,
    pub detail: String,
}

/// The open log. Appends are serialised in-process by a mutex and across processes by
/// an exclusive `flock` (readers take a shared one).
pub struct AuditLog {
    dir: PathBuf,
    last: Mutex<Head>,
}

impl AuditLog {
    /// Opens the log in `dir`, checks the whole chain and the head, and repairs what a
    /// crash can leave (see the module doc). Anything else is an error: the seeder does
    /// not append to a log that does not verify.
    pub fn open(dir: &Path) -> Result<AuditLog, AuditError> {
        let log_path = dir.join(LOG_FILE);
        let (mut bytes, head) = read_files(dir)?;
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            tracing::warn!(
                "{}: cutting off a torn last line ({} bytes)",
                log_path.display(),
                bytes.len() - keep
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&log_path)
                .map_err(AuditError::io(&log_path))?;
            f.set_len(keep as u64).map_err(AuditError::io(&log_path))?;
            f.sync_all().map_err(AuditError::io(&log_path))?;
            bytes.truncate(keep);
        }
        let entries = parse(&bytes)?;
        check_chain(&entries)?;
        let last = entries.last().map_or(
            Head {
                seq: 0,
                hash: GENESIS.to_string(),
            },
            |e| Head {
                seq: e.seq,
                hash: e.hash.clone(),
            },
        );
        // a crash after the line and before the head: the line is chained, the head is
        // exactly one behind
        let one_behind = match (&head, entries.len()) {
            (None, 1) => true,
            (Some(h), n) if n >= 2 => h.seq + 1 == last.seq && h.hash == entries[n - 2].hash,
            _ => false,
        };
        if one_behind {
            tracing::warn!("the audit head was one entry behind the log (a crash?); repaired");
            write_head(dir, &last)?;
        } else {
            check_head(&entries, head.as_ref())?;
        }
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            last: Mutex::new(last),
        })
    }

    /// Appends one entry (durably: the line is synced before the head is replaced).
    pub fn append(&self, record: Record) -> Result<Entry, AuditError> {
        // A poisoned mutex means an append panicked midway; the Head it guards is only
        // replaced after a complete append, so it is still right.
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut entry = Entry {
            seq: last.seq + 1,
            time: record.time,
            actor: record.actor,
            from: record.from,
            action: record.action,
            outcome: record.outcome,
            status: record.status,
            detail: record.detail,
            prev: last.hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        let mut line = serde_json::to_vec(&entry).map_err(|e| AuditError::Malformed {
            line: 0,
            reason: format!("cannot encode an entry: {e}"),
        })?;
        line.push(b'\n');
        let path = self.dir.join(LOG_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(AuditError::io(&path))?;
        f.lock().map_err(AuditError::io(&path))?;
        f.write_all(&line).map_err(AuditError::io(&path))?;
        f.sync_data().map_err(AuditError::io(&path))?;
        let head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        write_head(&self.dir, &head)?;
        drop(f);
        *last = head;
        Ok(entry)
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.last
            .lock()
            .map(|h| h.seq)
            .unwrap_or_else(|p| p.into_inner().seq)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Replaces `audit.head` atomically (temp file, fsync, rename, directory fsync).
fn write_head(dir: &Path, head: &Head) -> Result<(), AuditError> {
    let path = dir.join(HEAD_FILE);
    let tmp = dir.join(format!("{HEAD_FILE}.tmp"));
    let bytes = serde_json::to_vec(head).map_err(|e| AuditError::Malformed {
        line: 0,
        reason: format!("cannot encode the head: {e}"),
    })?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(AuditError::io(&path))
}

#[cfg(test)]
mod tests {
    use super::super::verify;
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            time: 1000 + i,
            actor: "token 1 (deployer)".into(),
            from: "127.0.0.1:5000".into(),
            action: "POST /api/v1/deployments".into(),
            outcome: if i.is_multiple_of(2) { "ok" } else { "refused" }.into(),
            status: 200,
            detail: format!("deployment {i}"),
        }
    }

    /// A log of five entries; returns its lines.
    fn five(dir: &Path) -> Vec<String> {
        let log = AuditLog::open(dir).unwrap();
        for i in 0..5 {
            log.append(record(i)).unwrap();
        }
        assert_eq!(log.len(), 5);
        std::fs::read_to_string(dir.join(LOG_FILE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(dir: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        std::fs::write(dir.join(LOG_FILE), text).unwrap();
    }

    #[test]
    fn an_untouched_log_verifies_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        five(dir.path());
        let s = verify(dir.path()).unwrap();
        assert_eq!(s.entries, 5);
        // reopening continues the chain
        let log = AuditLog::open(dir.path()).unwrap();
        let e = log.append(record(9)).unwrap();
        assert_eq!(e.seq, 6);
        assert_eq!(verify(dir.path()).unwrap().entries, 6);
        // an empty folder is an empty, valid log
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(verify(empty.path()).unwrap().entries, 0);
    }

    // guards: an entry edited after it was written (its detail, or any field)
    #[test]
    fn editing_any_entry_is_found() {
        for i in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let mut lines = five(dir.path());
            lines[i] = lines[i].replace(&format!("deployment {i}"), "deployment 99");
            write_lines(dir.path(), &lines);
            let err = verify(dir.path()).unwrap_err();
            assert!(
                matches!(err, AuditError::Hash { seq, .. } if seq == i as u64 + 1),
                "entry {i}: {err}"
            );
            assert!(
                AuditLog::open(dir.path()).is_err(),
                "the seeder refuses it too"
            );
        }
    }

    // guards: an edit that also recomputes the edited entry's own hash
    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = five(dir.path());
        let mut e: Entry = serde_json::from_str(&lines[1]).unwrap();
        e.outcome = "ok".into();
        e.hash = e.compute_hash();
        lines[1] = serde_json::to_string(&e).unwrap();
        write_lines(dir.path(), &lines);
        let err = verify(dir.path()).unwrap_err();
        assert!(matches!(err, AuditError::Chain { seq: 3, .. }), "{err}");
    }

    // guards: an entry taken out, anywhere, including the last one
    #[test]
    fn removing_any_entry_is_found() {
        for i in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let mut lines = five(dir.path());
            lines.remove(i);
            write_lines(dir.path(), &lines);
            let err = verify(dir.path()).unwrap_err();
            let expected = if i == 4 {
                matches!(
                    err,
                    AuditError::Head {
                        head_seq: 5,
                        log_seq: 4,
                        ..
                    }
                )
            } else {
                matches!(err, AuditError::Sequence { .. })
            };
            assert!(expected, "entry {i}: {err}");
        }
        // every entry and the head removed
        let dir = tempfile::tempdir().unwrap();
        five(dir.path());
        write_lines(dir.path(), &[]);
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::Head { log_seq: 0, .. })
        ));
        std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert!(
            verify(dir.path()).is_ok(),
            "no log and no head: nothing claimed"
        );
    }

    // guards: two entries swapped
    #[test]
    fn swapping_two_entries_is_found() {
        for (a, b) in [(0, 1), (1, 3), (3, 4)] {
            let dir = tempfile::tempdir().unwrap();
            let mut lines = five(dir.path());
            lines.swap(a, b);
            write_lines(dir.path(), &lines);
            let err = verify(dir.path()).unwrap_err();
            assert!(
                matches!(err, AuditError::Sequence { .. }),
                "{a}<->{b}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_head_is_found() {
        let dir = tempfile::tempdir().unwrap();
        five(dir.path());
        std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::HeadMissing { entries: 5, .. })
        ));
    }

    // guards: a crash between the line and the head, or in the middle of the line
    #[test]
    fn open_repairs_what_a_crash_leaves() {
        let dir = tempfile::tempdir().unwrap();
        five(dir.path());
        let head4 = {
            let lines = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
            let e: Entry = serde_json::from_str(lines.lines().nth(3).unwrap()).unwrap();
            Head {
                seq: 4,
                hash: e.hash,
            }
        };
        write_head(dir.path(), &head4).unwrap();
        assert!(verify(dir.path()).is_err());
        AuditLog::open(dir.path()).unwrap();
        assert_eq!(verify(dir.path()).unwrap().entries, 5);
        // a torn last line
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(b"{\"seq\":6,\"ti").unwrap();
        drop(f);
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::Malformed { line: 6, .. })
        ));
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.append(record(6)).unwrap().seq, 6);
        assert_eq!(verify(dir.path()).unwrap().entries, 6);
        // but a head two behind is not a crash
        write_head(dir.path(), &head4).unwrap();
        assert!(AuditLog::open(dir.path()).is_err());
    }
}
