//! Tests of training: the linear model, its loss, evaluation and the seam's drivers.

use ndarray::{Array1, Array2, Axis};

use super::eval::*;
use super::linear::*;
use super::loss::*;
use super::*;
use crate::data::RawSplit;
use crate::data::{Dataset, NUM_CLASSES};
use crate::kernel::blocked_pays;
use crate::rng::{self, Stream};

/// The linear model's W and b of a fitted run.
trait FittedParams<T> {
    fn params(&self) -> Params<T>;
}

impl<T: Real> FittedParams<T> for Fitted<T> {
    fn params(&self) -> Params<T> {
        Params::from_arrays(self.arrays()).expect("a linear model's W and b")
    }
}

/// A small learnable problem: class-dependent means plus seeded noise.
pub(crate) fn toy_dataset(n: usize, dim: usize, seed: u64) -> Dataset {
    toy(n, dim, seed, false)
}

/// [`toy_dataset`] as uint8 pixels, which the f32 evaluation of few runs reads in
/// blocks where the CPU has AVX-512.
fn toy_pixels(n: usize, dim: usize, seed: u64) -> Dataset {
    toy(n, dim, seed, true)
}

fn toy(n: usize, dim: usize, seed: u64, pixels: bool) -> Dataset {
    let mut rng = rng::generator(seed, Stream::CheckParams);
    let make = |rng: &mut rand_chacha::ChaCha20Rng, n: usize| {
        let mut noise = vec![0.0; n * dim];
        rng::fill_normal(rng, 1.0, &mut noise);
        let y: Vec<u8> = (0..n).map(|i| (i % NUM_CLASSES) as u8).collect();
        let x = Array2::from_shape_fn((n, dim), |(i, j)| {
            (noise[i * dim + j]
                + if j % NUM_CLASSES == usize::from(y[i]) {
                    2.0
                } else {
                    0.0
                }) as f32
        });
        let x = if pixels {
            x.mapv(|v| (128.0 + 40.0 * v).round().clamp(0.0, 255.0))
        } else {
            x
        };
        RawSplit {
            x,
            y,
            from_bytes: pixels,
        }
    };
    let train = make(&mut rng, n);
    let val = make(&mut rng, n / 2);
    let test = make(&mut rng, n / 2);
    Dataset::preprocess(train, val, Some(test))
}

fn cfg(seed: u64) -> TrainConfig {
    TrainConfig::epochs(16, 5, seed, true, 0.01)
}

#[test]
fn evaluation_sums_are_the_same_with_and_without_avx2() {
    // Scores spread over a wide range (so some exponentials underflow) and ties.
    let (k, n) = (NUM_CLASSES, 203);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let scores: Vec<Vec<f32>> = (0..k)
        .map(|_| {
            (0..n)
                .map(|_| ((next() - 0.5) * 60.0).round() as f32 / 3.0)
                .collect()
        })
        .collect();
    let labels: Vec<u8> = (0..n).map(|_| (next() * k as f64) as u8).collect();
    let bias = Array1::from_iter((0..k).map(|c| c as f32 * 0.25 - 1.0));
    let rows: Vec<&[f32]> = scores.iter().map(|r| r.as_slice()).collect();
    let scratch = || (vec![0.0f32; n], vec![0u32; n], vec![0.0f32; n]);
    let (mut best, mut arg, mut sum) = scratch();
    let plain = run_sums_body(&rows, bias.view(), &labels, &mut best, &mut arg, &mut sum);
    // The plain result is the textbook one.
    let mut want = (0.0f64, 0usize);
    for (j, &y) in labels.iter().enumerate() {
        let s: Vec<f32> = (0..k).map(|c| scores[c][j] + bias[c]).collect();
        let (lse, top) = log_sum_exp(s.iter().copied());
        want.0 += f64::from(lse - s[usize::from(y)]);
        want.1 += usize::from(top == usize::from(y));
    }
    assert_eq!((plain.0.to_bits(), plain.1), (want.0.to_bits(), want.1));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let (mut best, mut arg, mut sum) = scratch();
        let wide =
            unsafe { run_sums_avx2(&rows, bias.view(), &labels, &mut best, &mut arg, &mut sum) };
        assert_eq!((wide.0.to_bits(), wide.1), (plain.0.to_bits(), plain.1));
    } else {
        println!("no AVX2 on this CPU: only the plain evaluation sums were tested");
    }
}

