//! The FastCDC v2020 gear hash, scanned in tiles for candidate cut points.
//!
//! FastCDC hashes each byte as `h = (h << 1) + GEAR[byte]`, starting from 0 at a
//! chunk's minimum size, and cuts where `h & mask == 0`. A byte's contribution is
//! shifted out after 64 steps, so the hash at position `i` depends on bytes
//! `i-63..=i` alone (the *window hash*), except in the first 63 positions after a
//! chunk's minimum size, where hashing began inside the window (the chunker hashes
//! those itself). So any stretch of positions can be scanned without the hashing
//! before it, given the 63 bytes in front of it.
//!
//! Scanning from a chunk's minimum size one byte after another, as FastCDC does, is
//! one chain of dependent shift-and-adds, bound by their latency. Here a *tile* of
//! [`TILE`] positions is split into four lanes of [`LANE`] bytes, hashed in step, each
//! starting 64 bytes early to fill its window; the positions whose window hash passes
//! a filter (a mask with only the bits that both of a profile's masks share, so that
//! it keeps every possible cut) are handed over in order, and the chunker asks for
//! tiles only until it has found its cut: the bytes before each chunk's minimum size
//! are never scanned (about a fifth of them with the default profile), at the price
//! of the rest of the tile that holds the cut and 256 warm-up bytes per tile.
//!
//! On x86-64 the lane loop is written in assembly: the compiler's version kept two of
//! its values on the stack and added instead of using `lea`, and was bound by loads
//! (on 1 MiB blocks in cache, 4.2 to 4.4 GB/s of CPU time on one core of an Intel Xeon
//! against 3.5 to 3.7 for the compiler's lanes; `docs/benchmarks.md`). Elsewhere the
//! same loop is plain Rust. AVX-512 versions with one gather from GEAR per byte ran at
//! a half to four fifths of the scalar lanes' speed on that Xeon, and at half on an AMD
//! EPYC: gathers are slow on both. Tiles are cheap only on bytes in cache (each one
//! starts four new streams): `release create` scans each block on the core that has
//! just read it.

/// Bytes a window hash depends on; also the warm-up of each lane.
pub const WINDOW: usize = 64;
/// Bytes per lane of a tile.
pub const LANE: usize = 2048;
/// Positions scanned by one tile: four lanes.
pub const TILE: usize = 4 * LANE;

/// A position whose window hash passed the filter, and that hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub pos: usize,
    pub hash: u64,
}

/// The window hash at `data[i]`: FastCDC's gear hash after byte `i` once at least 64
/// bytes have been hashed. `i >= WINDOW - 1`.
pub fn window_hash(data: &[u8], i: usize) -> u64 {
    data[i + 1 - WINDOW..=i]
        .iter()
        .fold(0u64, |h, &b| (h << 1).wrapping_add(GEAR[usize::from(b)]))
}

/// Scans positions `from..` of `data` in whole tiles that end at or before `to`,
/// offering `cut` each position whose window hash `h` has `h & filter == 0`, with that
/// hash, in position order. Returns `Ok(pos)` for the first position `cut` accepts;
/// otherwise `Err(end)`: no position in `from..end` was accepted, and `to - end <
/// TILE`. `from >= WINDOW`: the bytes before it are the first windows' history.
/// `found` is scratch space.
pub fn scan_tiles(
    data: &[u8],
    from: usize,
    to: usize,
    filter: u64,
    found: &mut Vec<Candidate>,
    mut cut: impl FnMut(usize, u64) -> bool,
) -> Result<usize, usize> {
    assert!(from >= WINDOW, "a scan needs {WINDOW} bytes of history");
    assert!(to <= data.len(), "a scan ends inside its data");
    let mut at = from;
    while at + TILE <= to {
        found.clear();
        tile(&data[at - WINDOW..at + TILE], filter, found);
        // each lane's candidates are in order; a tile holds few, usually none
        found.sort_unstable_by_key(|c| c.pos);
        for c in found.iter() {
            if cut(at + c.pos, c.hash) {
                return Ok(at + c.pos);
            }
        }
        at += TILE;
    }
    Err(at)
}

