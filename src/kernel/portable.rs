//! The reference implementation of the kernel contract ([`crate::kernel`]'s module docs):
//! scalar code, one element at a time. Every SIMD path must give the same bits, and the
//! unit tests in `mod.rs` compare each of them with these functions.

use super::{Chain, Mat, Packed, Scalar, reduce_lanes};

pub(super) unsafe fn dot_nt<T: Scalar>(a: Mat<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
    let lanes = T::LANES;
    let mut acc = [T::zero(); 8];
    for i in 0..a.rows {
        for j in 0..b.rows {
            acc[..lanes].fill(T::zero());
            for k in 0..a.cols {
                // SAFETY: i < a.rows, j < b.rows, k < cols.
                let (x, y) = unsafe { (*a.row(i).add(k), T::from_f32(*b.row(j).add(k))) };
                acc[k % lanes] = x.mul_add(y, acc[k % lanes]);
            }
            // SAFETY: c is a.rows x b.rows.
            unsafe { *c.add(i * ldc + j) = reduce_lanes(&mut acc[..lanes]) };
        }
    }
}

pub(super) unsafe fn dot_packed<T: Scalar>(a: &Packed<T>, b: Mat<f32>, c: *mut T, ldc: usize) {
    for i in 0..a.rows {
        for j in 0..b.rows {
            let mut acc = T::zero();
            for k in 0..a.cols {
                // SAFETY: j < b.rows, k < cols.
                let y = T::from_f32(unsafe { *b.row(j).add(k) });
                acc = a.at(i, k).mul_add(y, acc);
            }
            // SAFETY: c is a.rows x b.rows.
            unsafe { *c.add(i * ldc + j) = acc };
        }
    }
}

pub(super) unsafe fn acc_nn<T: Scalar>(
    g: Mat<T>,
    b: Mat<f32>,
    c: *mut T,
    ldc: usize,
    chain: Chain,
) {
    for i in 0..g.rows {
        for k in 0..b.cols {
            let mut acc = match chain {
                Chain::Start => T::zero(),
                // SAFETY: c is g.rows x b.cols.
                Chain::Continue => unsafe { *c.add(i * ldc + k) },
            };
            for j in 0..g.cols {
                // SAFETY: i < g.rows, j < g.cols = b.rows, k < b.cols.
                let (x, y) = unsafe { (*g.row(i).add(j), T::from_f32(*b.row(j).add(k))) };
                acc = x.mul_add(y, acc);
            }
            // SAFETY: c is g.rows x b.cols.
            unsafe { *c.add(i * ldc + k) = acc };
        }
    }
}
