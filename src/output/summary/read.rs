//! Reading a sweep folder into records: the rows of `results.csv`, `gradcheck.csv` and
//! `metrics.csv` that the summary uses, and a run's `W.npy` (`plan.csv` is read by the
//! contract). Every name comes from the contract.
//!
//! May import `output::contract` only.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::output::contract::{
    DIVERGED_EPOCH, EPOCH_COLUMNS, EPOCH_SPLITS, ERROR, GRADCHECK_COLUMNS, Metric, RUN_ID,
    ReadError, RunStatus, STATUS, bad_value, each_record, open_csv, parse, parse_opt_f64,
};

/// The columns of one row of `results.csv` that the summary aggregates.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub run_id: String,
    pub status: RunStatus,
    pub diverged_epoch: Option<u64>,
    /// Final metrics in `Metric::ALL` order; NaN when the cell is empty.
    pub metrics: [f64; Metric::COUNT],
    pub error: String,
}

/// Reads and checks `results.csv`; a missing file means no run has finished yet.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>, ReadError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (reader, cols) = open_csv(path)?;
    let id_c = cols.index(RUN_ID)?;
    let status_c = cols.index(STATUS)?;
    let div_c = cols.index(DIVERGED_EPOCH)?;
    let err_c = cols.index(ERROR)?;
    let metric_cs = Metric::ALL
        .map(|m| cols.index(m.column()))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut results = Vec::new();
    each_record(path, reader, |rec, line| {
        let run_id = rec[id_c].to_string();
        crate::output::contract::once(&mut seen, path, &run_id, line)?;
        let status = RunStatus::parse(&rec[status_c]).ok_or_else(|| {
            bad_value(
                path,
                line,
                STATUS,
                &rec[status_c],
                "`ok`, `diverged` or `failed`",
            )
        })?;
        let diverged_epoch = match rec[div_c].trim() {
            "" => None,
            v => Some(parse(
                path,
                line,
                DIVERGED_EPOCH,
                v,
                "an integer epoch or an empty cell",
            )?),
        };
        let mut metrics = [f64::NAN; Metric::COUNT];
        for (m, &c) in Metric::ALL.iter().zip(&metric_cs) {
            metrics[m.index()] = parse_opt_f64(path, line, m.column(), &rec[c])?;
        }
        results.push(ResultRow {
            run_id,
            status,
            diverged_epoch,
            metrics,
            error: rec[err_c].to_string(),
        });
        Ok(())
    })?;
    Ok(results)
}

/// One row of `gradcheck.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckRow {
    pub batch_size: String,
    pub segment: String,
    pub lambda: String,
    pub method: String,
    pub param: String,
    pub norm_diff: f64,
    pub max_abs_diff: f64,
    pub max_rel_err: f64,
    /// The analytic gradient is zero by construction (`false` in folders older than
    /// the column).
    pub zero_by_construction: bool,
}

/// Reads `gradcheck.csv`.
pub fn read_gradcheck(path: &Path) -> Result<Vec<GradcheckRow>, ReadError> {
    let (reader, cols) = open_csv(path)?;
    let [b, s, l, m, p, nd, mad, mre, _seconds, _kinks, zero] =
        GRADCHECK_COLUMNS.map(|c| cols.index(c));
    let [b, s, l, m, p, nd, mad, mre] = [b?, s?, l?, m?, p?, nd?, mad?, mre?];
    let zero = zero.ok();
    let name = |i: usize| GRADCHECK_COLUMNS[i];
    let mut rows = Vec::new();
    each_record(path, reader, |rec, line| {
        rows.push(GradcheckRow {
            batch_size: rec[b].to_string(),
            segment: rec[s].to_string(),
            lambda: rec[l].to_string(),
            method: rec[m].to_string(),
            param: rec[p].to_string(),
            norm_diff: parse_opt_f64(path, line, name(5), &rec[nd])?,
            max_abs_diff: parse_opt_f64(path, line, name(6), &rec[mad])?,
            max_rel_err: parse_opt_f64(path, line, name(7), &rec[mre])?,
            zero_by_construction: match zero {
                Some(c) => parse(path, line, name(10), &rec[c], "true or false")?,
                None => false,
            },
        });
        Ok::<(), ReadError>(())
    })?;
    Ok(rows)
}