/// Scans positions `from..to` of `data` one at a time (what is left after the
/// tiles), with the same contract as [`scan_tiles`]; `None` if `cut` accepted none.
pub fn scan_tail(
    data: &[u8],
    from: usize,
    to: usize,
    filter: u64,
    mut cut: impl FnMut(usize, u64) -> bool,
) -> Option<usize> {
    assert!(from >= WINDOW, "a scan needs {WINDOW} bytes of history");
    let mut h = data[from - WINDOW..from]
        .iter()
        .fold(0u64, |h, &b| (h << 1).wrapping_add(GEAR[usize::from(b)]));
    for (i, &b) in data[from..to].iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[usize::from(b)]);
        if h & filter == 0 && cut(from + i, h) {
            return Some(from + i);
        }
    }
    None
}

/// One tile: `t` is `WINDOW` bytes of history, then the `TILE` positions to scan.
/// Appends the candidates, with positions counted from the end of the history, lane
/// by lane in order within each lane.
fn tile(t: &[u8], filter: u64, out: &mut Vec<Candidate>) {
    assert_eq!(t.len(), WINDOW + TILE);
    let mut h = [0u64; 4];
    // SAFETY: both calls read `t[i + j * LANE]` for `i` below `WINDOW + LANE` and `j`
    // below 4 only, all inside `t` (asserted above).
    unsafe { lanes::warm(t.as_ptr(), &mut h) };
    let mut step = WINDOW;
    while step < WINDOW + LANE {
        // SAFETY: as above; `step` stays below `WINDOW + LANE`.
        step +=
            unsafe { lanes::until_hit(t.as_ptr().add(step), WINDOW + LANE - step, &mut h, filter) };
        // `step - 1` passed the filter in at least one lane, or was the last step
        for (j, &hash) in h.iter().enumerate() {
            if hash & filter == 0 {
                out.push(Candidate {
                    pos: j * LANE + step - 1 - WINDOW,
                    hash,
                });
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::{GEAR, LANE, WINDOW};

    /// One step of the four lanes at `{q}`: each hash becomes `2 * h + GEAR[byte]`
    /// (one `lea`), and `{q}` moves on by one.
    macro_rules! step {
        () => {
            concat!(
                "movzx {a:e}, byte ptr [{q}]\n",
                "movzx {b:e}, byte ptr [{q} + {l1}]\n",
                "movzx {c:e}, byte ptr [{q} + {l2}]\n",
                "movzx {d:e}, byte ptr [{q} + {l3}]\n",
                "mov {a}, qword ptr [{t} + {a}*8]\n",
                "mov {b}, qword ptr [{t} + {b}*8]\n",
                "mov {c}, qword ptr [{t} + {c}*8]\n",
                "mov {d}, qword ptr [{t} + {d}*8]\n",
                "lea {h0}, [{a} + {h0}*2]\n",
                "lea {h1}, [{b} + {h1}*2]\n",
                "lea {h2}, [{c} + {h2}*2]\n",
                "lea {h3}, [{d} + {h3}*2]\n",
                "add {q}, 1",
            )
        };
    }

    /// Hashes the first `WINDOW` bytes of the four lanes at `p`, `p + LANE`, ...
    ///
    /// # Safety
    /// `p[i + j * LANE]` must be readable for `i < WINDOW`, `j < 4`.
    pub(super) unsafe fn warm(p: *const u8, h: &mut [u64; 4]) {
        let [mut h0, mut h1, mut h2, mut h3] = *h;
        // SAFETY: reads only the bytes the caller vouches for, and GEAR (indices < 256).
        unsafe {
            std::arch::asm!(
                "2:",
                step!(),
                "cmp {q}, {end}",
                "jne 2b",
                q = inout(reg) p => _,
                end = in(reg) p.add(WINDOW),
                t = in(reg) GEAR.as_ptr(),
                h0 = inout(reg) h0, h1 = inout(reg) h1, h2 = inout(reg) h2, h3 = inout(reg) h3,
                a = out(reg) _, b = out(reg) _, c = out(reg) _, d = out(reg) _,
                l1 = const LANE, l2 = const 2 * LANE, l3 = const 3 * LANE,
                options(nostack, readonly),
            );
        }
        *h = [h0, h1, h2, h3];
    }

    /// Hashes the four lanes at `p`, `p + LANE`, ... in step for at most `n > 0`
    /// steps, until one lane's hash passes `filter`; returns the steps taken, that one
    /// included.
    ///
    /// # Safety
    /// `p[i + j * LANE]` must be readable for `i < n`, `j < 4`.
    pub(super) unsafe fn until_hit(p: *const u8, n: usize, h: &mut [u64; 4], filter: u64) -> usize {
        let [mut h0, mut h1, mut h2, mut h3] = *h;
        let mut q = p;
        // SAFETY: reads only the bytes the caller vouches for, and GEAR (indices < 256).
        unsafe {
            std::arch::asm!(
                "2:",
                step!(),
                // one test and branch per lane: each pair fuses into one operation
                "test {h0}, {f}",
                "jz 3f",
                "test {h1}, {f}",
                "jz 3f",
                "test {h2}, {f}",
                "jz 3f",
                "test {h3}, {f}",
                "jz 3f",
                "cmp {q}, {end}",
                "jne 2b",
                "3:",
                q = inout(reg) q,
                end = in(reg) p.add(n),
                t = in(reg) GEAR.as_ptr(),
                f = in(reg) filter,
                h0 = inout(reg) h0, h1 = inout(reg) h1, h2 = inout(reg) h2, h3 = inout(reg) h3,
                a = out(reg) _, b = out(reg) _, c = out(reg) _, d = out(reg) _,
                l1 = const LANE, l2 = const 2 * LANE, l3 = const 3 * LANE,
                options(nostack, readonly),
            );
        }
        *h = [h0, h1, h2, h3];
        q as usize - p as usize
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod lanes {
    use super::{GEAR, LANE, WINDOW};

    #[inline(always)]
    unsafe fn step(p: *const u8, h: &mut [u64; 4]) {
        for (j, h) in h.iter_mut().enumerate() {
            // SAFETY: the callers' contract.
            let b = unsafe { *p.add(j * LANE) };
            *h = (*h << 1).wrapping_add(GEAR[usize::from(b)]);
        }
    }

    /// See the x86-64 version.
    pub(super) unsafe fn warm(p: *const u8, h: &mut [u64; 4]) {
        for i in 0..WINDOW {
            // SAFETY: the caller's contract.
            unsafe { step(p.add(i), h) };
        }
    }

    /// See the x86-64 version.
    pub(super) unsafe fn until_hit(p: *const u8, n: usize, h: &mut [u64; 4], filter: u64) -> usize {
        for i in 0..n {
            // SAFETY: the caller's contract.
            unsafe { step(p.add(i), h) };
            if h.iter().any(|h| h & filter == 0) {
                return i + 1;
            }
        }
        n
    }
}

/// FastCDC v2020's GEAR table (the high 8 bytes of the MD5 of 0..=255), copied so that
/// the release format does not move with the crate; a test checks it against the
/// crate's.
#[rustfmt::skip]
pub const GEAR: [u64; 256] = [
    0x3b5d3c7d207e37dc, 0x784d68ba91123086, 0xcd52880f882e7298, 0xeacf8e4e19fdcca7,
    0xc31f385dfbd1632b, 0x1d5f27001e25abe6, 0x83130bde3c9ad991, 0xc4b225676e9b7649,
    0xaa329b29e08eb499, 0xb67fcbd21e577d58, 0x0027baaada2acf6b, 0xe3ef2d5ac73c2226,
    0x0890f24d6ed312b7, 0xa809e036851d7c7e, 0xf0a6fe5e0013d81b, 0x1d026304452cec14,
    0x03864632648e248f, 0xcdaacf3dcd92b9b4, 0xf5e012e63c187856, 0x8862f9d3821c00b6,
    0xa82f7338750f6f8a, 0x1e583dc6c1cb0b6f, 0x7a3145b69743a7f1, 0xabb20fee404807eb,
    0xb14b3cfe07b83a5d, 0xb9dc27898adb9a0f, 0x3703f5e91baa62be, 0xcf0bb866815f7d98,
    0x3d9867c41ea9dcd3, 0x1be1fa65442bf22c, 0x14300da4c55631d9, 0xe698e9cbc6545c99,
    0x4763107ec64e92a5, 0xc65821fc65696a24, 0x76196c064822f0b7, 0x485be841f3525e01,
    0xf652bc9c85974ff5, 0xcad8352face9e3e9, 0x2a6ed1dceb35e98e, 0xc6f483badc11680f,
    0x3cfd8c17e9cf12f1, 0x89b83c5e2ea56471, 0xae665cfd24e392a9, 0xec33c4e504cb8915,
    0x3fb9b15fc9fe7451, 0xd7fd1fd1945f2195, 0x31ade0853443efd8, 0x255efc9863e1e2d2,
    0x10eab6008d5642cf, 0x46f04863257ac804, 0xa52dc42a789a27d3, 0xdaaadf9ce77af565,
    0x6b479cd53d87febb, 0x6309e2d3f93db72f, 0xc5738ffbaa1ff9d6, 0x6bd57f3f25af7968,
    0x67605486d90d0a4a, 0xe14d0b9663bfbdae, 0xb7bbd8d816eb0414, 0xdef8a4f16b35a116,
    0xe7932d85aaaffed6, 0x08161cbae90cfd48, 0x855507beb294f08b, 0x91234ea6ffd399b2,
    0xad70cf4b2435f302, 0xd289a97565bc2d27, 0x8e558437ffca99de, 0x96d2704b7115c040,
    0x0889bbcdfc660e41, 0x5e0d4e67dc92128d, 0x72a9f8917063ed97, 0x438b69d409e016e3,
    0xdf4fed8a5d8a4397, 0x00f41dcf41d403f7, 0x4814eb038e52603f, 0x9dafbacc58e2d651,
    0xfe2f458e4be170af, 0x4457ec414df6a940, 0x06e62f1451123314, 0xbd1014d173ba92cc,
    0xdef318e25ed57760, 0x9fea0de9dfca8525, 0x459de1e76c20624b, 0xaeec189617e2d666,
    0x126a2c06ab5a83cb, 0xb1321532360f6132, 0x65421503dbb40123, 0x2d67c287ea089ab3,
    0x6c93bff5a56bd6b6, 0x4ffb2036cab6d98d, 0xce7b785b1be7ad4f, 0xedb42ef6189fd163,
    0xdc905288703988f6, 0x365f9c1d2c691884, 0xc640583680d99bfe, 0x3cd4624c07593ec6,
    0x7f1ea8d85d7c5805, 0x014842d480b57149, 0x0b649bcb5a828688, 0xbcd5708ed79b18f0,
    0xe987c862fbd2f2f0, 0x982731671f0cd82c, 0xbaf13e8b16d8c063, 0x8ea3109cbd951bba,
    0xd141045bfb385cad, 0x2acbc1a0af1f7d30, 0xe6444d89df03bfdf, 0xa18cc771b8188ff9,
    0x9834429db01c39bb, 0x214add07fe086a1f, 0x8f07c19b1f6b3ff9, 0x56a297b1bf4ffe55,
    0x94d558e493c54fc7, 0x40bfc24c764552cb, 0x931a706f8a8520cb, 0x32229d322935bd52,
    0x2560d0f5dc4fefaf, 0x9dbcc48355969bb6, 0x0fd81c3985c0b56a, 0xe03817e1560f2bda,
    0xc1bb4f81d892b2d5, 0xb0c4864f4e28d2d7, 0x3ecc49f9d9d6c263, 0x51307e99b52ba65e,
    0x8af2b688da84a752, 0xf5d72523b91b20b6, 0x6d95ff1ff4634806, 0x562f21555458339a,
    0xc0ce47f889336346, 0x487823e5089b40d8, 0xe4727c7ebc6d9592, 0x5a8f7277e94970ba,
    0xfca2f406b1c8bb50, 0x5b1f8a95f1791070, 0xd304af9fc9028605, 0x5440ab7fc930e748,
    0x312d25fbca2ab5a1, 0x10f4a4b234a4d575, 0x90301d55047e7473, 0x3b6372886c61591e,
    0x293402b77c444e06, 0x451f34a4d3e97dd7, 0x3158d814d81bc57b, 0x034942425b9bda69,
    0xe2032ff9e532d9bb, 0x62ae066b8b2179e5, 0x9545e10c2f8d71d8, 0x7ff7483eb2d23fc0,
    0x00945fcebdc98d86, 0x8764bbbe99b26ca2, 0x1b1ec62284c0bfc3, 0x58e0fcc4f0aa362b,
    0x5f4abefa878d458d, 0xfd74ac2f9607c519, 0xa4e3fb37df8cbfa9, 0xbf697e43cac574e5,
    0x86f14a3f68f4cd53, 0x24a23d076f1ce522, 0xe725cd8048868cc8, 0xbf3c729eb2464362,
    0xd8f6cd57b3cc1ed8, 0x6329e52425541577, 0x62aa688ad5ae1ac0, 0x0a242566269bf845,
    0x168b1a4753aca74b, 0xf789afefff2e7e3c, 0x6c3362093b6fccdb, 0x4ce8f50bd28c09b2,
    0x006a2db95ae8aa93, 0x975b0d623c3d1a8c, 0x18605d3935338c5b, 0x5bb6f6136cad3c71,
    0x0f53a20701f8d8a6, 0xab8c5ad2e7e93c67, 0x40b5ac5127acaa29, 0x8c7bf63c2075895f,
    0x78bd9f7e014a805c, 0xb2c9e9f4f9c8c032, 0xefd6049827eb91f3, 0x2be459f482c16fbd,
    0xd92ce0c5745aaa8c, 0x0aaa8fb298d965b9, 0x2b37f92c6c803b15, 0x8c54a5e94e0f0e78,
    0x95f9b6e90c0a3032, 0xe7939faa436c7874, 0xd16bfe8f6a8a40c9, 0x44982b86263fd2fa,
    0xe285fb39f984e583, 0x779a8df72d7619d3, 0xf2d79a8de8d5dd1e, 0xd1037354d66684e2,
    0x004c82a4e668a8e5, 0x31d40a7668b044e6, 0xd70578538bd02c11, 0xdb45431078c5f482,
    0x977121bb7f6a51ad, 0x73d5ccbd34eff8dd, 0xe437a07d356e17cd, 0x47b2782043c95627,
    0x9fb251413e41d49a, 0xccd70b60652513d3, 0x1c95b31e8a1b49b2, 0xcae73dfd1bcb4c1b,
    0x34d98331b1f5b70f, 0x784e39f22338d92f, 0x18613d4a064df420, 0xf1d8dae25f0bcebe,
    0x33f77c15ae855efc, 0x3c88b3b912eb109c, 0x956a2ec96bafeea5, 0x1aa005b5e0ad0e87,
    0x5500d70527c4bb8e, 0xe36c57196421cc44, 0x13c4d286cc36ee39, 0x5654a23d818b2a81,
    0x77b1dc13d161abdc, 0x734f44de5f8d5eb5, 0x60717e174a6c89a2, 0xd47d9649266a211e,
    0x5b13a4322bb69e90, 0xf7669609f8b5fc3c, 0x21e6ac55bedcdac9, 0x9b56b62b61166dea,
    0xf48f66b939797e9c, 0x35f332f9c0e6ae9a, 0xcc733f6a9a878db0, 0x3da161e41cc108c2,
    0xb7d74ae535914d51, 0x4d493b0b11d36469, 0xce264d1dfba9741a, 0xa9d1f2dc7436dc06,
    0x70738016604c2a27, 0x231d36e96e93f3d5, 0x7666881197838d19, 0x4a2a83090aaad40c,
    0xf1e761591668b35d, 0x7363236497f730a7, 0x301080e37379dd4d, 0x502dea2971827042,
    0xc2c5eb858f32625f, 0x786afb9edfafbdff, 0xdaee0d868490b2a4, 0x617366b3268609f6,
    0xae0e35a0fe46173e, 0xd1a07de93e824f11, 0x079b8b115ea4cca8, 0x93a99274558faebb,
    0xfb1e6e22e08a03b3, 0xea635fdba3698dd0, 0xcf53659328503a5c, 0xcde3b31e6fd5d780,
    0x8e3e4221d3614413, 0xef14d0d86bf1a22c, 0xe1d830d3f16c5ddb, 0xaabd2b2a451504e1
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn naive(data: &[u8], from: usize, to: usize, filter: u64) -> Vec<Candidate> {
        (from..to)
            .map(|pos| Candidate {
                pos,
                hash: window_hash(data, pos),
            })
            .filter(|c| c.hash & filter == 0)
            .collect()
    }

    /// Every candidate `scan_tiles` then `scan_tail` offer for `from..to`, none taken.
    fn offered(data: &[u8], from: usize, to: usize, filter: u64) -> Vec<Candidate> {
        let mut got = Vec::new();
        let mut found = Vec::new();
        let mut take = |pos, hash| {
            got.push(Candidate { pos, hash });
            false
        };
        let end = scan_tiles(data, from, to, filter, &mut found, &mut take).unwrap_err();
        assert!(to - end < TILE && end >= from, "{from} {end} {to}");
        assert_eq!(scan_tail(data, end, to, filter, &mut take), None);
        got
    }

    #[test]
    fn gear_is_fastcdc_v2020s_table() {
        let (gear, gear_ls) = fastcdc::v2020::get_gear_with_seed(0);
        assert_eq!(&GEAR[..], &gear[..]);
        for (g, ls) in GEAR.iter().zip(gear_ls.iter()) {
            assert_eq!(g << 1, *ls);
        }
    }

    // guards: the tiles and the tail offer exactly the naive candidates, in order,
    // for any range (ragged ends, ranges shorter than a tile)
    #[test]
    fn scans_offer_the_naive_candidates_in_order() {
        // loose filters, so that candidates are many; 0 passes every position
        let loose = 0x0000_d900_0000_0000;
        for (filter, len, from, to) in [
            (loose, 64, 64, 64),
            (loose, 65, 64, 65),
            (loose, 200, 64, 200),
            (loose, 1000, 100, 900),
            (loose, 70_000, 64, 70_000),
            (loose, 70_001, 999, 70_001),
            (loose, 300_000, 5000, 299_000),
            (0x0000_d907_0353_0000, 1_000_003, 64, 1_000_003),
            (0, 3 * TILE + 100, 64, 3 * TILE + 100),
            (1, 5001, 77, 5001),
        ] {
            let data = pseudo_random(len, len as u64);
            assert_eq!(
                offered(&data, from, to, filter),
                naive(&data, from, to, filter),
                "{filter:x} {len} {from} {to}"
            );
        }
    }

    // guards: a scan stops at the first candidate taken, inside a tile or the tail
    #[test]
    fn a_taken_candidate_ends_the_scan() {
        let data = pseudo_random(5 * TILE, 9);
        let filter = 0x0000_d900_0000_0000;
        let all = naive(&data, 64, data.len(), filter);
        let mut found = Vec::new();
        for want in [&all[0], &all[all.len() / 2], all.last().unwrap()] {
            let mut seen = 0;
            let got = scan_tiles(&data, 64, data.len(), filter, &mut found, |pos, hash| {
                seen += 1;
                assert_eq!(hash, window_hash(&data, pos));
                pos == want.pos
            });
            let got = got.ok().or_else(|| {
                scan_tail(&data, got.unwrap_err(), data.len(), filter, |pos, _| {
                    seen += 1;
                    pos == want.pos
                })
            });
            assert_eq!(got, Some(want.pos));
            assert_eq!(
                seen,
                all.iter().position(|c| c.pos == want.pos).unwrap() + 1
            );
        }
    }
}
