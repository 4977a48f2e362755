//! The convolution's micro-kernel: [`LANES`] output channels × [`PIX`] output pixels,
//! accumulated over a list of taps. In: the accumulators, the input (read in place, or a
//! zero-padded patch of it), a table of tap offsets and the taps' decoded weights. Out: the
//! accumulators, each having added `w * x` once per tap, in the table's order.
//!
//! The portable loop runs everywhere. On Arm cores with a single-precision FPU and the
//! hard-float ABI (Cortex-M4F, M7, M33, ...) an assembly loop runs instead for pixel strides 1
//! and 2: it keeps the 16 accumulators in registers and loads four weights, and at stride 1
//! four inputs, with one instruction each; for a 3-wide kernel row it loads the inputs the
//! row reads for four pixels once for its three taps (six at stride 1, nine at stride 2).
//! [`accumulate_row`] runs a row of blocks in one call, their partial sums loaded from and
//! stored to the output planes by the loop itself. Both give the same bits: `VMLA.F32` rounds
//! the product before adding it (it is not a fused multiply-add), exactly like `acc += w * x`,
//! and each accumulator sees the taps in the same order. The QEMU tests compare the two, bit
//! for bit.

/// Output channels of a block (one 4-channel block of the weight layout).
pub(crate) const LANES: usize = nnblob_format::layout::CONV_OC_BLOCK;
/// Output pixels of a block: neighbours along a row, `sw` input columns apart.
pub(crate) const PIX: usize = 4;
/// True on bare-metal cores without an Arm FPU (Cortex-M0+/M3, RISC-V): their RAM is often
/// small, and their soft-float arithmetic makes the buffers' size matter little, so the
/// convolution's stack buffers are smaller there. The results are the same bits either way
/// (partial sums between tiles are stored as the f32 they are).
pub(crate) const SMALL_STACK: bool = cfg!(all(
    target_os = "none",
    not(all(target_arch = "arm", target_abi = "eabihf"))
));

/// Taps in a table at most.
pub(crate) const MAX_TAPS: usize = if SMALL_STACK { 64 } else { 128 };

/// The accumulators of a block: `acc[lane][pixel]`, a lane's pixels side by side as in the
/// output planes.
pub(crate) type Block = [[f32; PIX]; LANES];

/// The offsets of a tile's taps from a block's first input, in tap order, and their maximum,
/// which bounds every read of [`accumulate`]. Each entry stands for `run` consecutive taps
/// one input apart (1, or 3 for the kernel rows of a 3-wide kernel at dilation 1 and stride 1
/// or 2, which the assembly loop adds from one load of their inputs).
pub(crate) struct TapTable {
    offs: [usize; MAX_TAPS],
    len: usize,
    max: usize,
    run: usize,
}

impl TapTable {
    pub fn new() -> Self {
        TapTable {
            offs: [0; MAX_TAPS],
            len: 0,
            max: 0,
            run: 1,
        }
    }

    /// Empties the table, for entries of `run` taps (at least 1).
    pub fn clear(&mut self, run: usize) {
        self.len = 0;
        self.max = 0;
        self.run = run.max(1);
    }

    /// The taps of the table.
    fn taps(&self) -> usize {
        self.len * self.run
    }

    /// How far past its offset an entry reads, for one pixel.
    fn reach(&self) -> usize {
        self.run - 1
    }

    /// Appends a tap; a full table (impossible: tiles have at most [`MAX_TAPS`] taps) keeps
    /// its length, which the callers' length checks then catch.
    pub fn push(&mut self, offset: usize) {
        if let Some(o) = self.offs.get_mut(self.len) {
            *o = offset;
            self.len += 1;
            self.max = self.max.max(offset);
        }
    }

    /// Whether `blocks` blocks (at least one) side by side, `PIX * sw` inputs apart from
    /// `x[base]` on, read only inside `x` (`x_len` elements), and `wt_len` weights cover the
    /// table's taps (at least one). In constant time: `max` bounds every offset.
    fn reads_fit(
        &self,
        x_len: usize,
        base: usize,
        sw: usize,
        blocks: usize,
        wt_len: usize,
    ) -> bool {
        let last = blocks.checked_sub(1).and_then(|b| {
            b.checked_mul(PIX * sw)?
                .checked_add(base)?
                .checked_add(self.max + self.reach())?
                .checked_add((PIX - 1) * sw)
        });
        self.len > 0 && wt_len >= self.taps() * LANES && last.is_some_and(|l| l < x_len)
    }

