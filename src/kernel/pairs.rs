//! B's rows packed in pairs for the 512-bit `dot_nt` ([`super::avx512::dot_pairs`]): for
//! each pair of rows and each chunk of `lanes` values along the depth, the chunk of the
//! first row, then the same chunk of the second. One 512-bit load then gives both rows'
//! chunks, each in the half whose lanes are its own 256-bit chains: the same bits as
//! `dot_nt`, with twice the work per instruction.

use std::cell::RefCell;

use super::Mat;

/// B packed in pairs of rows (an odd last row is paired with zeros, and its result not
/// written), and B itself for the depth's tail past the last whole chunk.
#[derive(Clone, Copy)]
pub(super) struct Pairs<'a> {
    pub(super) data: &'a [f32],
    /// B's rows (not pairs).
    pub(super) rows: usize,
    /// Values per chunk (a 256-bit vector's), and whole chunks per row.
    pub(super) lanes: usize,
    pub(super) chunks: usize,
    pub(super) src: Mat<f32>,
}

impl<'a> Pairs<'a> {
    /// Pairs `p0..` (rows `2 p0..`).
    ///
    /// # Safety
    /// `p0` is less than the number of pairs.
    #[inline(always)]
    pub(super) unsafe fn skip_pairs(self, p0: usize) -> Pairs<'a> {
        Pairs {
            data: &self.data[p0 * self.chunks * 2 * self.lanes..],
            rows: self.rows - 2 * p0,
            // SAFETY: 2 p0 < rows.
            src: unsafe { self.src.skip_rows(2 * p0) },
            ..self
        }
    }
}

thread_local! {
    /// Each thread's packed pairs, reused from call to call (fresh pages cost more to
    /// fault in than the packing itself).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Packs `b`'s rows in pairs of `lanes`-value chunks and calls `f` with them.
pub(super) fn with_pairs<R>(b: Mat<f32>, lanes: usize, f: impl FnOnce(&Pairs<'_>) -> R) -> R {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        let chunks = b.cols / lanes;
        let len = b.rows.div_ceil(2) * chunks * 2 * lanes;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let data = &mut buf[..len];
        match lanes {
            8 => pack::<8>(b, data),
            4 => pack::<4>(b, data),
            _ => unreachable!("lanes of a 256-bit vector"),
        }
        f(&Pairs {
            data,
            rows: b.rows,
            lanes,
            chunks,
            src: b,
        })
    })
}

fn pack<const L: usize>(b: Mat<f32>, data: &mut [f32]) {
    let chunks = b.cols / L;
    if chunks == 0 {
        return;
    }
    for (p, out) in data.chunks_exact_mut(chunks * 2 * L).enumerate() {
        for h in 0..2 {
            let j = 2 * p + h;
            if j < b.rows {
                // SAFETY: j < rows, and a row holds cols >= chunks * L values.
                let row = unsafe { std::slice::from_raw_parts(b.row(j), chunks * L) };
                for (q, v) in row.chunks_exact(L).enumerate() {
                    out[(2 * q + h) * L..(2 * q + h + 1) * L].copy_from_slice(v);
                }
            } else {
                for q in 0..chunks {
                    out[(2 * q + h) * L..(2 * q + h + 1) * L].fill(0.0);
                }
            }
        }
    }
}
