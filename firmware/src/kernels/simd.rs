//! Which SIMD instruction sets the kernels use on this host. In: the CPU's feature flags
//! (read once, at the first call) and an optional limit set by the caller. Out: the
//! [`Level`] the kernels run at, and on x86-64 the vector types they compute with.
//!
//! Every level gives the same bits: the SIMD paths multiply, round, then add (never a fused
//! multiply-add), one accumulator per output, its terms in the portable loop's order; only
//! how many outputs are computed side by side changes. The limit exists so that tests can
//! run each path against the others and benchmarks can measure each.
//!
//! On x86-64, SSE2 is part of the architecture; AVX2 (with AVX's 256-bit registers enabled
//! by the operating system, checked with `XGETBV`) and F16C (the exact binary16 conversion)
//! are detected with `CPUID`, and chosen together. Other targets run the portable loops.

use core::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets a kernel may use, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The portable Rust loops (what every target without a SIMD path runs).
    Portable,
    /// x86-64's 128-bit SSE2 (4 f32 lanes).
    Sse2,
    /// x86-64's 256-bit AVX2 (8 f32 lanes), with F16C for widening binary16 weights.
    Avx2,
}

impl Level {
    const ALL: [Level; 3] = [Level::Portable, Level::Sse2, Level::Avx2];

    fn from_u8(v: u8) -> Level {
        Level::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Level::Avx2)
    }
}

/// Not yet detected.
const UNKNOWN: u8 = u8::MAX;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);
static LIMIT: AtomicU8 = AtomicU8::new(Level::Avx2 as u8);

/// The best level this CPU offers (detected once; later calls read the cached value).
pub fn detected() -> Level {
    let cached = DETECTED.load(Ordering::Relaxed);
    if cached != UNKNOWN {
        return Level::from_u8(cached);
    }
    let level = detect();
    DETECTED.store(level as u8, Ordering::Relaxed);
    level
}

/// Lets the kernels use at most `limit` from now on (every thread: the setting is global).
/// The default is no limit. The outputs are the same bits at every level.
pub fn set_limit(limit: Level) {
    LIMIT.store(limit as u8, Ordering::Relaxed);
}

