//! Benchmark of `release create` (the streaming chunker plus both hashes) on a 1 GiB
//! file, beside plain single-threaded BLAKE3 hashing of the same file in the same run,
//! and the peak memory of the real `shoal-seeder release create` process on 256 MiB
//! and 1 GiB, to show that memory does not grow with file size.
//!
//! `cargo bench -p shoal-seeder --bench release_create` (set SHOAL_BENCH_MIB to change
//! the large size). The files live in a temporary directory and are read once before
//! timing, so both sides read from the page cache: the comparison is of CPU work.

use shoal_core::ChunkingProfile;
use shoal_seeder::offline::build::{BLOCK, build_file};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const MIB: u64 = 1024 * 1024;

fn write_random(path: &Path, bytes: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(BLOCK, File::create(path).unwrap());
    let mut x = seed | 1;
    let mut block = vec![0u8; BLOCK];
    let mut left = bytes;
    while left > 0 {
        for w in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(BLOCK as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

fn plain_blake3(path: &Path, block: usize) -> blake3::Hash {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; block];
    let mut h = blake3::Hasher::new();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finalize();
        }
        h.update(&buf[..n]);
    }
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// CPU seconds (user + system) this process has used, all threads.
fn process_cpu() -> f64 {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Best of `runs` wall times of `f`, and the least CPU time one run took.
fn best_of_cpu<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
    let mut last = None;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), process_cpu());
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(process_cpu() - c);
        last = Some(v);
    }
    (best, best_cpu, last.expect("runs >= 1"))
}

/// Best of `runs` wall times of `f`.
fn best_of<T>(runs: usize, f: impl FnMut() -> T) -> (f64, T) {
    let (t, _, v) = best_of_cpu(runs, f);
    (t, v)
}

