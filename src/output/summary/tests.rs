//! End-to-end tests of the summary stage on synthetic sweep folders written by the
//! output contract.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use approx::assert_relative_eq;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

use super::*;
use crate::output::figures;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

const PLAN_HEADER: &str = "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std";

/// Writes a two-setting, three-seed sweep folder by the output contract: setting
/// lambda=0 (f32 weights) has three ok runs; setting lambda=0.1 (f64 weights) has
/// one ok, one diverged and one unfinished run.
fn write_synthetic_sweep(dir: &Path) -> Vec<(String, f64)> {
    let mut plan = format!("{PLAN_HEADER}\n");
    let mut results = String::from(
        "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std,status,diverged_epoch,train_loss,train_cost,train_accuracy,val_loss,val_cost,val_accuracy,test_loss,test_cost,test_accuracy,seconds,error\n",
    );
    let mut metrics = String::from(
        "run_id,lambda,eta,batch_size,epochs,seed,shuffle,precision,init_std,epoch,split,loss,cost,accuracy\n",
    );
    let mut val_accs = Vec::new();
    for (lambda, precision) in [("0", "f32"), ("0.1", "f64")] {
        for seed in 1..=3u64 {
            let id = format!("lambda={lambda}_eta=0.001_batch=100_epochs=3_seed={seed}");
            let params = format!("{lambda},0.001,100,3,{seed},true,{precision},0.01");
            plan.push_str(&format!("{id},{params}\n"));
            let status = match (lambda, seed) {
                ("0.1", 2) => "diverged",
                ("0.1", 3) => continue,
                _ => "ok",
            };
            let val = 0.30 + 0.01 * seed as f64 + if lambda == "0" { 0.05 } else { 0.0 };
            if status == "ok" {
                val_accs.push((id.clone(), val));
                results.push_str(&format!(
                    "{id},{params},ok,,1.5,1.6,0.45,1.7,1.8,{val},1.75,1.85,0.33,2.5,\n"
                ));
            } else {
                results.push_str(&format!("{id},{params},diverged,2,,,,,,,,,,1.0,\n"));
            }
            for epoch in 0..=3u32 {
                for (split, acc) in [
                    ("train", 0.1 + 0.1 * epoch as f64),
                    ("val", val * epoch as f64 / 3.0),
                ] {
                    let loss = 2.3 - 0.2 * epoch as f64 - 0.01 * seed as f64;
                    metrics.push_str(&format!(
                        "{id},{params},{epoch},{split},{loss},{},{acc}\n",
                        loss + 0.1
                    ));
                }
            }
            let run_dir = dir.join("runs").join(&id);
            std::fs::create_dir_all(&run_dir).unwrap();
            let w = Array2::<f64>::from_shape_fn((10, figures::IMAGE_LEN), |(k, j)| {
                ((k * 31 + j * (seed as usize)) % 97) as f64 / 97.0 - 0.5
            });
            let file = File::create(run_dir.join("W.npy")).unwrap();
            if precision == "f32" {
                w.mapv(|v| v as f32).write_npy(file).unwrap();
            } else {
                w.write_npy(file).unwrap();
            }
        }
    }
    write(&dir.join("plan.csv"), &plan);
    write(&dir.join("results.csv"), &results);
    write(&dir.join("metrics.csv"), &metrics);
    write(
        &dir.join("gradcheck.csv"),
        "batch_size,segment,lambda,method,param,norm_diff,max_abs_diff,max_rel_err,seconds\n\
             1,first,0,centred,W,1.5e-9,2e-10,3.1e-7,0.5\n\
             1,first,0,centred,b,2.5e-10,1e-10,4.2e-8,0.5\n\
             20,random-1,0.1,forward,W,1e-6,1e-7,2e-4,0.7\n\
             20,random-1,0.1,forward,b,3e-7,1e-7,5e-5,0.7\n",
    );
    val_accs
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

#[test]
fn summarizes_a_synthetic_sweep_folder_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let val_accs = write_synthetic_sweep(&dir);
    let summary = summarize_sweep(&dir, &SummaryOptions::default()).unwrap();

    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert_eq!(text, summary.render(TableFormat::Csv));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let first_setting: Vec<f64> = val_accs
        .iter()
        .filter(|(id, _)| id.starts_with("lambda=0_"))
        .map(|(_, v)| *v)
        .collect();
    let expected_mean = first_setting.iter().sum::<f64>() / first_setting.len() as f64;
    assert_eq!(
        &rows[0][col("setting_id")],
        "lambda=0_eta=0.001_batch=100_epochs=3"
    );
    assert_eq!(&rows[0][col("n")], "3");
    assert_relative_eq!(
        rows[0][col("val_accuracy_mean")].parse::<f64>().unwrap(),
        expected_mean,
        max_relative = 1e-12
    );
    assert_eq!(
        (
            &rows[1][col("n")],
            &rows[1][col("n_planned")],
            &rows[1][col("n_diverged")]
        ),
        ("1", "3", "1")
    );
    assert_eq!(&rows[1][col("val_accuracy_std")], "");
    assert_eq!(
        summary.missing().unfinished,
        ["lambda=0.1_eta=0.001_batch=100_epochs=3_seed=3"]
    );

    let figures_dir = dir.join("figures");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&figures_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    // 2 curve figures, 1 overlay, 4 montages (one per ok run) and lambda's response.
    assert_eq!(pngs.len(), 8, "{pngs:?}");
    for p in &pngs {
        let (w, h) = png_size(p);
        assert!(
            (300..=3000).contains(&w) && (200..=2000).contains(&h),
            "{}: {w}x{h}",
            p.display()
        );
    }
    assert_eq!(summary.figures.montages.len(), 4);
    assert_eq!(summary.figures.curves.len(), 2);

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let table = &html[html.find("<table id=\"settings\">").unwrap()..];
    let tbody = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    assert_eq!(tbody.matches("<tr").count(), 2);
    assert!(html.contains("id=\"gradcheck-table\""));
    assert!(html.contains("3.10e-7"), "max relative error of W is shown");
    assert!(
        html.contains("lambda=0.1_eta=0.001_batch=100_epochs=3_seed=3"),
        "unfinished run is listed"
    );
    for rel in summary
        .figures
        .curves
        .values()
        .map(|c| &c.rel)
        .chain(summary.figures.montages.values())
    {
        assert!(
            html.contains(&format!("=\"{rel}\"")),
            "report shows or links {rel}"
        );
    }
}

