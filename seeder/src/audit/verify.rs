//! Reading and checking the log offline: `audit show` and `audit verify` read the
//! files under a shared lock, so they work beside a running seeder.

use super::error::AuditError;
use super::{Entry, GENESIS, HEAD_FILE, Head, LOG_FILE};
use std::io::Read;
use std::path::Path;

/// What an intact log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub entries: u64,
    /// The last entry's seq and hash; `None` for an empty log.
    pub head: Option<Head>,
}

/// The log's bytes and the head, read under a shared lock of the log.
pub(crate) fn read_files(dir: &Path) -> Result<(Vec<u8>, Option<Head>), AuditError> {
    let log_path = dir.join(LOG_FILE);
    let mut bytes = Vec::new();
    match std::fs::File::open(&log_path) {
        Ok(mut f) => {
            f.lock_shared().map_err(AuditError::io(&log_path))?;
            f.read_to_end(&mut bytes)
                .map_err(AuditError::io(&log_path))?;
            let head = read_head(dir)?;
            return Ok((bytes, head));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::io(&log_path)(e)),
    }
    Ok((bytes, read_head(dir)?))
}

fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| AuditError::Malformed {
                line: 0,
                reason: format!("{}: not an audit head: {e}", path.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io(&path)(e)),
    }
}

/// Parses every line; a last line without its newline is malformed (torn).
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, AuditError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(AuditError::Malformed {
                line,
                reason: "the last line has no newline (a torn write?)".into(),
            });
        };
        let entry: Entry =
            serde_json::from_slice(&rest[..end]).map_err(|e| AuditError::Malformed {
                line,
                reason: e.to_string(),
            })?;
        out.push(entry);
        rest = &rest[end + 1..];
    }
    Ok(out)
}

/// Checks `seq`, `prev` and `hash` of every entry.
pub(crate) fn check_chain(entries: &[Entry]) -> Result<(), AuditError> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected = i as u64 + 1;
        if e.seq != expected {
            return Err(AuditError::Sequence {
                line: i + 1,
                expected,
                found: e.seq,
            });
        }
        if e.prev != prev {
            return Err(AuditError::Chain {
                seq: e.seq,
                expected: prev,
                found: e.prev.clone(),
            });
        }
        let computed = e.compute_hash();
        if computed != e.hash {
            return Err(AuditError::Hash {
                seq: e.seq,
                computed,
                stated: e.hash.clone(),
            });
        }
        prev = e.hash.clone();
    }
    Ok(())
}

/// Checks the last entry against the head.
pub(crate) fn check_head(entries: &[Entry], head: Option<&Head>) -> Result<(), AuditError> {
    match (entries.last(), head) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(AuditError::HeadMissing {
            entries: entries.len() as u64,
            head: HEAD_FILE,
        }),
        (last, Some(h)) => {
            let (log_seq, log_hash) =
                last.map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
            if h.seq == log_seq && h.hash == log_hash {
                Ok(())
            } else {
                Err(AuditError::Head {
                    head_seq: h.seq,
                    head_hash: h.hash.clone(),
                    log_seq,
                    log_hash,
                })
            }
        }
    }
}

/// Checks the log in `dir` entry by entry and against its head.
pub fn verify(dir: &Path) -> Result<Summary, AuditError> {
    let (bytes, head) = read_files(dir)?;
    let entries = parse(&bytes)?;
    check_chain(&entries)?;
    check_head(&entries, head.as_ref())?;
    Ok(Summary {
        entries: entries.len() as u64,
        head,
    })
}

/// Every entry, oldest first, without checking the chain (`audit show`).
pub fn read_entries(dir: &Path) -> Result<Vec<Entry>, AuditError> {
    parse(&read_files(dir)?.0)
}