/// Runs the real binary and returns (wall seconds, peak RSS in KiB) from wait4.
#[allow(clippy::zombie_processes)] // reaped by libc::wait4 below, which also gives the rusage
fn release_create_process(dir: &Path, file: &Path) -> (f64, i64) {
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_shoal-seeder"))
        .current_dir(dir)
        .args([
            "release",
            "create",
            "--name",
            "bench",
            "--version",
            "1",
            "--counter",
            "1",
            "--device-type",
            "bench",
            "--out",
        ])
        .arg(dir.join("bench.shoal"))
        .arg(file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (t.elapsed().as_secs_f64(), usage.ru_maxrss)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing: only run
    // the full benchmark when asked for it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("release_create: skipped (run with `cargo bench`)");
        return;
    }
    let large_mib: u64 = std::env::var("SHOAL_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    let large = dir.path().join("large.bin");
    write_random(&small, 256 * MIB, 1);
    write_random(&large, large_mib * MIB, 2);
    let size = large_mib * MIB;
    // Peak memory of the real process first, while this process is still small (a
    // forked child's peak RSS counts the parent's pages until it execs).
    let (t_small, rss_small) = release_create_process(dir.path(), &small);
    let (t_large, rss_large) = release_create_process(dir.path(), &large);

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("release create benchmark: {large_mib} MiB file, {threads} CPUs, page cache warm");

    plain_blake3(&large, BLOCK); // warm the page cache
    // The reference gets its best read size, so that the comparison is not with a
    // handicapped plain hash.
    let (t_hash, c_hash, h, ref_block) = [64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]
        .into_iter()
        .map(|block| {
            let (t, c, h) = best_of_cpu(3, || plain_blake3(&large, block));
            (t, c, h, block)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("four sizes");
    let (t_build, c_build, built) =
        best_of_cpu(3, || build_file(&large, ChunkingProfile::DEFAULT).unwrap());
    assert_eq!(
        built.blake3.0,
        *h.as_bytes(),
        "both sides hashed the same bytes"
    );
    let (unique, _) = {
        let mut s = std::collections::BTreeSet::new();
        for c in &built.chunks {
            s.insert(c.hash);
        }
        (s.len(), ())
    };
    let hash_mbps = mbps(size, t_hash);
    let build_mbps = mbps(size, t_build);
    println!(
        "  plain BLAKE3 (1 thread, read + hash):   {hash_mbps:8.0} MB/s ({t_hash:.3} s, best of 64 KiB to 4 MiB reads: {} KiB)",
        ref_block / 1024
    );
    println!(
        "  release create (chunk + hash, {threads} thr.): {build_mbps:8.0} MB/s ({t_build:.3} s), {} chunks, {unique} unique",
        built.chunks.len()
    );
    println!(
        "  ratio release create / plain BLAKE3:   {:8.2}",
        build_mbps / hash_mbps
    );
    let gib = size as f64 / (1u64 << 30) as f64;
    println!(
        "  CPU seconds per GiB: plain BLAKE3 {:.3}, release create {:.3} (both threads); 2 x plain / release create: {:.2}",
        c_hash / gib,
        c_build / gib,
        2.0 * c_hash / c_build
    );

    // Where the time goes, per stage, on 256 MiB in memory (one thread each).
    let data = std::fs::read(&small).unwrap();
    let n = data.len() as u64;
    let (t_cdc, cuts) = best_of(3, || {
        let mut c = shoal_core::chunker::CutStream::new(ChunkingProfile::DEFAULT).unwrap();
        let mut count = 0usize;
        for b in data.chunks(BLOCK) {
            c.push(b, |_| count += 1);
        }
        c.finish(|_| count += 1);
        count
    });
    // The cut-point scan before this crate had its own: the fastcdc crate's v2020 cut,
    // chunk after chunk, on the same bytes (same cuts).
    let (t_fastcdc, fastcdc_cuts) = best_of(3, || {
        fastcdc::v2020::FastCDC::new(&data, 16384, 65536, 262144).count()
    });
    assert_eq!(fastcdc_cuts, cuts, "same cut points as the fastcdc crate");
    let filter = 0x0000_d907_0353_0000; // mask_s & mask_l of the default profile
    // every position, as if no chunk skipped its minimum size
    let (t_scan, _) = best_of(3, || {
        let (mut found, mut n) = (Vec::new(), 0usize);
        let _ = shoal_core::gear::scan_tiles(
            &data,
            shoal_core::gear::WINDOW,
            data.len(),
            filter,
            &mut found,
            |_, _| {
                n += 1;
                false
            },
        );
        n
    });
    let (t_chunk_hash, _) = best_of(3, || {
        let mut c = shoal_core::chunker::FileChunker::new(ChunkingProfile::DEFAULT).unwrap();
        for b in data.chunks(BLOCK) {
            c.push(b);
        }
        c.finish()
    });
    let (t_mem_hash, _) = best_of(3, || blake3::hash(&data));
    println!(
        "  stages on 256 MiB in memory, 1 thread: cuts {:.0} MB/s ({cuts} chunks; fastcdc crate {:.0} MB/s); tile scan of every position {:.0} MB/s; cuts + chunk BLAKE3 {:.0} MB/s; whole-buffer BLAKE3 {:.0} MB/s",
        mbps(n, t_cdc),
        mbps(n, t_fastcdc),
        mbps(n, t_scan),
        mbps(n, t_chunk_hash),
        mbps(n, t_mem_hash)
    );

    println!(
        "  shoal-seeder release create, 256 MiB: {:6.2} s, peak RSS {:6.1} MiB",
        t_small,
        rss_small as f64 / 1024.0
    );
    println!(
        "  shoal-seeder release create, {large_mib} MiB: {:6.2} s, peak RSS {:6.1} MiB",
        t_large,
        rss_large as f64 / 1024.0
    );
    println!(
        "{{\"file_mib\":{large_mib},\"plain_blake3_mbps\":{hash_mbps:.0},\"release_create_mbps\":{build_mbps:.0},\"ratio\":{:.3},\"peak_rss_kib_256mib\":{rss_small},\"peak_rss_kib_large\":{rss_large}}}",
        build_mbps / hash_mbps
    );
}