/// The level the kernels run at: the detected one, at most the limit.
pub fn active() -> Level {
    detected().min(Level::from_u8(LIMIT.load(Ordering::Relaxed)))
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use x86::detect;

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn detect() -> Level {
    Level::Portable
}

/// The vector types of x86-64's SIMD levels, and the proof that a level may run.
///
/// A value of [`Sse2`] or [`Avx2`] exists only where its instructions run (SSE2 is part of
/// x86-64; an [`Avx2`] comes from [`Avx2::new`], which asks [`active`]). Their methods are
/// safe to call for that reason: a method's `unsafe` block relies on the value existing.
/// Loads and stores take raw pointers and are `unsafe`: their callers check, before the loop,
/// that every element they read or write lies in their slices.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
pub(crate) mod x86 {
    use super::Level;
    use core::arch::x86_64::*;

    /// SSE2, or AVX2 when the CPU has AVX2, AVX and F16C and the operating system saves the
    /// 256-bit registers.
    pub(super) fn detect() -> Level {
        // `__cpuid` is an unsafe function before Rust 1.87 and a safe one after.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 processor; leaf 7 is read only if leaf 0
        // says it exists.
        let (max_leaf, leaf1, leaf7_ebx) = unsafe {
            let max = __cpuid(0).eax;
            let l7 = if max >= 7 { __cpuid_count(7, 0).ebx } else { 0 };
            (max, __cpuid(1).ecx, l7)
        };
        let bit = |word: u32, n: u32| word >> n & 1 == 1;
        let (osxsave, avx, f16c) = (bit(leaf1, 27), bit(leaf1, 28), bit(leaf1, 29));
        let avx2 = max_leaf >= 7 && bit(leaf7_ebx, 5);
        // XCR0 bits 1 and 2: the operating system saves the 128- and 256-bit registers.
        if osxsave && avx && f16c && avx2 && xcr0() & 0b110 == 0b110 {
            Level::Avx2
        } else {
            Level::Sse2
        }
    }

    /// XCR0, the register that says which register states the operating system saves.
    /// Only called when CPUID reports OSXSAVE.
    fn xcr0() -> u64 {
        #[target_feature(enable = "xsave")]
        unsafe fn read() -> u64 {
            // SAFETY: XGETBV exists when CPUID says OSXSAVE, which the caller checked.
            unsafe { _xgetbv(0) }
        }
        // SAFETY: as above.
        unsafe { read() }
    }

    /// A vector of `N` f32 lanes and the operations the kernels use: each an IEEE operation
    /// per lane, rounded to nearest even (the default, never changed by the engine).
    pub(crate) trait F32s: Copy {
        /// The register type.
        type V: Copy;
        /// Lanes per vector.
        const N: usize;
        /// Every lane `x`.
        fn splat(self, x: f32) -> Self::V;
        /// Lane by lane `a + b`.
        fn add(self, a: Self::V, b: Self::V) -> Self::V;
        /// Lane by lane `a * b`.
        fn mul(self, a: Self::V, b: Self::V) -> Self::V;
        /// `N` consecutive values from `p` (any alignment).
        ///
        /// # Safety
        /// `p..p + N` is readable.
        unsafe fn load(self, p: *const f32) -> Self::V;
        /// `p[0], p[2], ..., p[2N - 2]`.
        ///
        /// # Safety
        /// `p..p + 2N - 1` is readable (not one more).
        unsafe fn load_even(self, p: *const f32) -> Self::V;
        /// Stores the lanes to `p..p + N` (any alignment).
        ///
        /// # Safety
        /// `p..p + N` is writable.
        unsafe fn store(self, p: *mut f32, v: Self::V);
        /// Stores the first `n` lanes (at most `N`) to `p..p + n`, with a copy loop of fixed
        /// length (a loop of `n` would become a call to `memcpy`).
        ///
        /// # Safety
        /// `p..p + n` is writable.
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, v: Self::V, n: usize) {
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` holds 8 >= N values; the contract for `p`.
            unsafe {
                self.store(lanes.as_mut_ptr(), v);
                for (j, &l) in lanes.iter().enumerate() {
                    if j < n.min(Self::N) {
                        *p.add(j) = l;
                    }
                }
            }
        }
        /// Lane `i` from `a[i]`, for the first `N` values.
        fn set(self, a: [f32; 8]) -> Self::V;
    }

    /// SSE2: 4 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Sse2(());

    impl Sse2 {
        /// Always there on x86-64 (this module is compiled only where SSE2 is enabled).
        pub(crate) fn new() -> Sse2 {
            Sse2(())
        }
    }

    #[allow(unused_unsafe)]
    impl Sse2 {
        /// Transposes 4 rows of 4 lanes: lane `j` of output `i` is lane `i` of input `j`.
        #[inline(always)]
        pub(crate) fn transpose(self, r: [__m128; 4]) -> [__m128; 4] {
            // SAFETY: SSE2 is enabled for the whole crate on x86-64.
            unsafe {
                let t0 = _mm_unpacklo_ps(r[0], r[1]);
                let t1 = _mm_unpacklo_ps(r[2], r[3]);
                let t2 = _mm_unpackhi_ps(r[0], r[1]);
                let t3 = _mm_unpackhi_ps(r[2], r[3]);
                [
                    _mm_movelh_ps(t0, t1),
                    _mm_movehl_ps(t1, t0),
                    _mm_movelh_ps(t2, t3),
                    _mm_movehl_ps(t3, t2),
                ]
            }
        }
    }

    // The arithmetic intrinsics are safe functions since Rust 1.87 where SSE2 is enabled, as
    // it always is here; before, they were unsafe.
    #[allow(unused_unsafe)]
    impl F32s for Sse2 {
        type V = __m128;
        const N: usize = 4;
        #[inline(always)]
        fn splat(self, x: f32) -> __m128 {
            // SAFETY: SSE2 is enabled for the whole crate on x86-64.
            unsafe { _mm_set1_ps(x) }
        }
        #[inline(always)]
        fn add(self, a: __m128, b: __m128) -> __m128 {
            // SAFETY: as above.
            unsafe { _mm_add_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m128, b: __m128) -> __m128 {
            // SAFETY: as above.
            unsafe { _mm_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m128 {
            // SAFETY: the caller's contract.
            unsafe { _mm_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_even(self, p: *const f32) -> __m128 {
            // SAFETY: reads `p..p + 4` and `p + 3..p + 7`, inside the caller's `p..p + 7`.
            unsafe {
                let (a, b) = (_mm_loadu_ps(p), _mm_loadu_ps(p.add(3)));
                // a0 a2 from `a`, then b1 = p[4] and b3 = p[6] from `b`.
                _mm_shuffle_ps::<0b11_01_10_00>(a, b)
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m128) {
            // SAFETY: the caller's contract.
            unsafe { _mm_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn set(self, a: [f32; 8]) -> __m128 {
            // SAFETY: as for `splat`.
            unsafe { _mm_setr_ps(a[0], a[1], a[2], a[3]) }
        }
    }

    /// AVX2 (with F16C): 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        /// `Some` when the kernels may use AVX2 and F16C ([`super::active`]).
        pub(crate) fn new() -> Option<Avx2> {
            (super::active() >= super::Level::Avx2).then_some(Avx2(()))
        }

        /// Widens 8 binary16 values (little-endian, from `p`, any alignment) exactly: the
        /// bits of `weights::f16_to_f32` for every value (F16C converts subnormals exactly,
        /// ignores MXCSR's flush and round settings, and quiets NaNs keeping the payload).
        ///
        /// # Safety
        /// `p..p + 16` bytes are readable.
        #[inline(always)]
        pub(crate) unsafe fn load_f16(self, p: *const u8) -> __m256 {
            // SAFETY: the caller's contract; F16C exists (the value exists).
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
        }

        /// Transposes 8 rows of 8 lanes: lane `j` of output `i` is lane `i` of input `j`.
        #[inline(always)]
        pub(crate) fn transpose(self, r: [__m256; 8]) -> [__m256; 8] {
            // SAFETY: AVX exists (the value exists).
            unsafe {
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let s0 = _mm256_shuffle_ps::<0b01_00_01_00>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0b11_10_11_10>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0b01_00_01_00>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0b11_10_11_10>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0b01_00_01_00>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0b11_10_11_10>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0b01_00_01_00>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0b11_10_11_10>(t5, t7);
                [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ]
            }
        }
    }

    impl F32s for Avx2 {
        type V = __m256;
        const N: usize = 8;
        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            // SAFETY: AVX exists (the value exists).
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: as above.
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: as above.
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m256 {
            // SAFETY: the caller's contract; AVX exists.
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_even(self, p: *const f32) -> __m256 {
            // SAFETY: reads `p..p + 8` and `p + 7..p + 15`, inside the caller's `p..p + 15`;
            // AVX2 exists.
            unsafe {
                let (a, b) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(7)));
                // Per 128-bit half: a's lanes 0 and 2, then b's 1 and 3, which are p[0], p[2],
                // p[8], p[10] | p[4], p[6], p[12], p[14]; then the middle 64-bit pieces swap.
                let s = _mm256_shuffle_ps::<0b11_01_10_00>(a, b);
                let d = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(s));
                _mm256_castpd_ps(d)
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m256) {
            // SAFETY: the caller's contract; AVX exists.
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn set(self, a: [f32; 8]) -> __m256 {
            // SAFETY: AVX exists.
            unsafe { _mm256_setr_ps(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]) }
        }
    }
}