#[test]
fn softmax_rows_sum_to_one_and_survive_large_scores() {
    let mut s = Array1::from(vec![1000.0f64, 999.0, -5.0, 0.0]);
    softmax_in_place(s.view_mut());
    assert!((s.sum() - 1.0).abs() < 1e-15);
    assert!(s.iter().all(|p| p.is_finite() && *p >= 0.0));
    let (lse, arg) = log_sum_exp([1000.0f64, 999.0].into_iter());
    assert_eq!(arg, 0);
    assert!((lse - (1000.0 + (1.0 + (-1.0f64).exp()).ln())).abs() < 1e-12);
}

#[test]
fn column_softmax_matches_the_per_column_softmax_bit_for_bit() {
    let data = toy_dataset(60, 12, 7);
    let s0 = Array2::from_shape_fn((NUM_CLASSES, 37), |(c, j)| {
        data.train.x[[j, c]] * 3.0 - 1.5 * c as f32
    });
    let bias = Array1::from_shape_fn(NUM_CLASSES, |c| 0.1 * c as f32 - 0.3);
    let mut fast = s0.clone();
    let (mut max, mut sum) = (vec![0.0; 40], vec![0.0; 40]);
    softmax_columns(fast.view_mut(), bias.view(), &mut max, &mut sum);
    // The plain build of it, whichever the CPU chose above.
    let mut plain = s0.clone();
    softmax_columns_body(plain.view_mut(), bias.view(), &mut max, &mut sum);
    let mut slow = s0.clone();
    for mut col in slow.columns_mut() {
        col += &bias;
        softmax_in_place(col);
    }
    let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&fast), bits(&slow));
    assert_eq!(bits(&plain), bits(&slow));
}

#[test]
fn evaluation_matches_the_reference_and_ignores_the_thread_count() {
    let data = toy_dataset(1300, 24, 8);
    let params = Params::<f64>::init(NUM_CLASSES, 24, 0.5, 3);
    let reference = {
        let (mut loss, mut correct) = (0.0, 0usize);
        for (x, &y) in data.train.x.rows().into_iter().zip(&data.train.y) {
            let s = params.w.dot(&x.mapv(f64::from)) + &params.b;
            let (lse, arg) = log_sum_exp(s.iter().copied());
            loss += lse - s[usize::from(y)];
            correct += usize::from(arg == usize::from(y));
        }
        (loss / 1300.0, correct as f64 / 1300.0)
    };
    let on = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| metrics(&params, 0.5, &data.train))
    };
    let one = on(1);
    assert_eq!(one, on(3));
    assert!(
        (one.loss - reference.0).abs() < 1e-12,
        "{one:?} {reference:?}"
    );
    assert_eq!(one.accuracy, reference.1);
    assert!((one.cost - one.loss - 0.5 * sq_norm(params.w.view())).abs() < 1e-12);
}

#[test]
fn one_step_on_a_split_batch_is_the_gradient_step_on_the_whole_batch() {
    // 130 examples in one batch: halves of 65 (batch_split), each in pieces of
    // piece_rows, so the gradient is summed from several pieces and both halves.
    let n = 130;
    assert!(batch_split(n) < n && batch_split(n) > piece_rows::<f64>(NUM_CLASSES));
    let data = toy_dataset(n, 24, 3);
    let cfg = TrainConfig::epochs(n, 1, 4, false, 0.1);
    let (lambda, eta) = (0.05, 0.2);
    let step = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut group = LinearTrainer::<f64>::new(&data, &cfg, &[Hyper::constant(lambda, eta)]);
        let before = (group.w.clone(), group.b.clone());
        pool.install(|| group.train_span());
        (before, group.w.clone(), group.b.clone())
    };
    let ((w0, b0), w1, b1) = step(1);
    let (_, w3, b3) = step(3);
    assert_eq!(w1, w3, "the thread count changed the weights");
    assert_eq!(b1, b3);

    // The textbook step, in plain ndarray: P = softmax(W X^T + b), G = P - Y.
    let x = data.train.x.mapv(f64::from);
    let mut g = w0.dot(&x.t()) + b0.view().insert_axis(Axis(1));
    for (mut col, &y) in g.columns_mut().into_iter().zip(&data.train.y) {
        softmax_in_place(col.view_mut());
        col[usize::from(y)] -= 1.0;
    }
    let grad_w = g.dot(&x) / n as f64 + &w0 * (2.0 * lambda);
    let grad_b = g.sum_axis(Axis(1)) / n as f64;
    let (w_ref, b_ref) = (&w0 - &(grad_w * eta), &b0 - &(grad_b * eta));
    let worst = |a: &Array2<f64>, b: &Array2<f64>| {
        a.iter()
            .zip(b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max)
    };
    assert!(
        worst(&w1, &w_ref) < 1e-13,
        "W off by {}",
        worst(&w1, &w_ref)
    );
    let b_err = b1
        .iter()
        .zip(&b_ref)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max);
    assert!(b_err < 1e-13, "b off by {b_err}");
    assert!(worst(&w1, &w0) > 1e-4, "the step moved nothing");
}

