//! The float types training runs in ([`Real`]: f32 or f64), with what each type
//! chooses about its products and exponential.

use std::fmt::{Debug, Display};
use std::ops::Range;

use ndarray::{ArrayViewMut2, LinalgScalar};
use ndarray_npy::WritableElement;
use num_traits::Float;

use crate::data::Split;
use crate::kernel::{Packed, Scalar, blocked_pays, dot_nt_blocked};

/// A float type training can run in.
pub trait Real:
    LinalgScalar + Float + Scalar + Send + Sync + Debug + Display + WritableElement + 'static
{
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Whether evaluation scores with [`crate::kernel::dot_nt_packed`] (else [`crate::kernel::dot_nt`]). Measured with
    /// `examples/kernels.rs`: in f32 the packed product is 1.4-2x faster on the
    /// evaluation shapes; in f64, where every broadcast data value is widened, it is
    /// about as fast with 40 rows and half as fast with 10, so f64 keeps `dot_nt`.
    /// Each type always uses the same product, so results never depend on the group.
    const PACKED_EVAL: bool;
    /// Scores examples `range` of `split` from its pixels in blocks into `out`, if that
    /// is the faster way for `packed`'s rows (f32 only, see [`blocked_pays`]) and the
    /// split has them ([`Split::blocked`]): the same bits as [`crate::kernel::dot_nt_packed`] on the
    /// split's rows. Returns whether it did.
    fn score_blocked(
        packed: &Packed<Self>,
        split: &Split,
        range: Range<usize>,
        out: ArrayViewMut2<Self>,
    ) -> bool;
    /// Whether scoring `rows` rows of W reads a split's pixels in blocks (see
    /// [`Real::score_blocked`]).
    fn reads_blocks(rows: usize) -> bool;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `e^self` by [`crate::kernel::exp`]: vectorisable, and the same bits on every machine.
    fn fixed_exp(self) -> Self;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const PACKED_EVAL: bool = true;
    fn score_blocked(
        packed: &Packed<f32>,
        split: &Split,
        range: Range<usize>,
        out: ArrayViewMut2<f32>,
    ) -> bool {
        // The rows first: asking for the blocks makes them.
        let Some(blocked) = Self::reads_blocks(packed.nrows())
            .then(|| split.blocked())
            .flatten()
        else {
            return false;
        };
        dot_nt_blocked(packed, blocked, range, out);
        true
    }
    fn reads_blocks(rows: usize) -> bool {
        blocked_pays(rows)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn fixed_exp(self) -> Self {
        crate::kernel::exp::exp_f32(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const PACKED_EVAL: bool = false;
    fn score_blocked(_: &Packed<f64>, _: &Split, _: Range<usize>, _: ArrayViewMut2<f64>) -> bool {
        false
    }
    fn reads_blocks(_: usize) -> bool {
        false
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fixed_exp(self) -> Self {
        crate::kernel::exp::exp_f64(self)
    }
}