#[test]
fn a_second_summary_removes_figures_of_runs_that_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_sweep(tmp.path());
    let figures = tmp.path().join("figures");
    std::fs::create_dir_all(&figures).unwrap();
    write(&figures.join("weights_old-run.png"), "stale");
    write(&figures.join("notes.txt"), "kept");
    let debris = figures.join(".val_accuracy_all.png.tmp-123-4");
    write(&debris, "left by a killed summary");
    summarize_sweep(tmp.path(), &SummaryOptions::default()).unwrap();
    assert!(!figures.join("weights_old-run.png").exists());
    assert!(!debris.exists());
    assert!(figures.join("notes.txt").exists());
}

#[test]
fn figures_can_be_turned_off() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_sweep(tmp.path());
    let opts = SummaryOptions {
        figures: false,
        ..SummaryOptions::default()
    };
    summarize_sweep(tmp.path(), &opts).unwrap();
    assert!(tmp.path().join("summary.csv").is_file());
    assert!(!tmp.path().join("figures").exists());
    assert!(!tmp.path().join("report.html").exists());
}

/// Replaces every run's `W.npy` of a synthetic sweep with a `k` x `d` array.
fn replace_weights(dir: &Path, k: usize, d: usize) {
    for entry in std::fs::read_dir(dir.join("runs")).unwrap() {
        let run = entry.unwrap().path();
        let w = Array2::<f32>::from_shape_fn((k, d), |(i, j)| ((i * 7 + j) % 13) as f32 - 6.0);
        w.write_npy(File::create(run.join("W.npy")).unwrap())
            .unwrap();
    }
}

fn montages(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("figures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("weights_")
        })
        .collect();
    found.sort();
    found
}

#[test]
fn weights_that_are_not_images_get_no_montage_and_the_report_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_sweep(tmp.path());
    replace_weights(tmp.path(), 10, 32);
    let summary = summarize_sweep(tmp.path(), &SummaryOptions::default()).unwrap();
    assert!(montages(tmp.path()).is_empty());
    assert!(summary.figures.montages.is_empty());
    assert_eq!(summary.figures.no_montage.len(), 4, "one per ok run");
    assert_eq!(summary.figures.curves.len(), 2, "curves do not depend on W");
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert_eq!(
        html.matches("No weight montage: run").count(),
        2,
        "one per setting"
    );
    assert!(
        html.contains("its W is 10 × 32"),
        "the reason names the shape"
    );
}

#[test]
fn weights_of_other_class_counts_are_drawn_with_one_tile_per_class() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_sweep(tmp.path());
    let ten = summarize_sweep(tmp.path(), &SummaryOptions::default()).unwrap();
    let ten_size = png_size(&montages(tmp.path())[0]);
    replace_weights(tmp.path(), 3, figures::IMAGE_LEN);
    let three = summarize_sweep(tmp.path(), &SummaryOptions::default()).unwrap();
    assert_eq!(three.figures.montages.len(), ten.figures.montages.len());
    let three_size = png_size(&montages(tmp.path())[0]);
    assert_eq!(three_size.0, ten_size.0, "five tiles a row");
    assert!(three_size.1 < ten_size.1, "one row of tiles, not two");
}
