//! The DSP-extension instructions of the int8 fast paths ([`super::dwdsp`], the SMLAD loop of
//! [`super::linear`]) as functions. In: 32-bit words, each seen as two 16-bit halves (low half
//! first) or four bytes. Out: the instruction's result.
//!
//! [`smmla`] is one instruction of inline assembly on the Cortex-M4F (the engine's `eabihf`
//! bare-metal targets), which the compiler schedules like any other arithmetic, and a Rust
//! model elsewhere; [`Scale`] is the rescaling the fast paths apply with it. The others are
//! Rust models only, for the host: the fast paths' loops are
//! assembly on the Cortex-M4F, and their portable twins, written with these models, are what
//! the unit tests run against the portable kernels.
//!
//! Every accumulation is modulo 2^32, like the portable kernels' `wrapping_add`: the
//! instructions compute the sum exactly and keep its low 32 bits (setting the Q flag on
//! overflow, which nothing reads).

/// `(v & 0xffff) | (hi << 16)`: two 16-bit values (`lo`, `hi` in -32768..=32767) in one word.
#[inline(always)]
pub(crate) fn pack(lo: i32, hi: i32) -> u32 {
    (lo as u32 & 0xffff) | ((hi as u32) << 16)
}

/// `SMMLA`: `acc + ((n * m) >> 32)`, the high word of the 64-bit product, modulo 2^32.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
#[inline(always)]
pub(crate) fn smmla(n: i32, m: i32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: arithmetic on registers only.
    unsafe {
        core::arch::asm!(
            "smmla {r}, {n}, {m}, {a}",
            r = lateout(reg) r,
            n = in(reg) n,
            m = in(reg) m,
            a = in(reg) acc,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    r
}

/// `SMMLA`: `acc + ((n * m) >> 32)`, modulo 2^32.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
pub(crate) fn smmla(n: i32, m: i32, acc: i32) -> i32 {
    acc.wrapping_add(((i64::from(n) * i64::from(m)) >> 32) as i32)
}

/// A channel's rescaling as the fast paths apply it: `finish(acc, requant, zy, clamp)`.
///
/// For the rescalings by less than 1/2 (the [`super::Rescale`] with `round != 0`) and a shift
/// `sh = s - 32` of at most 22 (all but the finest), `Rescale::apply`'s high word plus the
/// rounding term is one [`smmla`], and the zero point joins the rounding term as `zy << sh`:
/// the high word is below 2^30 in magnitude (`|acc * m| < 2^62`), so the sum stays below 2^31
/// and `(h + round + zy * 2^sh) >> sh == ((h + round) >> sh) + zy`, which cannot saturate.
/// Other rescalings take [`super::finish`] itself (`round` = 0 marks them: the fast path's
/// `round + (zy << sh)` is an odd multiple of `2^(sh - 1)`, never 0).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scale {
    multiplier: i32,
    /// `round + (zy << sh)`, or 0 for the general path.
    round: i32,
    /// `sh`, or the requantization's own shift for the general path.
    shift: i32,
}

impl Scale {
    pub(crate) fn new(requant: super::Requant, zy: i32) -> Self {
        let r = super::Rescale::new(requant);
        let sh = r.shift as u32 & 31;
        if r.round != 0 && sh <= 22 {
            Scale {
                multiplier: r.multiplier,
                round: r.round + (zy << sh),
                shift: sh as i32,
            }
        } else {
            Scale {
                multiplier: requant.multiplier,
                round: 0,
                shift: requant.shift,
            }
        }
    }

    /// Whether [`Scale::fast`] applies.
    #[inline(always)]
    pub(crate) fn is_fast(self) -> bool {
        self.round != 0
    }

    /// The fast path's value before the clamp (only when [`Scale::is_fast`]).
    #[inline(always)]
    pub(crate) fn fast(self, acc: i32) -> i32 {
        smmla(acc, self.multiplier, self.round) >> (self.shift as u32 & 31)
    }

    /// `finish(acc, requant, zy, clamp)`.
    #[inline(always)]
    pub(crate) fn apply(self, acc: i32, zy: i32, clamp: [i8; 2]) -> i8 {
        if self.is_fast() {
            self.fast(acc)
                .max(i32::from(clamp[0]))
                .min(i32::from(clamp[1])) as i8
        } else {
            let requant = super::Requant {
                multiplier: self.multiplier,
                shift: self.shift,
            };
            super::finish(acc, requant, zy, clamp)
        }
    }
}

#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
pub(crate) use model::{smlabt, smlad, smlatb, sxtb16, sxtb16_ror8};

#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
mod model {
    /// The low and high halves of a word.
    fn halves(v: u32) -> [i64; 2] {
        [
            i64::from(v as u16 as i16),
            i64::from((v >> 16) as u16 as i16),
        ]
    }

    /// The low 32 bits of an exact sum.
    fn low(v: i64) -> i32 {
        v as i32
    }

    /// `SMLAD`: `acc + n.lo * m.lo + n.hi * m.hi` (`SMUAD`: `acc` = 0).
    pub(crate) fn smlad(n: u32, m: u32, acc: i32) -> i32 {
        let (n, m) = (halves(n), halves(m));
        low(i64::from(acc) + n[0] * m[0] + n[1] * m[1])
    }

    /// `SMLABT`: `acc + n.lo * m.hi`.
    pub(crate) fn smlabt(n: u32, m: u32, acc: i32) -> i32 {
        low(i64::from(acc) + halves(n)[0] * halves(m)[1])
    }

    /// `SMLATB`: `acc + n.hi * m.lo` (`SMULTB`: `acc` = 0).
    pub(crate) fn smlatb(n: u32, m: u32, acc: i32) -> i32 {
        low(i64::from(acc) + halves(n)[1] * halves(m)[0])
    }

    /// `SXTB16`: bytes 0 and 2 sign-extended to the low and high halves.
    pub(crate) fn sxtb16(v: u32) -> u32 {
        super::pack(i32::from(v as u8 as i8), i32::from((v >> 16) as u8 as i8))
    }

    /// `SXTB16` with `ROR #8`: bytes 1 and 3.
    pub(crate) fn sxtb16_ror8(v: u32) -> u32 {
        sxtb16(v.rotate_right(8))
    }
}
