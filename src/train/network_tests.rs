//! Tests of the k-layer network's training: fused against solo, thread counts, the update
//! against the checked gradients, dropout and flips.

use ndarray::ArrayD;

use super::model::{fit, train_group};
use super::tests::toy_dataset;
use super::*;
use crate::data::Dataset;
use crate::plan::{Hyper, Length, Rate, TrainConfig};
use crate::spec::{Augment, Init, LossName};

/// A two-hidden-layer network on the toy problem: xavier, two cycles of a cyclic rate
/// crossing epoch boundaries, recorded every 7 updates.
fn net_cfg(hidden: &[usize], loss: LossName, dropout: f64) -> TrainConfig {
    let mut cfg = TrainConfig::epochs(16, 0, 5, true, 0.01);
    cfg.length = Length::Updates(2 * 2 * 9);
    cfg.hidden = hidden.to_vec();
    cfg.init = Init::Xavier;
    cfg.loss = loss;
    cfg.dropout = dropout;
    cfg.eval_every = 7;
    cfg
}

fn cyclic(lambda: f64, max: f64) -> Hyper {
    Hyper {
        lambda,
        rate: Rate::Cyclic {
            min: 1e-4,
            max,
            step_size: 9,
        },
    }
}

const MEMBERS: [(f64, f64); 3] = [(0.0, 0.2), (0.01, 0.1), (0.1, 0.05)];

fn members() -> Vec<Hyper> {
    MEMBERS.iter().map(|&(l, m)| cyclic(l, m)).collect()
}

fn arrays<T: Clone>(f: &Fitted<T>) -> Vec<(String, ArrayD<T>)> {
    f.arrays()
        .iter()
        .map(|a| (a.name.clone(), a.array.clone()))
        .collect()
}

fn fused_equals_solo<T: Real, L: Loss>(data: &Dataset, cfg: &TrainConfig) {
    let members = members();
    let fused = train_group::<NetTrainer<T, L>>(data, cfg, &members, &|_| {});
    for (r, h) in members.iter().enumerate() {
        let solo = fit::<NetTrainer<T, L>>(data, cfg, *h);
        assert_eq!(arrays(&fused[r]), arrays(&solo), "member {r}");
        assert_eq!(fused[r].history(), solo.history(), "member {r}");
        assert_eq!(fused[r].test(), solo.test(), "member {r}");
    }
}

#[test]
fn network_fused_and_solo_runs_are_bit_identical() {
    let data = toy_dataset(150, 40, 3);
    for (hidden, loss, dropout) in [
        (&[12][..], LossName::CrossEntropy, 0.0),
        (&[12, 6], LossName::CrossEntropy, 0.3),
        (&[12], LossName::Hinge, 0.0),
        (&[8, 8], LossName::Hinge, 0.2),
    ] {
        let cfg = net_cfg(hidden, loss, dropout);
        match loss {
            LossName::CrossEntropy => {
                fused_equals_solo::<f32, CrossEntropy>(&data, &cfg);
                fused_equals_solo::<f64, CrossEntropy>(&data, &cfg);
            }
            LossName::Hinge => {
                fused_equals_solo::<f32, Hinge>(&data, &cfg);
                fused_equals_solo::<f64, Hinge>(&data, &cfg);
            }
        }
    }
}

#[test]
fn network_results_ignore_the_thread_count() {
    let data = toy_dataset(150, 40, 4);
    let cfg = net_cfg(&[12, 6], LossName::CrossEntropy, 0.2);
    same_on_one_and_two_threads(&data, &cfg);
}

/// A group trained on 1 and on 2 threads: the same bits.
fn same_on_one_and_two_threads(data: &Dataset, cfg: &TrainConfig) {
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train_group::<NetTrainer<f32>>(data, cfg, &members(), &|_| {}))
    };
    let (one, two) = (run(1), run(2));
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(arrays(a), arrays(b));
        assert_eq!(a.history(), b.history());
    }
}

#[test]
fn a_network_learns_the_toy_problem() {
    let data = toy_dataset(200, 40, 5);
    let mut cfg = net_cfg(&[16], LossName::CrossEntropy, 0.0);
    cfg.length = Length::Updates(200);
    cfg.eval_every = 0;
    let out = fit::<NetTrainer<f64>>(&data, &cfg, cyclic(0.001, 0.1));
    let first = out.history().first().unwrap();
    let last = out.history().last().unwrap();
    assert_eq!(out.outcome(), Outcome::Completed);
    assert!(
        last.train.cost < 0.5 * first.train.cost,
        "{first:?} -> {last:?}"
    );
    assert!(last.val.accuracy > 0.8, "{last:?}");
}