    fn offsets(&self) -> &[usize] {
        self.offs.get(..self.len).unwrap_or_default()
    }
}

/// `acc[l][j] += wt[t * LANES + l] * x[base + offs[t] + j * sw]` for every tap `t` in order.
/// Returns false, and adds nothing, when a read would fall outside `x` (the caller then reads
/// a patch instead) or when `wt` holds fewer weights than the table has taps.
pub(crate) fn accumulate(
    acc: &mut Block,
    x: &[f32],
    base: usize,
    sw: usize,
    taps: &TapTable,
    wt: &[f32],
) -> bool {
    if taps.len == 0 {
        return true;
    }
    if !taps.reads_fit(x.len(), base, sw, 1, wt.len()) {
        return false;
    }
    let (Some(x), Some(wt)) = (x.get(base..), wt.get(..taps.taps() * LANES)) else {
        return false;
    };
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if (sw == 1 || sw == 2) && taps.run == 1 {
        arm::accumulate(acc, x, sw, taps, wt);
        return true;
    }
    portable(acc, x, sw, taps, wt);
    true
}

/// [`accumulate`] for `blocks` blocks side by side, from and to `out`: block `b` reads its
/// inputs from `base + b * PIX * sw` and its accumulators from lane `l`'s pixels
/// `out[l * stride + at + b * PIX..][..PIX]`, where it stores them back. Returns false, and
/// changes nothing, when a read or write would fall outside `x`, `out` or `wt`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn accumulate_row(
    out: &mut [f32],
    stride: usize,
    at: usize,
    blocks: usize,
    x: &[f32],
    base: usize,
    sw: usize,
    taps: &TapTable,
    wt: &[f32],
) -> bool {
    if !taps.reads_fit(x.len(), base, sw, blocks, wt.len())
        || !writes_fit(out.len(), stride, at, blocks)
    {
        return false;
    }
    let (Some(x), Some(wt)) = (x.get(base..), wt.get(..taps.taps() * LANES)) else {
        return false;
    };
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if (sw == 1 || sw == 2) && (taps.run == 1 || taps.run == 3) {
        if let Some(out) = out.get_mut(at..) {
            arm::accumulate_row(out, stride, blocks, x, sw, taps, wt);
        }
        return true;
    }
    for b in 0..blocks {
        let p = at + b * PIX;
        let mut acc: Block = core::array::from_fn(|l| {
            let lane = out.get(l * stride + p..l * stride + p + PIX);
            lane.and_then(|v| v.try_into().ok()).unwrap_or([0.0; PIX])
        });
        portable(
            &mut acc,
            x.get(b * PIX * sw..).unwrap_or_default(),
            sw,
            taps,
            wt,
        );
        for (l, a) in acc.iter().enumerate() {
            if let Some(lane) = out.get_mut(l * stride + p..l * stride + p + PIX) {
                lane.copy_from_slice(a);
            }
        }
    }
    true
}

/// Whether the accumulators of `blocks` blocks, lane `l`'s at `out[l * stride + at..]`, lie in
/// `out` (`out_len` elements).
fn writes_fit(out_len: usize, stride: usize, at: usize, blocks: usize) -> bool {
    let end = stride
        .checked_mul(LANES - 1)
        .and_then(|w| w.checked_add(at)?.checked_add(blocks.checked_mul(PIX)?));
    end.is_some_and(|e| e <= out_len)
}

/// The portable loop; `x` starts at the block's base. The accumulators stay in locals (in
/// vector registers on the host) until the end.
fn portable(acc: &mut Block, x: &[f32], sw: usize, taps: &TapTable, wt: &[f32]) {
    let mut sums = *acc;
    let each_tap = taps.offsets().iter().flat_map(|&o| o..o + taps.run);
    for (tap, w) in each_tap.zip(wt.chunks_exact(LANES)) {
        let xs: [f32; PIX] = if sw == 1 {
            match x.get(tap..tap + PIX).map(<[f32; PIX]>::try_from) {
                Some(Ok(xs)) => xs,
                _ => break,
            }
        } else {
            let Some(xs) = x.get(tap..tap + (PIX - 1) * sw + 1) else {
                break;
            };
            core::array::from_fn(|j| xs.get(j * sw).copied().unwrap_or(0.0))
        };
        for (a, &w) in sums.iter_mut().zip(w) {
            for (a, x) in a.iter_mut().zip(xs) {
                *a += w * x;
            }
        }
    }
    *acc = sums;
}

