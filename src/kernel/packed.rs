//! [`Packed`]: the left operand of [`super::dot_nt_packed`], packed once in panels of
//! vectors of rows ([`panel_vectors`]), so that one packing of W serves a whole split.

use ndarray::ArrayView2;

use super::{Path, Scalar};

/// `A` (m x d) laid out for [`dot_nt_packed`]: its transpose, in panels of a few vectors
/// of rows ([`panel_vectors`]; the last vector padded with zero rows), each panel
/// depth-major, so the kernel reads one panel row of every depth index with whole vector
/// loads. The panels' widths suit the CPU's widest vectors; the results do not depend on
/// them.
#[derive(Debug, Clone)]
pub struct Packed<T> {
    pub(super) data: Vec<T>,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// Every panel's first vector and number of vectors, in order.
    pub(super) panels: Vec<(usize, usize)>,
}

/// How [`Packed`] cuts `vectors` (256-bit) vectors of rows into panels of at most
/// `widest` (3 or 6) vectors.
///
/// Up to three vectors (16 registers, or 32 with 256-bit arithmetic): panels of three
/// (one register tile of the packed product covers a whole panel row, and three vectors
/// take 11 loads per 24 multiply-adds against 14 for two), the rest in panels of two
/// (never one, which would load once per multiply-add), or one panel of one if that is
/// all. Panels used to be two vectors each, with the last padded: 40 rows (5 vectors of
/// f32) took as long as 48 (kernels example, one thread, packed evaluation: 40 rows 87.7
/// GF/s, 48 rows 102.9; 99 after).
///
/// Up to six (512-bit vectors, each two of these): panels of five, two 512-bit vectors and
/// one 256-bit vector a row, whose register tiles are all of 8 rows of B (for 120 rows,
/// kernels example, one thread: 110 GF/s, against 106-108 for 6 + 6 + 3 and 106 for
/// 4 + 4 + 4 + 3); what remains as one more panel of three or four, or, for one or two
/// vectors left, a last panel of six or a 4 + 3 pair instead of a narrow one.
pub(super) fn panel_vectors(vectors: usize, widest: usize) -> Vec<usize> {
    if vectors <= 1 {
        return vec![vectors; vectors];
    }
    if widest >= 6 {
        if vectors <= 6 {
            return vec![vectors];
        }
        let fives = vectors / 5;
        let (fives, rest) = match vectors % 5 {
            0 => (fives, vec![]),
            1 => (fives - 1, vec![6]),
            2 => (fives - 1, vec![4, 3]),
            r => (fives, vec![r]),
        };
        let mut widths = vec![5; fives];
        widths.extend(rest);
        return widths;
    }
    let (threes, twos) = match vectors % 3 {
        0 => (vectors / 3, 0),
        1 => (vectors / 3 - 1, 2),
        _ => (vectors / 3, 1),
    };
    let mut widths = vec![3; threes];
    widths.extend(std::iter::repeat_n(2, twos));
    widths
}

impl<T: Scalar> Packed<T> {
    /// Packs `a` for this CPU's packed product. Panics if its rows are not contiguous.
    pub fn new(a: ArrayView2<T>) -> Self {
        Self::for_path(a, Path::best())
    }

    /// Packs `a` in panels `path` takes.
    pub(super) fn for_path(a: ArrayView2<T>, path: Path) -> Self {
        let (rows, cols) = a.dim();
        let lanes = T::LANES;
        let vectors = rows.div_ceil(lanes);
        let mut panels = Vec::new();
        let mut first = 0;
        for nv in panel_vectors(vectors, path.widest_panel()) {
            panels.push((first, nv));
            first += nv;
        }
        let mut data = vec![T::zero(); vectors * lanes * cols];
        for &(first, nv) in &panels {
            let width = nv * lanes;
            let panel = &mut data[first * lanes * cols..][..width * cols];
            let top = first * lanes;
            for (l, row) in a
                .slice(ndarray::s![top..rows.min(top + width), ..])
                .rows()
                .into_iter()
                .enumerate()
            {
                for (slot, &v) in panel.iter_mut().skip(l).step_by(width).zip(row) {
                    *slot = v;
                }
            }
        }
        Packed {
            data,
            rows,
            cols,
            panels,
        }
    }

    pub fn nrows(&self) -> usize {
        self.rows
    }

    /// Element `(i, k)` of A.
    pub(super) fn at(&self, i: usize, k: usize) -> T {
        let lanes = T::LANES;
        let v = i / lanes;
        let &(first, nv) = self
            .panels
            .iter()
            .find(|&&(first, nv)| v < first + nv)
            .expect("row within the panels");
        let width = nv * lanes;
        self.data[first * lanes * self.cols + k * width + (i - first * lanes)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_cover_every_vector_in_the_widths_each_path_takes() {
        assert_eq!(panel_vectors(0, 3), Vec::<usize>::new());
        assert_eq!(panel_vectors(1, 3), [1]);
        assert_eq!(panel_vectors(2, 3), [2]);
        assert_eq!(panel_vectors(4, 3), [2, 2]);
        assert_eq!(panel_vectors(5, 3), [3, 2]);
        assert_eq!(panel_vectors(15, 3), [3; 5]);
        assert_eq!(panel_vectors(5, 6), [5]);
        assert_eq!(panel_vectors(6, 6), [6]);
        assert_eq!(panel_vectors(7, 6), [4, 3]);
        assert_eq!(panel_vectors(8, 6), [5, 3]);
        assert_eq!(panel_vectors(11, 6), [5, 6]);
        assert_eq!(panel_vectors(12, 6), [5, 4, 3]);
        assert_eq!(panel_vectors(15, 6), [5, 5, 5]);
        for v in 0..100 {
            let p = panel_vectors(v, 3);
            assert_eq!(p.iter().sum::<usize>(), v);
            assert!(v < 2 || p.iter().all(|&w| w == 2 || w == 3), "{v}: {p:?}");
            let p = panel_vectors(v, 6);
            assert_eq!(p.iter().sum::<usize>(), v);
            assert!(
                v < 3 || p.iter().all(|&w| (3..=6).contains(&w)),
                "{v}: {p:?}"
            );
        }
    }
}