#[test]
fn records_fall_every_eval_every_updates_and_at_the_end() {
    let data = toy_dataset(150, 40, 3);
    let cfg = net_cfg(&[12], LossName::CrossEntropy, 0.0);
    let out = fit::<NetTrainer<f64>>(&data, &cfg, cyclic(0.0, 0.1));
    let updates: Vec<usize> = out.history().iter().map(|m| m.update).collect();
    assert_eq!(updates, [0, 7, 14, 21, 28, 35, 36]);
    // 150 examples in batches of 16: 10 updates an epoch.
    let epochs: Vec<usize> = out.history().iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [0, 0, 1, 2, 2, 3, 3]);
    // The rate recorded is the cyclic one at that update.
    assert_eq!(out.history()[1].eta, 1e-4 + (0.1 - 1e-4) * 7.0 / 9.0);
}

#[test]
fn one_network_update_is_the_checked_gradient_step() {
    // A full batch of 40 and one update, in f64: the arrays move by exactly eta times
    // the gradients the gradient check compares.
    let data = toy_dataset(40, 24, 6);
    for loss in [LossName::CrossEntropy, LossName::Hinge] {
        let mut cfg = net_cfg(&[10, 7], loss, 0.0);
        cfg.batch_size = 40;
        cfg.shuffle = false;
        cfg.length = Length::Updates(1);
        let h = Hyper::constant(0.05, 0.3);
        match loss {
            LossName::CrossEntropy => check_step::<CrossEntropy>(&data, &cfg, h),
            LossName::Hinge => check_step::<Hinge>(&data, &cfg, h),
        }
    }
}

fn check_step<L: Loss>(data: &Dataset, cfg: &TrainConfig, h: Hyper) {
    let mut t = NetTrainer::<f64, L>::new(data, cfg, &[h]);
    let before = t.arrays().swap_remove(0);
    let all: Vec<u32> = (0..40).collect();
    let grads = t.gradients(&all).swap_remove(0);
    t.train_span();
    let after = t.arrays().swap_remove(0);
    let Rate::Constant { eta } = h.rate else {
        unreachable!()
    };
    assert_eq!(before.len(), 6, "W1 b1 W2 b2 W3 b3");
    for ((p, g), now) in before.iter().zip(&grads).zip(&after) {
        assert_eq!((&p.name, &g.name), (&now.name, &now.name));
        let want = &p.array - &(&g.array * eta);
        assert_eq!(want, now.array, "{} {}", L::NAME, p.name);
    }
}

#[test]
fn dropout_changes_training_and_is_reproducible() {
    let data = toy_dataset(150, 40, 3);
    let plain = fit::<NetTrainer<f32>>(
        &data,
        &net_cfg(&[12], LossName::CrossEntropy, 0.0),
        cyclic(0.0, 0.1),
    );
    let dropped = |p| {
        fit::<NetTrainer<f32>>(
            &data,
            &net_cfg(&[12], LossName::CrossEntropy, p),
            cyclic(0.0, 0.1),
        )
    };
    let (a, b) = (dropped(0.5), dropped(0.5));
    assert_eq!(arrays(&a), arrays(&b));
    assert_ne!(arrays(&a), arrays(&plain));
    // Evaluation uses the whole network: the first record (before training) is the same.
    assert_eq!(a.history()[0], plain.history()[0]);
}

#[test]
fn flips_change_training_reproducibly_on_images() {
    let data = toy_dataset(60, 3072, 7);
    let cfg = |augment| {
        let mut c = net_cfg(&[6], LossName::CrossEntropy, 0.0);
        c.augment = augment;
        c.length = Length::Updates(8);
        c
    };
    let run = |augment| fit::<NetTrainer<f32>>(&data, &cfg(augment), cyclic(0.0, 0.1));
    let (a, b, plain) = (run(Augment::Flip), run(Augment::Flip), run(Augment::None));
    assert_eq!(arrays(&a), arrays(&b));
    assert_ne!(arrays(&a), arrays(&plain));
    let lin = |augment| {
        let mut c = cfg(augment);
        c.hidden.clear();
        fit::<LinearTrainer<f32>>(&data, &c, cyclic(0.0, 0.1))
    };
    assert_ne!(arrays(&lin(Augment::Flip)), arrays(&lin(Augment::None)));
}

fn with_norm(mut cfg: TrainConfig, momentum: f64) -> TrainConfig {
    cfg.norm = Some(crate::plan::Norm {
        momentum,
        eps: 1e-5,
    });
    cfg
}