#[test]
fn training_lowers_the_cost_and_learns() {
    let data = toy_dataset(200, 30, 1);
    let fitted = fit::<LinearTrainer<f64>>(&data, &cfg(1), Hyper::constant(0.01, 0.1));
    let h = fitted.history();
    assert_eq!(h.len(), 6);
    assert!(h[5].train.cost < h[0].train.cost * 0.5, "{h:?}");
    assert!(h[5].val.accuracy > 0.8, "{h:?}");
    assert_eq!(fitted.outcome(), Outcome::Completed);
    assert!(fitted.test().unwrap().accuracy > 0.8);
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let data = toy_dataset(100, 20, 2);
    let a = fit::<LinearTrainer<f32>>(&data, &cfg(5), Hyper::constant(0.1, 0.05));
    let b = fit::<LinearTrainer<f32>>(&data, &cfg(5), Hyper::constant(0.1, 0.05));
    assert_eq!(a.params(), b.params());
    let c = fit::<LinearTrainer<f32>>(&data, &cfg(6), Hyper::constant(0.1, 0.05));
    assert_ne!(a.params(), c.params());
}

#[test]
fn fused_and_solo_runs_are_bit_identical() {
    fused_and_solo_agree(&toy_dataset(150, 40, 3));
}

/// Solo, an f32 run is scored from the blocked pixels; in a group of three (30 rows),
/// from the standardised rows by the packed product.
#[test]
fn fused_and_solo_runs_are_bit_identical_on_pixels() {
    let data = toy_pixels(150, 40, 3);
    assert_eq!(
        data.train.blocked().is_some(),
        crate::kernel::blocked_fast()
    );
    assert!(blocked_pays(NUM_CLASSES) && !blocked_pays(3 * NUM_CLASSES));
    fused_and_solo_agree(&data);
}

fn fused_and_solo_agree(data: &Dataset) {
    let members = [
        Hyper::constant(0.0, 0.1),
        Hyper::constant(0.1, 0.01),
        Hyper::constant(1.0, 0.001),
    ];
    for (r, h) in members.iter().enumerate() {
        let fused32 = &train_group::<LinearTrainer<f32>>(data, &cfg(9), &members, &|_| {})[r];
        let solo32 = fit::<LinearTrainer<f32>>(data, &cfg(9), *h);
        assert_eq!(fused32.params(), solo32.params(), "f32 member {r}");
        assert_eq!(fused32.history(), solo32.history());
        let fused64 = &train_group::<LinearTrainer<f64>>(data, &cfg(9), &members, &|_| {})[r];
        let solo64 = fit::<LinearTrainer<f64>>(data, &cfg(9), *h);
        assert_eq!(fused64.params(), solo64.params(), "f64 member {r}");
    }
}

#[test]
fn a_diverging_member_is_reported_and_does_not_disturb_the_others() {
    let data = toy_dataset(100, 20, 4);
    let members = [Hyper::constant(1.0, 10.0), Hyper::constant(0.0, 0.05)];
    let out = train_group::<LinearTrainer<f32>>(&data, &cfg(1), &members, &|_| {});
    assert!(matches!(out[0].outcome(), Outcome::Diverged { epoch } if epoch >= 1));
    assert!(out[0].test().is_none());
    let solo = fit::<LinearTrainer<f32>>(&data, &cfg(1), members[1]);
    assert_eq!(out[1].params(), solo.params());
    assert_eq!(out[1].outcome(), Outcome::Completed);
}