/// The assembly loop for Arm's single-precision FPU (VFPv4-D16 and later, hard-float ABI).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::{Block, TapTable, LANES, PIX};

    /// The 16 multiply-accumulates of one tap: its weights in registers `$w0..$w3`, the
    /// four pixels' inputs in `$x0..$x3`, `acc[l][j]` in `s(16 + 4l + j)`.
    macro_rules! mla_4x4 {
        ($w0:literal, $w1:literal, $w2:literal, $w3:literal,
         $x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
            concat!(
                "vmla.f32 s16, ",
                $w0,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s17, ",
                $w0,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s18, ",
                $w0,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s19, ",
                $w0,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s20, ",
                $w1,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s21, ",
                $w1,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s22, ",
                $w1,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s23, ",
                $w1,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s24, ",
                $w2,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s25, ",
                $w2,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s26, ",
                $w2,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s27, ",
                $w2,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s28, ",
                $w3,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s29, ",
                $w3,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s30, ",
                $w3,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s31, ",
                $w3,
                ", ",
                $x3,
                "\n",
            )
        };
    }

    /// One tap with weights in s0-s3 and inputs in s8-s11.
    macro_rules! tap_4x4 {
        () => {
            mla_4x4!("s0", "s1", "s2", "s3", "s8", "s9", "s10", "s11")
        };
    }

    /// A loop over the table's entries: `{p}` gets each entry's input address (from the
    /// offsets at `$offs` and the block's first input at `{x}`), `$body` adds the entry's taps,
    /// `$n` counts the entries down.
    macro_rules! entries_loop {
        ($offs:literal, $n:literal, $body:expr) => {
            concat!(
                "3:\n",
                "ldr {p}, [",
                $offs,
                "], #4\n",
                "add {p}, {x}, {p}, lsl #2\n",
                $body,
                "subs ",
                $n,
                ", ",
                $n,
                ", #1\n",
                "bne 3b\n",
            )
        };
    }

    /// The next tap's four weights from `$w` into s0-s3.
    macro_rules! weights_4 {
        ($w:literal) => {
            concat!("vldmia ", $w, "!, {{s0-s3}}\n")
        };
    }

    /// The loop over single taps: `$load` brings a tap's four inputs into s8-s11.
    macro_rules! taps_loop {
        ($offs:literal, $w:literal, $n:literal, $load:expr) => {
            entries_loop!($offs, $n, concat!($load, "\n", weights_4!($w), tap_4x4!()))
        };
    }

    /// The loop over kernel rows of three taps at stride 2: one load of the nine inputs the
    /// row reads for four pixels (s4-s12; pixel `j`'s under tap `k` is `s(4 + 2j + k)`), a
    /// tap's four weights at a time.
    macro_rules! rows3_s2_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s4-s12}}\n",
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s4", "s6", "s8", "s10"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s5", "s7", "s9", "s11"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s6", "s8", "s10", "s12"),
                )
            )
        };
    }

    /// The loop over kernel rows of three taps at stride 1: one load of the six inputs the
    /// row reads for four pixels (s8-s13), its twelve weights in two loads.
    macro_rules! rows3_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s8-s13}}\n",
                    "vldmia ",
                    $w,
                    "!, {{s0-s7}}\n",
                    mla_4x4!("s0", "s1", "s2", "s3", "s8", "s9", "s10", "s11"),
                    mla_4x4!("s4", "s5", "s6", "s7", "s9", "s10", "s11", "s12"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s10", "s11", "s12", "s13"),
                )
            )
        };
    }

    /// The loads of a tap's four inputs at stride 1 and 2.
    macro_rules! load_s2 {
        () => {
            "vldr s8, [{p}]\n vldr s9, [{p}, #8]\n vldr s10, [{p}, #16]\n vldr s11, [{p}, #24]"
        };
    }
    macro_rules! load_s1 {
        () => {
            "vldmia {p}, {{s8-s11}}"
        };
    }

    /// The registers the loops use: the weights, the inputs and the accumulators.
    macro_rules! block_asm {
        ($($template:expr),* ; $($operands:tt)*) => {
            // SAFETY: see the callers: every read and write was checked to be in bounds.
            unsafe {
                core::arch::asm!(
                    $($template),*,
                    $($operands)*
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                    out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                    out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                    out("s12") _, out("s13") _,
                    out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                    out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                    out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                )
            }
        };
    }

    /// [`super::accumulate`] for `sw` 1 or 2; `x` starts at the block's base.
    pub(super) fn accumulate(acc: &mut Block, x: &[f32], sw: usize, taps: &TapTable, wt: &[f32]) {
        // The checks the reads below rely on, restated here (in constant time: the table's
        // maximum bounds every offset, an invariant of its private fields) so that no change
        // of a caller can make them unsound: at least one tap, `LANES` weights per tap, and
        // every input a tap reads inside `x`.
        let offs = taps.offsets();
        if !taps.reads_fit(x.len(), 0, sw, 1, wt.len()) {
            return;
        }
        // The accumulators are 16 consecutive f32s, read and written with one instruction
        // each way; the loop reads `x` at the offsets and `wt` from its start, `LANES` per tap.
        let acc = acc.as_flattened_mut();
        macro_rules! run {
            ($load:expr) => {
                block_asm!(
                    "vldmia {acc}, {{s16-s31}}",
                    taps_loop!("{offs}", "{w}", "{n}", $load),
                    "vstmia {acc}, {{s16-s31}}";
                    acc = in(reg) acc.as_mut_ptr(),
                    x = in(reg) x.as_ptr(),
                    offs = inout(reg) offs.as_ptr() => _,
                    w = inout(reg) wt.as_ptr() => _,
                    n = inout(reg) offs.len() => _,
                    p = out(reg) _,
                )
            };
        }
        match sw {
            1 => run!(load_s1!()),
            2 => run!(load_s2!()),
            // The caller sends no other stride; reading as one of the above could overrun.
            _ => {}
        }
    }

    /// [`super::accumulate_row`] for `sw` 1 or 2; `out` starts at the first block's lane 0,
    /// `x` at its first input.
    pub(super) fn accumulate_row(
        out: &mut [f32],
        stride: usize,
        blocks: usize,
        x: &[f32],
        sw: usize,
        taps: &TapTable,
        wt: &[f32],
    ) {
        // Restated as in `accumulate`, for every block, and for the partial sums.
        let offs = taps.offsets();
        if !taps.reads_fit(x.len(), 0, sw, blocks, wt.len())
            || !super::writes_fit(out.len(), stride, 0, blocks)
        {
            return;
        }
        // What the taps loop starts each block with: offsets, weights, tap count (loaded
        // into r3, r4, r5 with one instruction).
        let start = [offs.as_ptr() as usize, wt.as_ptr() as usize, offs.len()];
        macro_rules! run {
            ($taps_loop:expr, $step:literal) => {
                block_asm!(
                    "2:",
                    "mov {p}, {out}",
                    "vldmia {p}, {{s16-s19}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s20-s23}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s24-s27}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s28-s31}}",
                    "ldm {start}, {{r3, r4, r5}}",
                    $taps_loop,
                    "mov {p}, {out}",
                    "vstmia {p}, {{s16-s19}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s20-s23}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s24-s27}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s28-s31}}",
                    "add {out}, {out}, #16",
                    concat!("add {x}, {x}, #", $step),
                    "subs {blocks}, {blocks}, #1",
                    "bne 2b";
                    out = inout(reg) out.as_mut_ptr() => _,
                    stride = in(reg) stride * 4,
                    x = inout(reg) x.as_ptr() => _,
                    blocks = inout(reg) blocks => _,
                    start = in(reg) start.as_ptr(),
                    p = out(reg) _,
                    out("r3") _, out("r4") _, out("r5") _,
                )
            };
        }
        match (taps.run, sw) {
            (1, 1) => run!(taps_loop!("r3", "r4", "r5", load_s1!()), "16"),
            (1, 2) => run!(taps_loop!("r3", "r4", "r5", load_s2!()), "32"),
            (3, 1) => run!(rows3_loop!("r3", "r4", "r5"), "16"),
            (3, 2) => run!(rows3_s2_loop!("r3", "r4", "r5"), "32"),
            // The caller sends no other kind; reading as one of the above could overrun.
            _ => {}
        }
    }

    const _: () = assert!(LANES == 4 && PIX == 4, "the assembly holds a 4x4 block");
}
