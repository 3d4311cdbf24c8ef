//! What this node offers its peers: the releases it works on or has installed, which
//! of their chunks it holds, and where their bytes are. The agent changes it; the
//! server reads it, and every change is also sent as a [`Change`] so that subscribed
//! peers hear of it at once.

use crate::chunk_buf::ChunkBuf;
use shoal_core::Hash;
use shoal_core::plan::{Bitset, Plan};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// One release this node can serve from.
#[derive(Debug, Clone)]
pub struct Offer {
    pub id: Hash,
    /// The signed release, encoded (relayed to peers that ask for it).
    pub release_bytes: Arc<Vec<u8>>,
    pub plan: Arc<Plan>,
    /// Chunk hash → plan index.
    pub index: Arc<HashMap<Hash, usize>>,
    /// Chunks whose bytes are in `files`.
    pub bits: Bitset,
    /// Where each file of the release is (the staging copy, or the installed one).
    pub files: Arc<Vec<PathBuf>>,
    /// Each file, opened on first use and kept open for the chunks that follow.
    handles: Arc<Vec<Handle>>,
    /// Whether each chunk is checked before it is served (installed files can change
    /// under the agent; staging files are written only with checked chunks).
    pub check: bool,
    /// Per file, its [`Stamp`] when its whole content was last verified (just after an
    /// install), if known: a chunk read from a file whose stamp is unchanged is served
    /// without hashing it again. Unknown after a restart: every chunk is hashed.
    pub verified: Arc<Vec<Option<Stamp>>>,
}

/// A file's identity and last change as `fstat` gives them: two equal stamps mean the
/// file was not written in between (a write moves `mtime` and `ctime`, and a
/// replacement changes the inode; `ctime` cannot be set back from user space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl Offer {
    pub fn new(
        id: Hash,
        release_bytes: Vec<u8>,
        plan: Plan,
        bits: Bitset,
        files: Vec<PathBuf>,
        check: bool,
    ) -> Offer {
        let index = plan
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash, i))
            .collect();
        let verified = vec![None; files.len()];
        let handles = files.iter().map(|_| Handle::default()).collect();
        Offer {
            id,
            release_bytes: Arc::new(release_bytes),
            plan: Arc::new(plan),
            index: Arc::new(index),
            bits,
            files: Arc::new(files),
            handles: Arc::new(handles),
            check,
            verified: Arc::new(verified),
        }
    }

    /// The caller has just verified every file's whole content: stamps them, so that
    /// their chunks are served without hashing them again while they stay unchanged.
    pub fn verified_now(mut self) -> Offer {
        let stamps = self
            .files
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| Stamp::of(&m)))
            .collect();
        self.verified = Arc::new(stamps);
        self
    }
}

/// A change subscribers must hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Chunk `index` of `release` is now held.
    Have { release: Hash, index: u32 },
    /// An offer came or went, or WAN reachability changed: send a fresh have-map.
    Offers,
}

#[derive(Debug, Default)]
struct State {
    /// At most two: the installed release and the one being fetched.
    offers: Vec<Offer>,
    wan: bool,
    /// This node's own `Signed<Admission>`, once the seeder has given it.
    admission: Option<Vec<u8>>,
}

/// Shared between the agent, the server and the peer connections.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            changes: broadcast::channel(4096).0,
        }
    }
}

/// A file of an offer, opened once: a chunk read is then one `pread` and one `fstat`
/// (the stamp check), not an `open` and a `close` as well. A handle kept open across
/// a replacement of the file still reads the bytes it had, which are the ones the
/// offer names; a write in place moves its stamp, as before.
pub type Handle = Arc<Mutex<Option<Arc<File>>>>;

/// Where a chunk's bytes can be read.
#[derive(Debug, Clone)]
pub struct ChunkSource {
    pub path: PathBuf,
    handle: Handle,
    pub offset: u64,
    pub len: u32,
    /// The hash to check the bytes against before serving them, if they may have changed.
    pub check: Option<Hash>,
    /// The file's stamp when it was last verified whole, if known: while the file still
    /// has it, `check` is skipped.
    pub verified: Option<Stamp>,
}

