//! Writes a synthetic sweep folder by the output contract (plausible curves, random-ish
//! weights, a few diverged/failed/unfinished runs) and times `summarize_sweep` on it.
//!
//! Usage: `cargo run --release --example summary_bench -- OUT_DIR [SETTINGS] [SEEDS] [EPOCHS]`
//! (defaults 200 settings x 5 seeds x 40 epochs = 1,000 runs). With SUMMARY_BENCH_KEEP=1
//! it only summarizes OUT_DIR again.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use ndarray_npy::WriteNpyExt;
use sweep::output::summary::{SummaryOptions, TableFormat, summarize_sweep};

/// A small deterministic hash-based generator in [0, 1), so the folder is reproducible.
fn noise(a: u64, b: u64) -> f64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xD1B5_4A32_D192_ED03);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = Path::new(
        args.first()
            .ok_or("usage: summary_bench OUT_DIR [SETTINGS] [SEEDS] [EPOCHS]")?,
    );
    let n_settings: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let n_seeds: u64 = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let epochs: u32 = args.get(3).map_or(Ok(40), |s| s.parse())?;
    let lambdas = [0.0, 0.001, 0.01, 0.1, 1.0];
    let etas = [0.001, 0.005, 0.01, 0.05, 0.1, 0.0005, 0.0001, 0.002];
    let batches = [10, 20, 50, 100, 200];

    // SUMMARY_BENCH_KEEP=1 re-summarizes an existing folder (e.g. with real weights
    // dropped in) instead of writing a new one.
    if std::env::var_os("SUMMARY_BENCH_KEEP").is_some() {
        let summary = summarize_sweep(out, &SummaryOptions::default())?;
        print!("{}", summary.render(TableFormat::Table));
        return Ok(());
    }
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out.join("runs"))?;
    let head = "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std";
    let (mut plan, mut results, mut metrics) = (
        format!("{head}\n"),
        format!(
            "{head},status,diverged_epoch,train_loss,train_cost,train_accuracy,val_loss,val_cost,val_accuracy,test_loss,test_cost,test_accuracy,seconds,error\n"
        ),
        format!("{head},epoch,split,loss,cost,accuracy\n"),
    );
    let t0 = Instant::now();
    for s in 0..n_settings {
        let lambda = lambdas[s % lambdas.len()];
        let eta = etas[(s / lambdas.len()) % etas.len()];
        let batch = batches[(s / (lambdas.len() * etas.len())) % batches.len()];
        let quality = 0.25 + 0.15 * noise(s as u64, 0) - 0.05 * lambda;
        for seed in 1..=n_seeds {
            let id = format!("lambda={lambda}_eta={eta}_batch={batch}_epochs={epochs}_seed={seed}");
            let params = format!("{lambda},{eta},{batch},{epochs},{seed},true,f32,0.01");
            writeln!(plan, "{id},{params}")?;
            let r = noise(s as u64, seed);
            if s == 3 && seed == n_seeds {
                continue; // unfinished
            }
            if s == 5 && seed == 2 {
                writeln!(results, "{id},{params},failed,,,,,,,,,,,0.1,out of memory")?;
                continue;
            }
            let diverged = s == 7 && seed == 1;
            let mut last = (0.0, 0.0, 0.0, 0.0);
            for epoch in 0..=epochs {
                let t = f64::from(epoch) / f64::from(epochs.max(1));
                for (split, gap) in [("train", 0.04), ("val", 0.0)] {
                    let acc = 0.1
                        + (quality + gap) * (1.0 - (-4.0 * t).exp())
                        + 0.04 * (r - 0.5) * t.sqrt()
                        + 0.01 * (noise(seed * 1000 + u64::from(epoch), s as u64) - 0.5);
                    let loss =
                        2.3 - 1.8 * (acc - 0.1) + 0.02 * noise(epoch.into(), seed + s as u64 * 7);
                    let cost = loss + lambda * (0.2 + t);
                    writeln!(metrics, "{id},{params},{epoch},{split},{loss},{cost},{acc}")?;
                    if split == "val" {
                        last.1 = acc;
                        last.3 = cost;
                    } else {
                        last.0 = acc;
                        last.2 = cost;
                    }
                }
            }
            if diverged {
                writeln!(results, "{id},{params},diverged,12,,,,,,,,,,3.2,")?;
                continue;
            }
            let (tr, va, trc, vac) = last;
            writeln!(
                results,
                "{id},{params},ok,,{},{trc},{tr},{},{vac},{va},{},{},{},2.5,",
                trc - 0.01,
                vac - 0.01,
                vac,
                vac + 0.01,
                va - 0.005
            )?;
            let run_dir = out.join("runs").join(&id);
            fs::create_dir_all(&run_dir)?;
            let w = Array2::<f32>::from_shape_fn((10, 3072), |(k, j)| {
                let (p, c) = (j % 1024, j / 1024);
                let (y, x) = ((p / 32) as f32, (p % 32) as f32);
                let blob = (-((x - 16.0 - 6.0 * (k as f32 * 0.7).sin()).powi(2)
                    + (y - 16.0).powi(2))
                    / 120.0)
                    .exp();
                0.02 * blob * if (k + c) % 3 == 0 { 1.0 } else { -0.5 }
                    + 0.004 * (noise(j as u64, k as u64 * 31 + seed) as f32 - 0.5)
            });
            w.write_npy(fs::File::create(run_dir.join("W.npy"))?)?;
        }
    }
    fs::write(out.join("plan.csv"), plan)?;
    fs::write(out.join("results.csv"), results)?;
    fs::write(out.join("metrics.csv"), metrics)?;
    fs::write(
        out.join("gradcheck.csv"),
        "batch_size,segment,lambda,method,param,norm_diff,max_abs_diff,max_rel_err,seconds\n\
         1,first,0,centred,W,1.5e-9,2e-10,3.1e-7,0.5\n1,first,0,centred,b,2.5e-10,1e-10,4.2e-8,0.5\n\
         20,first,0,centred,W,2.1e-9,3e-10,6.3e-7,0.9\n20,first,0,centred,b,4.5e-10,2e-10,5.2e-8,0.9\n\
         20,random-1,0.1,forward,W,1e-6,1e-7,2e-4,0.7\n20,random-1,0.1,forward,b,3e-7,1e-7,5e-5,0.7\n",
    )?;
    eprintln!(
        "wrote {} runs in {:.2?}",
        n_settings as u64 * n_seeds,
        t0.elapsed()
    );

    let t1 = Instant::now();
    let summary = summarize_sweep(out, &SummaryOptions::default())?;
    let with_figures = t1.elapsed();
    let t2 = Instant::now();
    let tables_only = SummaryOptions {
        figures: false,
        ..SummaryOptions::default()
    };
    summarize_sweep(out, &tables_only)?;
    let without = t2.elapsed();
    eprintln!(
        "summarize_sweep: {with_figures:.2?} with figures ({} curve figures, {} montages, {} montages skipped), {without:.2?} without",
        summary.figures.curves.len(),
        summary.figures.montages.len(),
        summary.figures.montages_skipped
    );
    let table = summary.render(TableFormat::Table);
    print!("{}", table.lines().take(12).collect::<Vec<_>>().join("\n"));
    println!();
    Ok(())
}