/// The recorded series of `metrics.csv` that the curve figures show.
#[derive(Debug, Clone, Copy)]
pub enum Series {
    TrainLoss,
    ValLoss,
    TrainCost,
    ValCost,
    TrainAccuracy,
    ValAccuracy,
}

/// Where a value was recorded: whole epochs trained, and the update count when the
/// file has an `update` column (folders written before it was added have none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub epoch: u32,
    pub update: Option<u32>,
    pub value: f64,
}

/// One run's recorded values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCurves {
    /// Indexed by `Series as usize`, in file order.
    pub series: [Vec<Point>; 6],
    /// The learning rate at each train record, when the file has that column.
    pub learning_rate: Vec<Point>,
}

impl RunCurves {
    /// Whether the run is better shown against update steps than epochs: it records more
    /// than once in some epoch (`eval_every`, or a cyclic run ending mid-epoch), or its
    /// learning rate moves between records (a cyclical rate, the lab plots by update).
    pub fn records_by_update(&self) -> bool {
        let train = &self.series[Series::TrainLoss as usize];
        if train.iter().any(|p| p.update.is_none()) {
            return false;
        }
        let repeats = train.windows(2).any(|w| w[0].epoch == w[1].epoch);
        repeats || self.learning_rate_moves()
    }

    /// Whether the recorded learning rate takes more than one value.
    pub fn learning_rate_moves(&self) -> bool {
        let lr = &self.learning_rate;
        lr.iter()
            .any(|p| p.value.to_bits() != lr[0].value.to_bits())
    }
}