impl ChunkSource {
    fn open(&self) -> std::io::Result<Arc<File>> {
        let mut slot = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = &*slot {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(File::open(&self.path)?);
        *slot = Some(Arc::clone(&f));
        Ok(f)
    }

    /// Reads the chunk (the peer checks it again in any case).
    pub fn read(&self) -> std::io::Result<ChunkBuf> {
        let f = self.open()?;
        // read_exact_at overwrites every byte of the buffer, or fails and drops it
        let mut buf = ChunkBuf::with_len(self.len as usize);
        f.read_exact_at(buf.as_mut_slice(), self.offset)?;
        // stamped after the read: a write that began before it has moved the stamp
        let unchanged =
            self.verified.is_some() && f.metadata().ok().map(|m| Stamp::of(&m)) == self.verified;
        if let Some(h) = self.check
            && !unchanged
            && Hash::of(&buf) != h
        {
            return Err(std::io::Error::other(
                "the file changed since it was installed",
            ));
        }
        Ok(buf)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock leaves plain data behind: keep going with it
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn admission(&self) -> Option<Vec<u8>> {
        self.lock().admission.clone()
    }

    pub fn set_admission(&self, bytes: Vec<u8>) {
        self.lock().admission = Some(bytes);
    }

    pub fn wan(&self) -> bool {
        self.lock().wan
    }

    pub fn set_wan(&self, wan: bool) {
        let changed = {
            let mut s = self.lock();
            std::mem::replace(&mut s.wan, wan) != wan
        };
        if changed {
            let _ = self.changes.send(Change::Offers);
        }
    }

    /// Adds or replaces the offer for `offer.id`, keeping at most `keep` others (the
    /// newest).
    pub fn put_offer(&self, offer: Offer) {
        {
            let mut s = self.lock();
            s.offers.retain(|o| o.id != offer.id);
            s.offers.push(offer);
            while s.offers.len() > 2 {
                s.offers.remove(0);
            }
        }
        let _ = self.changes.send(Change::Offers);
    }

    pub fn remove_offer(&self, id: Hash) {
        self.lock().offers.retain(|o| o.id != id);
        let _ = self.changes.send(Change::Offers);
    }

    /// Marks chunk `index` of `release` held and tells the subscribers.
    pub fn have(&self, release: Hash, index: usize) {
        let mut found = false;
        if let Some(o) = self.lock().offers.iter_mut().find(|o| o.id == release) {
            o.bits.set(index);
            found = true;
        }
        if found {
            let _ = self.changes.send(Change::Have {
                release,
                index: index as u32,
            });
        }
    }

    /// The have-map of `release`, if this node works on it: `(chunk count, bits, wan)`.
    pub fn have_map(&self, release: Hash) -> Option<(u32, Vec<u8>, bool)> {
        let s = self.lock();
        let o = s.offers.iter().find(|o| o.id == release)?;
        Some((o.bits.len() as u32, o.bits.as_bytes().to_vec(), s.wan))
    }

    pub fn release_bytes(&self, id: Hash) -> Option<Arc<Vec<u8>>> {
        let s = self.lock();
        s.offers
            .iter()
            .find(|o| o.id == id)
            .map(|o| Arc::clone(&o.release_bytes))
    }

    /// Where to read chunk `hash` of `release`, if it is held.
    pub fn chunk(&self, release: Hash, hash: &Hash) -> Option<ChunkSource> {
        let s = self.lock();
        let o = s.offers.iter().find(|o| o.id == release)?;
        let &i = o.index.get(hash)?;
        if !o.bits.get(i) {
            return None;
        }
        let c = &o.plan.chunks[i];
        let at = c.placements.first()?;
        Some(ChunkSource {
            path: o.files.get(at.file)?.clone(),
            handle: Arc::clone(o.handles.get(at.file)?),
            offset: at.offset,
            len: c.len,
            check: o.check.then_some(c.hash),
            verified: o.verified.get(at.file).copied().flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::release::{ChunkRef, ChunkingProfile, FileEntry, Install, Release};
    use std::os::unix::fs::FileExt;

    /// An offer of one installed file of two 4-byte chunks, and the file.
    fn installed(dir: &std::path::Path) -> (Offer, PathBuf, Hash) {
        let path = dir.join("image.bin");
        std::fs::write(&path, b"aaaabbbb").unwrap();
        let (a, b) = (Hash::of(b"aaaa"), Hash::of(b"bbbb"));
        let release = Release {
            name: "fw".into(),
            version: "1".into(),
            counter: 1,
            device_types: vec!["pump".into()],
            created_at: 0,
            chunking: ChunkingProfile::DEFAULT,
            install: Install::File,
            files: vec![FileEntry {
                path: "image.bin".into(),
                mode: 0o644,
                size: 8,
                blake3: Hash::of(b"aaaabbbb"),
                chunks: vec![ChunkRef { hash: a, len: 4 }, ChunkRef { hash: b, len: 4 }],
            }],
        };
        let plan = Plan::new(&release);
        let mut bits = Bitset::new(plan.chunks.len());
        (0..plan.chunks.len()).for_each(|i| bits.set(i));
        let offer = Offer::new(Hash::of(b"r"), vec![], plan, bits, vec![path.clone()], true);
        (offer, path, b)
    }

    fn serve(offer: Offer, hash: &Hash) -> std::io::Result<Vec<u8>> {
        let shared = Shared::default();
        let id = offer.id;
        shared.put_offer(offer);
        shared
            .chunk(id, hash)
            .expect("offered")
            .read()
            .map(|b| b.to_vec())
    }

    #[test]
    fn an_installed_file_changed_in_place_is_not_served_verified_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let (offer, path, b) = installed(tmp.path());
        assert_eq!(serve(offer.clone(), &b).unwrap(), b"bbbb");
        let stamped = offer.clone().verified_now();
        assert_eq!(serve(stamped.clone(), &b).unwrap(), b"bbbb");
        // the device rewrites the file in place after the install
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(b"BBBB", 4)
            .unwrap();
        let err = serve(stamped, &b).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
        assert!(serve(offer, &b).is_err());
    }

    #[test]
    fn setting_the_modification_time_back_does_not_hide_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let (offer, path, b) = installed(tmp.path());
        let stamped = offer.verified_now();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"BBBB", 4).unwrap();
        f.set_modified(before).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert!(serve(stamped, &b).is_err(), "ctime still moved");
    }
}
