//! The DSP-extension instructions of the int8 fast paths ([`super::dwdsp`], the SMLAD loop of
//! [`super::linear`]) as functions. In: 32-bit words, each seen as two 16-bit halves (low half
//! first) or four bytes. Out: the instruction's result.
//!
//! [`smmla`] is one instruction of inline assembly on the Cortex-M4F (the engine's `eabihf`
//! bare-metal targets), which the compiler schedules like any other arithmetic, and a Rust
//! model elsewhere. The others are Rust models only, for the host: the fast paths' loops are
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
