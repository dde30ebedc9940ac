//! How the kernels' matrices lie in memory: [`padded_zeros`] (rows one cache line longer
//! than needed), [`Pages`] and [`advise_huge_pages`] (transparent huge pages), and [`Mat`],
//! the raw view of a row-major matrix (optionally row-indexed) that every kernel path reads.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Scalar;

/// Bytes added after every row by [`padded_zeros`].
const ROW_PAD_BYTES: usize = 64;

/// How the memory of a large matrix is backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// The default 4 KiB pages.
    Small,
    /// Transparent huge pages where Linux allows them on request ([`advise_huge_pages`]).
    ///
    /// Worth it for the training split alone, whose mini-batches read rows at random: the
    /// gradient product ran 9% more cycles on small pages (f32 study, perf samples). On the
    /// KVM guests this project is measured on, a fresh huge page costs about 5 times as
    /// much as 512 small ones to fault in (a C loop: 0.5 against 2.5 GB/s, as freed 2 MiB
    /// blocks go back to the host), so the evaluation splits, read in order, stay small.
    Huge,
}

/// An `rows x cols` matrix of zeros whose rows are one cache line longer than needed.
///
/// Without the padding a 3072-float row is exactly 3 x 4096 bytes, so the same column of
/// every row maps to the same L1 cache set, and the rows a tile reads at once evict each
/// other (`examples/kernels.rs` with `PAD=16` against `PAD=0` ran the 40-row products
/// about 30% faster; end to end the effect is within this VM's run-to-run noise).
pub fn padded_zeros<T: Scalar>(rows: usize, cols: usize, pages: Pages) -> ndarray::Array2<T> {
    let pad = ROW_PAD_BYTES / std::mem::size_of::<T>();
    let full = ndarray::Array2::<T>::zeros((rows, cols + pad));
    if pages == Pages::Huge {
        // The zeros come from a fresh mapping that no page of has been touched yet, so
        // the advice applies when the data is first written.
        advise_huge_pages(full.as_slice().expect("a new array is contiguous"));
    }
    full.slice_move(ndarray::s![.., ..cols])
}

/// Asks Linux to back the 2 MiB-aligned part of `v` with transparent huge pages, if `v`
/// spans at least a few of them; a no-op elsewhere, or if the kernel declines.
///
/// A mini-batch reads one cache line from each of 100 scattered rows at a time, on 100
/// different 4 KiB pages, more than the first-level TLB holds; with 2 MiB pages the whole
/// training split needs about 60 entries. `examples/kernels.rs` measures the effect.
pub fn advise_huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + std::mem::size_of_val(v);
        let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if hi >= lo + 2 * HUGE {
            // SAFETY: [lo, hi) lies within `v`'s allocation; MADV_HUGEPAGE changes how
            // pages are backed, never their contents. A failure only means no huge pages.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Raw view of a row-major matrix whose rows may be strided but whose elements within a
/// row are contiguous; with `idx` non-null, row `r` is row `idx[r]` of the storage.
#[derive(Clone, Copy)]
pub(super) struct Mat<T> {
    pub(super) ptr: *const T,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) ld: usize,
    pub(super) idx: *const u32,
}

impl<T> Mat<T> {
    /// Start of row `r`.
    ///
    /// # Safety
    /// `r < self.rows`.
    #[inline(always)]
    pub(super) unsafe fn row(&self, r: usize) -> *const T {
        unsafe {
            if self.idx.is_null() {
                self.ptr.add(r * self.ld)
            } else {
                self.ptr.add(*self.idx.add(r) as usize * self.ld)
            }
        }
    }

    /// Rows `r0..` (a view of the same storage).
    ///
    /// # Safety
    /// `r0 <= self.rows`.
    #[inline(always)]
    pub(super) unsafe fn skip_rows(self, r0: usize) -> Self {
        unsafe {
            if self.idx.is_null() {
                Mat {
                    ptr: self.ptr.add(r0 * self.ld),
                    rows: self.rows - r0,
                    ..self
                }
            } else {
                Mat {
                    idx: self.idx.add(r0),
                    rows: self.rows - r0,
                    ..self
                }
            }
        }
    }
}

pub(super) fn raw<T>(v: &ArrayView2<T>, what: &str) -> Mat<T> {
    let (rows, cols) = v.dim();
    assert!(
        cols <= 1 || v.strides()[1] == 1,
        "{what}: elements within a row must be contiguous"
    );
    assert!(v.strides()[0] >= 0, "{what}: negative row stride");
    Mat {
        ptr: v.as_ptr(),
        rows,
        cols,
        ld: v.strides()[0] as usize,
        idx: std::ptr::null(),
    }
}

/// `x`'s rows `rows`, without copying them.
pub(super) fn raw_rows<'a, T>(x: &ArrayView2<'a, T>, rows: &'a [u32]) -> Mat<T> {
    let all = raw(x, "right operand");
    assert!(
        rows.iter().all(|&r| (r as usize) < all.rows),
        "row index out of range"
    );
    Mat {
        rows: rows.len(),
        idx: rows.as_ptr(),
        ..all
    }
}

pub(super) fn raw_mut<T>(v: &mut ArrayViewMut2<T>) -> (*mut T, usize) {
    assert!(
        v.ncols() <= 1 || v.strides()[1] == 1,
        "output: elements within a row must be contiguous"
    );
    assert!(v.strides()[0] >= 0, "output: negative row stride");
    (v.as_mut_ptr(), v.strides()[0] as usize)
}
