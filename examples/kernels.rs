//! Times `sweep::kernel` on the training shapes, single-threaded, and prints GFLOP/s:
//! forward (M x 3072 x 100), backward (M x 100 x 3072) and evaluation (M x 3072 x 10000)
//! against ndarray's `general_mat_mul` (matrixmultiply); the packed product
//! (`dot_nt_packed`, packing included) against `dot_nt`, and on one chunk kept in cache
//! (what it would do without waiting on memory); the f32 evaluation from pixels in blocks
//! (`dot_nt_blocked`) against the packed one; and the backward and forward products on
//! one batch kept in cache against shuffled batches read in place, as in training.
//!
//!     cargo run --release --example kernels [-- f64]
//!
//! `PAD=N` adds N elements after every row of the operands (training pads by 64 bytes,
//! `PAD=16` in f32; see `kernel::padded_zeros`); `HUGE=1` asks for transparent huge pages
//! for the data, as training does.

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, s};
use sweep::kernel::{Chain, Packed, Scalar, acc_nn, dot_nt, dot_nt_packed};

fn best<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn run<T: Scalar + ndarray::LinalgScalar>(name: &str, cast: impl Fn(f64) -> T + Copy) {
    let d = 3072;
    let n = 10_000;
    let pad: usize = std::env::var("PAD")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    let mut xp = Array2::<f32>::zeros((n, d + pad));
    if std::env::var_os("HUGE").is_some() {
        sweep::kernel::advise_huge_pages(xp.as_slice().unwrap());
    }
    xp.indexed_iter_mut().for_each(|((i, k), v)| {
        *v = (((i * 31 + k * 7) % 97) as f64 / 97.0 - 0.5) as f32;
    });
    let x = xp.slice(s![.., ..d]);
    let xt = x.mapv(|v| cast(f64::from(v)));
    // `MS=32,40,48` times other row counts.
    let ms: Vec<usize> = std::env::var("MS")
        .map(|v| v.split(',').map(|m| m.trim().parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![10, 40, 120]);
    for m in ms {
        let wp = Array2::from_shape_fn((m, d + pad), |(i, k)| {
            cast(((i * 13 + k * 3) % 89) as f64 / 890.0)
        });
        let w = wp.slice(s![.., ..d]);
        let mut dwp = Array2::<T>::zeros((m, d + pad));
        let mut dw = dwp.slice_mut(s![.., ..d]);
        let g = Array2::from_shape_fn((m, 100), |(i, j)| cast(((i + j) % 7) as f64 / 7.0 - 0.5));
        let mut s_ = Array2::<T>::zeros((m, 100));
        let mut ev = Array2::<T>::zeros((m, 500));
        let flops_fwd = 2.0 * (m * d * 100) as f64 * 100.0;
        let flops_eval = 2.0 * (m * d * n) as f64;
        // 100 batches, each a different block of X, as in an epoch.
        let fwd_k = best(3, || {
            for bt in 0..100 {
                dot_nt(
                    w.view(),
                    x.slice(s![bt * 100..(bt + 1) * 100, ..]),
                    s_.view_mut(),
                );
            }
        });
        let fwd_m = best(3, || {
            for bt in 0..100 {
                let xb = xt.slice(s![bt * 100..(bt + 1) * 100, ..]);
                general_mat_mul(T::one(), &w, &xb.t(), T::zero(), &mut s_);
            }
        });
        let bwd_k = best(3, || {
            for bt in 0..100 {
                acc_nn(
                    g.view(),
                    x.slice(s![bt * 100..(bt + 1) * 100, ..]),
                    dw.view_mut(),
                );
            }
        });
        // The same batch every time: the data stays in cache.
        let bwd_hot = best(3, || {
            for _ in 0..100 {
                acc_nn(g.view(), x.slice(s![0..100, ..]), dw.view_mut());
            }
        });
        // Batches of shuffled rows read in place, as in training.
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        let bwd_shuf = best(3, || {
            for bt in order.chunks(100) {
                sweep::kernel::acc_nn_rows(g.view(), x, bt, dw.view_mut(), Chain::Start);
            }
        });
        let fwd_shuf = best(3, || {
            for bt in order.chunks(100) {
                sweep::kernel::dot_nt_rows(w.view(), x, bt, s_.view_mut());
            }
        });
        println!(
            "{name} M={m:3}: bwd, one batch in cache {:5.1} GF/s | shuffled batches: bwd {:5.1} fwd {:5.1}",
            flops_fwd / bwd_hot / 1e9,
            flops_fwd / bwd_shuf / 1e9,
            flops_fwd / fwd_shuf / 1e9
        );
        let bwd_m = best(3, || {
            for bt in 0..100 {
                let xb = xt.slice(s![bt * 100..(bt + 1) * 100, ..]);
                general_mat_mul(T::one(), &g, &xb, T::zero(), &mut dw);
            }
        });
        let eval_k = best(3, || {
            for c in 0..n / 500 {
                dot_nt(
                    w.view(),
                    x.slice(s![c * 500..(c + 1) * 500, ..]),
                    ev.view_mut(),
                );
            }
        });
        let eval_m = best(3, || {
            for c in 0..n / 500 {
                let xc = xt.slice(s![c * 500..(c + 1) * 500, ..]);
                general_mat_mul(T::one(), &w, &xc.t(), T::zero(), &mut ev);
            }
        });
        // The packed product, packing W once per batch (forward) or once per pass (eval).
        let fwd_p = best(3, || {
            for bt in 0..100 {
                dot_nt_packed(
                    &Packed::new(w.view()),
                    x.slice(s![bt * 100..(bt + 1) * 100, ..]),
                    s_.view_mut(),
                );
            }
        });
        let eval_p = best(3, || {
            let packed = Packed::new(w.view());
            for c in 0..n / 500 {
                dot_nt_packed(
                    &packed,
                    x.slice(s![c * 500..(c + 1) * 500, ..]),
                    ev.view_mut(),
                );
            }
        });
        // The same 500 images every time: the chunk stays in cache (L3).
        let eval_hot = best(3, || {
            let packed = Packed::new(w.view());
            for _ in 0..n / 500 {
                dot_nt_packed(&packed, x.slice(s![0..500, ..]), ev.view_mut());
            }
        });
        // The evaluation from the pixels in blocks (f32 only), on 10,000 images' pixels.
        let eval_b = (std::mem::size_of::<T>() == 4).then(|| {
            let pixels = x.mapv(|v| ((v + 0.5) * 255.0).round().clamp(0.0, 255.0));
            let (scale, shift) = (vec![1.0 / 255.0; d], vec![-0.5; d]);
            let blocked = sweep::kernel::Blocked::new(pixels.view(), &scale, &shift);
            let w32 =
                Array2::from_shape_fn((m, d), |(i, k)| ((i * 13 + k * 3) % 89) as f32 / 890.0);
            let mut ev32 = Array2::<f32>::zeros((m, 512));
            best(3, || {
                let packed = Packed::new(w32.view());
                for c in 0..n.div_ceil(512) {
                    let r = c * 512..((c + 1) * 512).min(n);
                    sweep::kernel::dot_nt_blocked(
                        &packed,
                        &blocked,
                        r.clone(),
                        ev32.slice_mut(s![.., ..r.len()]),
                    );
                }
            })
        });
        let gf = |f: f64, t: f64| f / t / 1e9;
        if let Some(t) = eval_b {
            println!(
                "{name} M={m:3}: blocked eval {:5.1} GF/s ({:.2}x packed)",
                gf(flops_eval, t),
                eval_p / t
            );
        }
        println!(
            "{name} M={m:3}: packed fwd {:5.1} GF/s ({:.2}x dot_nt) | packed eval {:5.1} ({:.2}x dot_nt), one chunk in cache {:5.1}",
            gf(flops_fwd, fwd_p),
            fwd_k / fwd_p,
            gf(flops_eval, eval_p),
            eval_k / eval_p,
            gf(flops_eval, eval_hot),
        );
        println!(
            "{name} M={m:3}: fwd {:5.1} vs {:5.1} GF/s ({:.2}x) | bwd {:5.1} vs {:5.1} ({:.2}x) | eval {:5.1} vs {:5.1} ({:.2}x)",
            gf(flops_fwd, fwd_k),
            gf(flops_fwd, fwd_m),
            fwd_m / fwd_k,
            gf(flops_fwd, bwd_k),
            gf(flops_fwd, bwd_m),
            bwd_m / bwd_k,
            gf(flops_eval, eval_k),
            gf(flops_eval, eval_m),
            eval_m / eval_k,
        );
    }
}

fn main() {
    println!(
        "kernel vs matrixmultiply, 1 thread (GFLOP/s, ratio = matrixmultiply time / kernel time)"
    );
    match std::env::args().nth(1).as_deref() {
        Some("f64") => run::<f64>("f64", |v| v),
        _ => run::<f32>("f32", |v| v as f32),
    }
}