#[test]
fn scoring_while_the_next_epoch_trains_changes_nothing_even_for_a_diverging_member() {
    let data = toy_dataset(100, 20, 4);
    let cfg = TrainConfig {
        length: crate::plan::Length::Epochs(12),
        ..cfg(1)
    };
    let members = [
        // Weight decay that overshoots by 2000x per step: the squared norm overflows
        // f64 (a non-finite cost) while the weights are still finite and still change.
        Hyper::constant(1.0, 1000.0),
        Hyper::constant(0.0, 0.05),
    ];
    // As `exec` does: snapshot, train the next epoch, then score and record the
    // snapshot.
    let mut group = LinearTrainer::<f64>::new(&data, &cfg, &members);
    let overlapped = loop {
        let snap = LinearSnapshot::take(&[&group]);
        if group.wants_span() {
            group.train_span();
        }
        let scores = model::score::<LinearTrainer<f64>>(&snap, &data);
        snap.record(&scores, &mut [&mut group]);
        if group.done() {
            break group.finish();
        }
    };
    let sequential = train_group::<LinearTrainer<f64>>(&data, &cfg, &members, &|_| {});
    assert!(matches!(overlapped[0].outcome(), Outcome::Diverged { epoch } if epoch < 12));
    assert!(overlapped[0].params().w.iter().all(|v| v.is_finite()));
    for (a, b) in overlapped.iter().zip(&sequential) {
        assert_eq!(a.outcome(), b.outcome());
        // Bit patterns: a diverged member's weights may be NaN.
        let bits = |p: &Params<f64>| {
            let w = p.w.iter().map(|v| v.to_bits());
            w.chain(p.b.iter().map(|v| v.to_bits())).collect::<Vec<_>>()
        };
        assert!(
            bits(&a.params()) == bits(&b.params()),
            "weights of {:?}",
            a.outcome()
        );
        // Debug text, which shows NaN metrics as equal.
        assert_eq!(format!("{:?}", a.history()), format!("{:?}", b.history()));
        assert_eq!(a.test(), b.test());
    }
}

#[test]
fn groups_recorded_together_match_groups_trained_alone() {
    let data = toy_dataset(150, 40, 5);
    let hyper = |lambda, eta| Hyper::constant(lambda, eta);
    let a = [hyper(0.0, 0.1), hyper(0.1, 0.01)];
    let b = [hyper(1.0, 10.0)];
    let short = TrainConfig {
        length: crate::plan::Length::Epochs(3),
        batch_size: 7,
        ..cfg(2)
    };
    let mut ga = LinearTrainer::<f32>::new(&data, &cfg(9), &a);
    let mut gb = LinearTrainer::<f32>::new(&data, &short, &b);
    record_together(&data, &mut [&mut ga, &mut gb]);
    while !ga.done() {
        ga.train_span();
        if gb.done() {
            record_together(&data, &mut [&mut ga]);
        } else {
            gb.train_span();
            record_together(&data, &mut [&mut gb, &mut ga]);
        }
    }
    let (fa, fb) = (ga.finish(), gb.finish());
    for (fused, alone) in fa.iter().zip(train_group::<LinearTrainer<f32>>(
        &data,
        &cfg(9),
        &a,
        &|_| {},
    )) {
        assert_eq!(fused.params(), alone.params());
        assert_eq!(fused.history(), alone.history());
        assert_eq!(fused.test(), alone.test());
    }
    let alone = &train_group::<LinearTrainer<f32>>(&data, &short, &b, &|_| {})[0];
    // It diverges: its history ends in NaN, so compare the printed values.
    assert!(matches!(fb[0].outcome(), Outcome::Diverged { .. }));
    assert_eq!(fb[0].outcome(), alone.outcome());
    assert_eq!(
        format!("{:?}", fb[0].history()),
        format!("{:?}", alone.history())
    );
}
