//! A folder of its own for one `shoal-sim` run under test, given to it as `TMPDIR` (its
//! temporary folder is made inside), and what the run left there: files, and processes
//! whose arguments or working folder are inside it (every `shoal-seeder` and
//! `shoal-node` a run starts is given paths in its folder, or runs in it).

use std::path::PathBuf;
use std::process::Command;

pub struct RunDir(PathBuf);

impl RunDir {
    pub fn new(test: &str) -> RunDir {
        let dir = std::env::temp_dir().join(format!("shoal-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a test folder");
        RunDir(dir)
    }

    /// `shoal-sim ARGS` with this folder as its `TMPDIR`; `SHOAL_SIM_KEEP` cleared, as it
    /// would keep the run's folder.
    pub fn sim(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shoal-sim"));
        c.args(args)
            .env("TMPDIR", &self.0)
            .env_remove("SHOAL_SIM_KEEP");
        c
    }

    /// The live processes that use this folder: `pid: command line`.
    pub fn processes(&self) -> Vec<String> {
        let dir = self.0.to_string_lossy().into_owned();
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            // a process that ended meanwhile has no cmdline: it is not left
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
            if cmdline.contains(&dir) || cwd.starts_with(&self.0) {
                found.push(format!("{pid}: {}", cmdline.trim_end()));
            }
        }
        found
    }

    /// What the run left in the folder.
    pub fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails if a process of the run still runs or its folder is still there.
    pub fn assert_nothing_left(&self) {
        let procs = self.processes();
        assert!(procs.is_empty(), "processes left: {procs:#?}");
        let files = self.files();
        assert!(files.is_empty(), "files left: {files:?}");
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