/// Reads the recorded series of the runs in `wanted` from the sweep's `metrics.csv`.
pub fn read_curves(
    path: &Path,
    wanted: &HashSet<&str>,
) -> Result<HashMap<String, RunCurves>, ReadError> {
    let (mut reader, cols) = open_csv(path)?;
    let id_c = cols.index(RUN_ID)?;
    let [epoch_n, update_n, lr_n, split_n, loss_n, cost_n, acc_n] = EPOCH_COLUMNS;
    let [epoch_c, split_c, loss_c, cost_c, acc_c] =
        [epoch_n, split_n, loss_n, cost_n, acc_n].map(|c| cols.index(c));
    let [epoch_c, split_c, loss_c, cost_c, acc_c] = [epoch_c?, split_c?, loss_c?, cost_c?, acc_c?];
    let (update_c, lr_c) = (cols.index(update_n).ok(), cols.index(lr_n).ok());
    let mut out: HashMap<String, RunCurves> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(source) => {
                return Err(ReadError::Csv {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let id = &record[id_c];
        if !wanted.contains(id) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let epoch: u32 = parse(path, line, epoch_n, &record[epoch_c], "an integer epoch")?;
        let update: Option<u32> = update_c
            .map(|c| parse(path, line, update_n, &record[c], "an integer update count"))
            .transpose()?;
        let at = |value| Point {
            epoch,
            update,
            value,
        };
        let split = &record[split_c];
        let (loss_s, cost_s, acc_s) = if split == EPOCH_SPLITS[0] {
            (Series::TrainLoss, Series::TrainCost, Series::TrainAccuracy)
        } else if split == EPOCH_SPLITS[1] {
            (Series::ValLoss, Series::ValCost, Series::ValAccuracy)
        } else {
            return Err(bad_value(path, line, split_n, split, "`train` or `val`"));
        };
        let entry = out.entry(id.to_string()).or_default();
        for (series, col, name) in [
            (loss_s, loss_c, loss_n),
            (cost_s, cost_c, cost_n),
            (acc_s, acc_c, acc_n),
        ] {
            let v = parse_opt_f64(path, line, name, &record[col])?;
            entry.series[series as usize].push(at(v));
        }
        if let (Some(c), Series::TrainLoss) = (lr_c, loss_s) {
            let v = parse_opt_f64(path, line, lr_n, &record[c])?;
            entry.learning_rate.push(at(v));
        }
    }
    Ok(out)
}

/// A `W.npy` that cannot be read as a 2-d float array.
#[derive(Debug, thiserror::Error)]
#[error("cannot read weights {}: {message}; the run folder may be incomplete, rerun that run", path.display())]
pub struct WeightsError {
    pub path: PathBuf,
    pub message: String,
}

/// Reads `W.npy` as float64 or float32 (the run's precision): K x d, one row per class,
/// whatever K and d the run was trained with.
pub fn read_weights(path: &Path) -> Result<Array2<f64>, WeightsError> {
    use ndarray_npy::ReadNpyExt;
    let bad = |message: String| WeightsError {
        path: path.to_path_buf(),
        message,
    };
    let open = || File::open(path).map_err(|e| bad(e.to_string()));
    match Array2::<f64>::read_npy(open()?) {
        Ok(w) => Ok(w),
        Err(_) => Ok(Array2::<f32>::read_npy(open()?)
            .map_err(|e| bad(format!("not a 2-d float32/float64 array ({e})")))?
            .mapv(f64::from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::contract::results_header;
    use ndarray_npy::WriteNpyExt;

    #[test]
    fn a_bad_status_and_a_duplicate_run_are_rejected_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let header = results_header().join(",");
        let row = format!(
            "a_seed=1,0,0.1,100,3,1,true,f32,0.01{}",
            ",".repeat(crate::plan::PARAM_COLUMNS.len() - 8)
        );
        std::fs::write(
            &path,
            format!("{header}\n{row},done,,1,1,0.5,1,1,0.5,,,,1.0,,\n"),
        )
        .unwrap();
        let err = read_results(&path).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::BadValue {
                    column: "status",
                    line: 2,
                    ..
                }
            ),
            "{err}"
        );
        std::fs::write(
            &path,
            format!(
                "{header}\n{row},ok,,1,1,0.5,1,1,0.5,,,,1.0,,\n{row},failed,,,,,,,,,,,0,oom,\n"
            ),
        )
        .unwrap();
        assert!(matches!(
            read_results(&path).unwrap_err(),
            ReadError::DuplicateRun {
                first: 2,
                second: 3,
                ..
            }
        ));
    }

    fn curves(points: &[(u32, Option<u32>, f64)]) -> RunCurves {
        let at = |&(epoch, update, value): &(u32, Option<u32>, f64)| Point {
            epoch,
            update,
            value,
        };
        let mut c = RunCurves::default();
        c.series[Series::TrainLoss as usize] =
            points.iter().map(|p| at(&(p.0, p.1, 1.0))).collect();
        c.learning_rate = points.iter().map(at).collect();
        c
    }

    #[test]
    fn runs_record_by_update_when_an_epoch_repeats_or_the_rate_moves() {
        let per_epoch = curves(&[(0, Some(0), 0.1), (1, Some(10), 0.1), (2, Some(20), 0.1)]);
        assert!(!per_epoch.records_by_update() && !per_epoch.learning_rate_moves());
        let every_5 = curves(&[(0, Some(0), 0.1), (0, Some(5), 0.1), (1, Some(10), 0.1)]);
        assert!(every_5.records_by_update());
        let cyclic = curves(&[(0, Some(0), 1e-5), (1, Some(10), 0.05), (2, Some(20), 1e-5)]);
        assert!(cyclic.records_by_update() && cyclic.learning_rate_moves());
        let old_folder = curves(&[(0, None, 0.1), (0, None, 0.1)]);
        assert!(!old_folder.records_by_update(), "no update column: epochs");
    }

    #[test]
    fn weights_of_any_shape_are_read_in_either_precision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("W.npy");
        let w = Array2::<f32>::from_shape_fn((3, 32), |(k, j)| (k * 32 + j) as f32 / 7.0);
        w.write_npy(File::create(&path).unwrap()).unwrap();
        let back = read_weights(&path).unwrap();
        assert_eq!(back.dim(), (3, 32));
        assert_eq!(back[(2, 5)], f64::from(w[(2, 5)]));
        ndarray::Array1::<f64>::zeros(4)
            .write_npy(File::create(&path).unwrap())
            .unwrap();
        assert!(read_weights(&path).unwrap_err().message.contains("2-d"));
    }
}
