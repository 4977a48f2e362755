//! Data movement: zero padding, concatenation, permutation, and softmax (which moves little
//! but works along one axis like the others). The moves are generic over the element type
//! (f32 and int8 tensors).

/// `[c][h][w] -> [c][h + top + bottom][w + left + right]`, `zero` around (0.0, or an int8
/// tensor's zero point).
#[allow(clippy::indexing_slicing)] // shapes validated
pub(crate) fn zero_pad<T: Copy>(
    c: usize,
    h: usize,
    w: usize,
    pad: [usize; 4],
    zero: T,
    input: &[T],
    output: &mut [T],
) {
    let (oh, ow) = (h + pad[0] + pad[2], w + pad[1] + pad[3]);
    output.fill(zero);
    for ch in 0..c {
        for y in 0..h {
            let dst = (ch * oh + y + pad[0]) * ow + pad[1];
            output[dst..dst + w].copy_from_slice(&input[(ch * h + y) * w..(ch * h + y + 1) * w]);
        }
    }
}

/// Copies one concat input, `outer` blocks of `block` elements, to every `stride`-th place
/// of the output starting at `at`.
#[allow(clippy::indexing_slicing)] // shapes validated
pub(crate) fn concat_part<T: Copy>(
    outer: usize,
    block: usize,
    stride: usize,
    at: usize,
    input: &[T],
    output: &mut [T],
) {
    for o in 0..outer {
        output[o * stride + at..o * stride + at + block]
            .copy_from_slice(&input[o * block..(o + 1) * block]);
    }
}

/// Softmax in place over the middle axis of `[outer][n][inner]`: `exp(x - max) / sum`,
/// the sum in increasing index.
#[allow(clippy::indexing_slicing)] // shapes validated
pub(crate) fn softmax(outer: usize, n: usize, inner: usize, data: &mut [f32]) {
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let mut max = f32::NEG_INFINITY;
            for k in 0..n {
                let v = data[at(k)];
                if v > max || v.is_nan() {
                    max = v;
                }
            }
            let mut sum = 0.0f32;
            for k in 0..n {
                let e = libm::expf(data[at(k)] - max);
                data[at(k)] = e;
                sum += e;
            }
            for k in 0..n {
                data[at(k)] /= sum;
            }
        }
    }
}

/// `output[i0][i1][i2][i3] = input[...]` with `output.dims[a] = input.dims[perm[a]]`;
/// `dims` is the input shape padded with 1s to four dimensions.
#[allow(clippy::indexing_slicing)] // shapes validated, perm a permutation of 0..4
pub(crate) fn permute<T: Copy>(dims: [usize; 4], perm: [usize; 4], input: &[T], output: &mut [T]) {
    let mut in_stride = [0usize; 4];
    let mut s = 1;
    for a in (0..4).rev() {
        in_stride[a] = s;
        s *= dims[a];
    }
    let od = perm.map(|p| dims[p]);
    let os = perm.map(|p| in_stride[p]);
    let mut k = 0;
    for a in 0..od[0] {
        for b in 0..od[1] {
            for c in 0..od[2] {
                let base = a * os[0] + b * os[1] + c * os[2];
                for d in 0..od[3] {
                    output[k] = input[base + d * os[3]];
                    k += 1;
                }
            }
        }
    }
}

/// Where a slice reads: `[outer][n][inner]` in, `[outer][len][inner]` out, output row `j` of each
/// outer block being input row `start + j * step`.
pub(crate) struct SliceGeom {
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
    pub start: usize,
    pub step: usize,
    pub len: usize,
}

/// Copies the rows of a slice (`g`) from `input` to `output`.
#[allow(clippy::indexing_slicing)] // shapes validated: start + step * (len - 1) < n
pub(crate) fn slice<T: Copy>(g: SliceGeom, input: &[T], output: &mut [T]) {
    for o in 0..g.outer {
        for j in 0..g.len {
            let src = (o * g.n + g.start + j * g.step) * g.inner;
            let dst = (o * g.len + j) * g.inner;
            output[dst..dst + g.inner].copy_from_slice(&input[src..src + g.inner]);
        }
    }
}