#[test]
fn batch_norm_fused_and_solo_runs_are_bit_identical_on_any_thread_count() {
    let data = toy_dataset(150, 40, 8);
    for (hidden, loss, dropout) in [
        (&[12, 6][..], LossName::CrossEntropy, 0.2),
        (&[8, 8], LossName::Hinge, 0.0),
    ] {
        let cfg = with_norm(net_cfg(hidden, loss, dropout), 0.9);
        match loss {
            LossName::CrossEntropy => {
                fused_equals_solo::<f32, CrossEntropy>(&data, &cfg);
                fused_equals_solo::<f64, CrossEntropy>(&data, &cfg);
            }
            LossName::Hinge => {
                fused_equals_solo::<f32, Hinge>(&data, &cfg);
                fused_equals_solo::<f64, Hinge>(&data, &cfg);
            }
        }
        same_on_one_and_two_threads(&data, &cfg);
        // Batch norm changes training.
        let plain = fit::<NetTrainer<f32>>(&data, &net_cfg(hidden, loss, dropout), members()[1]);
        let normed = fit::<NetTrainer<f32>>(&data, &cfg, members()[1]);
        assert_ne!(plain.history(), normed.history());
    }
}

#[test]
fn one_batch_norm_update_is_the_checked_step_and_sets_the_running_averages() {
    // A full batch of 40 and one update, in f64: W, gamma and beta move by exactly eta
    // times the checked gradients; the hidden biases have a zero gradient and stay; the
    // running averages become the batch's statistics at the initial weights.
    let data = toy_dataset(40, 24, 9);
    let mut cfg = with_norm(net_cfg(&[10, 7], LossName::CrossEntropy, 0.0), 0.9);
    cfg.batch_size = 40;
    cfg.shuffle = false;
    cfg.length = Length::Updates(1);
    let eta = 0.3;
    let mut t = NetTrainer::<f64>::new(&data, &cfg, &[Hyper::constant(0.05, eta)]);
    let before = t.arrays().swap_remove(0);
    let names: Vec<&str> = before.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "W1", "b1", "gamma1", "beta1", "mean1", "var1", "W2", "b2", "gamma2", "beta2", "mean2",
            "var2", "W3", "b3"
        ]
    );
    let all: Vec<u32> = (0..40).collect();
    let grads = t.gradients(&all).swap_remove(0);
    let grad_names: Vec<&str> = grads.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        grad_names,
        [
            "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
        ]
    );
    t.train_span();
    let after = t.arrays().swap_remove(0);
    let get = |arrays: &[NamedArray<f64>], name: &str| {
        arrays
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .array
            .clone()
    };
    for g in &grads {
        let want = &get(&before, &g.name) - &(&g.array * eta);
        assert_eq!(want, get(&after, &g.name), "{}", g.name);
    }
    for b in ["b1", "b2"] {
        assert!(get(&grads, b).iter().all(|&v| v == 0.0), "{b}");
    }
    assert!(get(&grads, "gamma1").iter().any(|&v| v != 0.0));
    // mean1 = the batch mean of W1 x + b1 at the initial weights, per unit.
    let w1 = get(&before, "W1")
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let b1 = get(&before, "b1");
    let x = data.train.x.slice(ndarray::s![..40, ..24]).mapv(f64::from);
    let z = x.dot(&w1.t());
    let mean1 = get(&after, "mean1");
    let var1 = get(&after, "var1");
    for u in 0..10 {
        let col: Vec<f64> = z.column(u).iter().map(|v| v + b1[u]).collect();
        let m = col.iter().sum::<f64>() / 40.0;
        let v = col.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / 40.0;
        assert!((mean1[u] - m).abs() < 1e-12 * m.abs().max(1.0), "unit {u}");
        assert!((var1[u] - v).abs() < 1e-12 * v.max(1.0), "unit {u}");
    }
}

#[test]
fn the_small_layers_give_the_same_bits_with_and_without_avx2() {
    use ndarray::Array2;
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let w = Array2::from_shape_fn((13, 37), |_| next());
    let a = Array2::from_shape_fn((37, 101), |_| next());
    let g = Array2::from_shape_fn((13, 101), |_| next());
    let (mut f1, mut f2) = (Array2::zeros((13, 101)), Array2::zeros((13, 101)));
    super::network::forward(w.view(), a.view(), f1.view_mut());
    super::network::forward_body(w.view(), a.view(), f2.view_mut());
    let bits = |m: &Array2<f32>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&f1), bits(&f2));
    let (mut b1, mut b2) = (Array2::zeros((37, 101)), Array2::zeros((37, 101)));
    super::network::backward(w.view(), g.view(), b1.view_mut());
    super::network::backward_body(w.view(), g.view(), b2.view_mut());
    assert_eq!(bits(&b1), bits(&b2));
    // And each element is the ascending sum over the inputs, from zero.
    let mut s = 0.0f32;
    for i in 0..37 {
        s += w[[3, i]] * a[[i, 50]];
    }
    assert_eq!(f1[[3, 50]].to_bits(), s.to_bits());
}
