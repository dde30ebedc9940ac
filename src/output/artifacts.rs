//! What `sweep run` writes into a sweep's output folder (the names are the contract's,
//! see `output::contract`): `sweep.toml`, `plan.csv`, each run's folder, the tables
//! rebuilt from the run folders, and the gradient-check table; and the claims and locks
//! that let several runners share the folder.
//!
//! Every file is written under a temporary name and renamed into place, and a run's folder
//! is assembled under `runs/.tmp/` and renamed into `runs/<run_id>/` as a whole, so a crash
//! never leaves a half-written file or a half-finished run that looks finished. A run is
//! finished exactly when its folder (and so its `result.json`) exists.
//!
//! May import `output::contract`, `output::atomic`, `plan` and `train`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ndarray_npy::WriteNpyExt;

use crate::output::atomic::{self, absolute, unique_suffix};
use crate::output::contract::{
    self, CLAIMS_DIR, EPOCH_COLUMNS, EPOCH_SPLITS, GRADCHECK_COLUMNS, GRADCHECK_CSV,
    GRADCHECK_JSON, METRICS_CSV, ORIGIN_JSON, Origin, PARAMS_JSON, PLAN_CSV, RESULT_JSON,
    RESULTS_CSV, RUNS_DIR, RUNS_TMP_DIR, ReadError, SWEEP_LOCK, SWEEP_TOML,
};
// The status and the result record are the contract's; they are re-exported here for the
// stages that record runs (exec, app, progress).
pub use crate::output::contract::{Final, RunResult, RunStatus};
use crate::plan::{Plan, RunId, RunSpec, num};
use crate::spec::ValidSpec;
use crate::train::gradcheck::CheckRow;
use crate::train::{self, Fitted, NamedArray, Outcome, Real};

/// An I/O problem with the output folder.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(transparent)]
    Contract(#[from] ReadError),
    #[error(
        "output folder {dir} holds runs of the same sweep trained on other data ({found}, now {expected}); \
         choose another --out, or pass --force to retrain them"
    )]
    OtherData {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "output folder {dir} holds runs of the same sweep trained by a version of sweep whose \
         arithmetic differs (revision {found}, now {expected}), so their numbers would differ \
         in the last bits from runs trained now; choose another --out, or pass --force to \
         retrain them"
    )]
    OtherArithmetic {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (see [`atomic::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    atomic::write_atomic(path, bytes).map_err(write_err(path))
}

/// Writes each of a model's parameter arrays to `dir` as [`contract::array_file`] of its
/// name (`W.npy`, `b.npy` for the linear model).
fn write_arrays<T: Real>(dir: &Path, arrays: &[NamedArray<T>]) -> io::Result<()> {
    for a in arrays {
        let mut f = fs::File::create(dir.join(contract::array_file(&a.name)))?;
        a.array.write_npy(&mut f).map_err(io::Error::other)?;
        f.sync_all()?;
    }
    Ok(())
}

/// The text of `model.json`: every array in order (name, file, shape, dtype) and the
/// forward pass: for each layer in order, `h = W @ h + b`, then ReLU except after the
/// last; the scores are the last `h`, with `h` first the standardised input.
fn model_json<T: Real>(arrays: &[NamedArray<T>], params: &crate::plan::RunParams) -> String {
    let dtype = if std::mem::size_of::<T>() == 4 {
        "float32"
    } else {
        "float64"
    };
    let list: Vec<serde_json::Value> = arrays
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "file": contract::array_file(&a.name),
                "shape": a.array.shape(),
                "dtype": dtype,
            })
        })
        .collect();
    // Layer i has W{i} and b{i} (W and b for the one-layer model), and, when it is a
    // normalised hidden layer, gamma{i}, beta{i}, mean{i} and var{i}.
    let has = |name: &str| arrays.iter().any(|a| a.name == name);
    let weights: Vec<&str> = arrays
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| n.starts_with('W'))
        .collect();
    let count = weights.len();
    let layers: Vec<serde_json::Value> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let suffix = &w[1..];
            let bias = format!("b{suffix}");
            let mut layer = serde_json::json!({
                "weights": w,
                "bias": has(&bias).then_some(bias),
                "activation": if i + 1 < count { "relu" } else { "none" },
            });
            if has(&format!("gamma{suffix}")) {
                layer["batch_norm"] = serde_json::json!({
                    "gamma": format!("gamma{suffix}"),
                    "beta": format!("beta{suffix}"),
                    "mean": format!("mean{suffix}"),
                    "var": format!("var{suffix}"),
                    "eps": params.bn_eps,
                });
            }
            layer
        })
        .collect();
    let forward = if params.batch_norm && !params.hidden.is_empty() {
        "h = x (standardised, one column per example); for each layer: z = W @ h + b[:, None]; \
         where the layer has batch_norm: z = gamma[:, None] * (z - mean[:, None]) / \
         sqrt(var[:, None] + eps) + beta[:, None] (the running averages); h = activation(z); \
         scores = h"
    } else {
        "h = x (standardised, one column per example); for each layer: h = activation(W @ h + b[:, None]); scores = h"
    };
    let model = serde_json::json!({
        "arrays": list,
        "layers": layers,
        "forward": forward,
        "loss": params.loss.as_str(),
        "dropout_in_training": params.dropout,
    });
    serde_json::to_string_pretty(&model).expect("JSON of plain values") + "\n"
}

/// One sweep's output folder.
#[derive(Debug, Clone)]
pub struct SweepDir {
    root: PathBuf,
}

impl SweepDir {
    pub fn new(out: &Path, name: &str) -> Self {
        SweepDir {
            root: out.join(name),
        }
    }

    pub fn open(root: &Path) -> Self {
        SweepDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self, id: &RunId) -> PathBuf {
        self.root.join(RUNS_DIR).join(id.as_str())
    }

    /// Where run folders are assembled before they are renamed into `runs/`.
    fn runs_tmp(&self) -> PathBuf {
        self.root.join(RUNS_DIR).join(RUNS_TMP_DIR)
    }

    /// Creates the folder and writes `sweep.toml`, `origin.json` and `plan.csv`.
    pub fn prepare(&self, spec: &ValidSpec, plan: &Plan) -> Result<(), ArtifactError> {
        let tmp = self.runs_tmp();
        fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;
        write_atomic(&self.root.join(SWEEP_TOML), spec.text.as_bytes())?;
        let origin = Origin {
            spec: absolute(&spec.path),
            data_dir: absolute(&spec.data_dir),
        };
        let json = serde_json::to_string_pretty(&origin).expect("paths serialize");
        write_atomic(&self.root.join(ORIGIN_JSON), json.as_bytes())?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(contract::plan_header())
            .expect("in-memory write");
        for run in &plan.runs {
            let mut row = vec![run.id.to_string()];
            row.extend(run.params.csv_fields());
            w.write_record(&row).expect("in-memory write");
        }
        write_atomic(
            &self.root.join(PLAN_CSV),
            &w.into_inner().expect("in-memory"),
        )
    }

    /// The recorded result of `run`, if it finished (any status but failed or stopped) with
    /// the same parameters on the same data.
    pub fn finished(&self, run: &RunSpec, data: &str) -> Result<Option<RunResult>, ArtifactError> {
        let dir = self.run_dir(&run.id);
        if dir.exists() && !dir.is_dir() {
            return Err(ArtifactError::Read {
                path: dir,
                message: "not a folder, so the run cannot be written there; move it away to train this run".into(),
            });
        }
        let path = dir.join(RESULT_JSON);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ArtifactError::Read {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let result: RunResult = serde_json::from_str(&text).map_err(|e| ArtifactError::Read {
            path: path.clone(),
            message: format!(
                "{e}; delete the folder {} to retrain it",
                self.run_dir(&run.id).display()
            ),
        })?;
        if result.arithmetic != train::ARITHMETIC {
            return Err(ArtifactError::OtherArithmetic {
                dir: self.root.clone(),
                found: result.arithmetic,
                expected: train::ARITHMETIC,
            });
        }
        if result.data != data {
            return Err(ArtifactError::OtherData {
                dir: self.root.clone(),
                found: result.data,
                expected: data.to_string(),
            });
        }
        let same = result.params == run.params;
        // A failed run is retried; a run successive halving stopped did not train all
        // its epochs, and (its state beyond its weights not kept) trains again from its
        // start in a resumed race, to the same numbers.
        let complete = !matches!(result.status, RunStatus::Failed | RunStatus::Stopped);
        Ok((same && complete).then_some(result))
    }

    /// Writes a trained run's folder atomically and returns its result.
    pub fn write_run<T: Real>(
        &self,
        run: &RunSpec,
        fitted: &Fitted<T>,
        seconds: f64,
        data: &str,
    ) -> Result<RunResult, ArtifactError> {
        let last = fitted.history().last();
        let (status, diverged_epoch, stopped_epoch) = match fitted.outcome() {
            Outcome::Completed => (RunStatus::Ok, None, None),
            Outcome::Diverged { epoch } => (RunStatus::Diverged, Some(epoch), None),
            Outcome::Stopped { epoch } => (RunStatus::Stopped, None, Some(epoch)),
        };
        let result = RunResult {
            run_id: run.id.clone(),
            params: run.params,
            status,
            diverged_epoch,
            stopped_epoch,
            train: last.and_then(|m| Final::finite(m.train)),
            val: last.and_then(|m| Final::finite(m.val)),
            test: fitted.test().map(Final::from),
            seconds,
            error: None,
            data: data.to_string(),
            arithmetic: train::ARITHMETIC,
        };
        self.commit_run(run, &result, |dir| {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(EPOCH_COLUMNS).expect("in-memory");
            for m in fitted.history() {
                for (split, s) in EPOCH_SPLITS.into_iter().zip([m.train, m.val]) {
                    w.write_record([
                        m.epoch.to_string(),
                        m.update.to_string(),
                        num(m.eta),
                        split.to_string(),
                        num(s.loss),
                        num(s.cost),
                        num(s.accuracy),
                    ])
                    .expect("in-memory");
                }
            }
            fs::write(dir.join(METRICS_CSV), w.into_inner().expect("in-memory"))?;
            fs::write(
                dir.join(contract::MODEL_JSON),
                model_json(fitted.arrays(), &run.params),
            )?;
            write_arrays(dir, fitted.arrays())
        })?;
        Ok(result)
    }

    /// Records a run that failed with `error` (best effort: the failure is also returned
    /// to the caller, who reports it even if this write fails).
    pub fn write_failed(
        &self,
        run: &RunSpec,
        error: &str,
        data: &str,
    ) -> Result<RunResult, ArtifactError> {
        let result = RunResult {
            run_id: run.id.clone(),
            params: run.params,
            status: RunStatus::Failed,
            diverged_epoch: None,
            stopped_epoch: None,
            train: None,
            val: None,
            test: None,
            seconds: 0.0,
            error: Some(error.to_string()),
            data: data.to_string(),
            arithmetic: train::ARITHMETIC,
        };
        self.commit_run(run, &result, |_| Ok(()))?;
        Ok(result)
    }

    /// Assembles a run folder under `runs/.tmp/`, then renames it into place (replacing an
    /// older folder of the same run, which is moved aside first and then deleted).
    fn commit_run(
        &self,
        run: &RunSpec,
        result: &RunResult,
        fill: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<(), ArtifactError> {
        let dest = self.run_dir(&run.id);
        let tmp = self
            .runs_tmp()
            .join(format!("{}.{}", run.id, unique_suffix()));
        let build = || -> io::Result<()> {
            fs::create_dir_all(&tmp)?;
            fs::write(
                tmp.join(PARAMS_JSON),
                serde_json::to_string_pretty(&run.params).expect("serialisable"),
            )?;
            fill(&tmp)?;
            fs::write(
                tmp.join(RESULT_JSON),
                serde_json::to_string_pretty(result).expect("serialisable"),
            )?;
            for entry in fs::read_dir(&tmp)? {
                fs::File::open(entry?.path())?.sync_all()?;
            }
            if dest.exists() {
                let old = tmp.with_extension("old");
                fs::rename(&dest, &old)?;
                fs::rename(&tmp, &dest)?;
                fs::remove_dir_all(&old)
            } else {
                fs::rename(&tmp, &dest)
            }
        };
        build().map_err(|source| {
            let _ = fs::remove_dir_all(&tmp);
            ArtifactError::Write {
                path: dest.clone(),
                source,
            }
        })
    }

    /// Claims `id` for this process: an exclusive advisory lock (flock) on
    /// `runs/.claims/<run_id>.lock`, held until the returned file is dropped. `None` when
    /// another process holds it. The operating system releases the lock when its holder
    /// dies, so a killed runner never blocks a run. (flock is per machine: on a network
    /// file system shared by several machines, shard the sweep instead; see README.)
    ///
    /// A run's folder is only assembled by the holder of its claim, so once the claim is
    /// ours, whatever a killed runner left of this run under `runs/.tmp/` is debris: see
    /// `SweepDir::clear_debris`.
    pub fn claim(&self, id: &RunId) -> Result<Option<fs::File>, ArtifactError> {
        let dir = self.root.join(RUNS_DIR).join(CLAIMS_DIR);
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let path = dir.join(format!("{id}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(write_err(&path))?;
        match file.try_lock() {
            Ok(()) => {
                self.clear_debris(id);
                Ok(Some(file))
            }
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(ArtifactError::Write { path, source: e }),
        }
    }

    /// Clears what a killed runner left of run `id` under `runs/.tmp/` (call with its claim
    /// held). A half-built folder is removed. A finished folder moved aside while being
    /// replaced (`.old`) is moved back when the run has no folder, because the crash came
    /// between the two renames; otherwise it is removed. Best effort: a failure here only
    /// leaves the debris in place.
    fn clear_debris(&self, id: &RunId) {
        let tmp = self.runs_tmp();
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        let prefix = format!("{id}.");
        let dest = self.run_dir(id);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // The rest must be exactly a `<pid>-<counter>` suffix: ids contain dots
            // (lambda=0.1), so a longer id that starts with this one leaves a dot in it.
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let (suffix, old) = match rest.strip_suffix(".old") {
                Some(s) => (s, true),
                None => (rest, false),
            };
            if !suffix.chars().all(|c| c.is_ascii_digit() || c == '-') || suffix.is_empty() {
                continue;
            }
            let path = entry.path();
            let outcome = if old && !dest.exists() {
                fs::rename(&path, &dest)
            } else {
                fs::remove_dir_all(&path)
            };
            match outcome {
                Ok(()) => tracing::debug!("cleared {} (left by a killed runner)", path.display()),
                Err(e) => tracing::debug!("could not clear {}: {e}", path.display()),
            }
        }
    }

    /// Holds the sweep-wide lock (blocking) while `f` runs: serialises rebuilding the
    /// sweep-level tables, so that whichever runner rebuilds last sees every finished run.
    pub fn with_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, ArtifactError> {
        let path = self.root.join(SWEEP_LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(write_err(&path))?;
        file.lock().map_err(write_err(&path))?;
        Ok(f())
    }

    /// Writes the gradient-check table and the spec it answers.
    pub fn write_gradcheck(&self, rows: &[CheckRow], key: &str) -> Result<(), ArtifactError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(GRADCHECK_COLUMNS).expect("in-memory");
        for r in rows {
            w.write_record([
                r.batch_size.to_string(),
                r.segment.to_string(),
                num(r.lambda),
                r.method.as_str().to_string(),
                r.param.as_str().to_string(),
                num(r.norm_diff),
                num(r.max_abs_diff),
                num(r.max_rel_err),
                num(r.seconds),
                r.kinks.map(|k| k.to_string()).unwrap_or_default(),
                r.zero_by_construction.to_string(),
            ])
            .expect("in-memory");
        }
        write_atomic(
            &self.root.join(GRADCHECK_CSV),
            &w.into_inner().expect("in-memory"),
        )?;
        write_atomic(&self.root.join(GRADCHECK_JSON), key.as_bytes())
    }

    /// Whether `gradcheck.csv` exists for exactly this check (`key` describes it).
    pub fn gradcheck_done(&self, key: &str) -> bool {
        self.root.join(GRADCHECK_CSV).exists()
            && fs::read_to_string(self.root.join(GRADCHECK_JSON)).is_ok_and(|k| k == key)
    }

    /// Rebuilds `metrics.csv` and `results.csv` from the run folders (the run folders are
    /// the truth), for the runs of `plan.csv` in plan order. Returns the results found.
    pub fn rebuild_tables(&self) -> Result<Vec<RunResult>, ArtifactError> {
        let ids = contract::read_plan(&self.root.join(PLAN_CSV))?
            .into_iter()
            .map(|p| RunId::from_str_unchecked(&p.run_id));
        let mut metrics = csv::Writer::from_writer(Vec::new());
        let mut results = csv::Writer::from_writer(Vec::new());
        metrics
            .write_record(contract::metrics_header())
            .expect("in-memory");
        results
            .write_record(contract::results_header())
            .expect("in-memory");
        let mut found = Vec::new();
        for id in ids {
            let dir = self.run_dir(&id);
            let path = dir.join(RESULT_JSON);
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let result: RunResult =
                serde_json::from_str(&text).map_err(|e| ArtifactError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let params = result.params.csv_fields();
            let mut row: Vec<String> = vec![id.to_string()];
            row.extend(params.iter().cloned());
            row.push(result.status.as_str().into());
            row.push(
                result
                    .diverged_epoch
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
            for f in [result.train, result.val, result.test] {
                match f {
                    Some(f) => row.extend([num(f.loss), num(f.cost), num(f.accuracy)]),
                    None => row.extend([String::new(), String::new(), String::new()]),
                }
            }
            row.push(num(result.seconds));
            row.push(result.error.clone().unwrap_or_default());
            row.push(
                result
                    .stopped_epoch
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
            results.write_record(&row).expect("in-memory");
            let mpath = dir.join(METRICS_CSV);
            if let Ok(mut r) = csv::Reader::from_path(&mpath) {
                for rec in r.records() {
                    let rec = rec.map_err(|e| ArtifactError::Read {
                        path: mpath.clone(),
                        message: e.to_string(),
                    })?;
                    let mut line: Vec<&str> = vec![id.as_str()];
                    line.extend(params.iter().map(String::as_str));
                    line.extend(rec.iter());
                    metrics.write_record(&line).expect("in-memory");
                }
            }
            found.push(result);
        }
        write_atomic(
            &self.root.join(METRICS_CSV),
            &metrics.into_inner().expect("in-memory"),
        )?;
        write_atomic(
            &self.root.join(RESULTS_CSV),
            &results.into_inner().expect("in-memory"),
        )?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claiming_a_run_clears_what_a_killed_runner_left_of_it_and_nothing_else() {
        let out = tempfile::tempdir().unwrap();
        let dir = SweepDir::new(out.path(), "s");
        let tmp = dir.runs_tmp();
        let (id, other) = (
            RunId::from_str_unchecked("lambda=0.1_eta=0.01_seed=1"),
            RunId::from_str_unchecked("lambda=0.1_eta=0.01_seed=10"),
        );
        let half_built = tmp.join(format!("{id}.123-0"));
        let moved_aside = tmp.join(format!("{id}.123-1.old"));
        let others = tmp.join(format!("{other}.123-2"));
        for d in [&half_built, &moved_aside, &others] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(moved_aside.join("result.json"), "{}").unwrap();

        let claim = dir.claim(&id).unwrap().expect("free");
        assert!(!half_built.exists(), "a half-built folder is removed");
        assert!(!moved_aside.exists());
        assert!(
            dir.run_dir(&id).join("result.json").exists(),
            "a finished folder caught between the two renames is moved back"
        );
        assert!(others.exists(), "another run's folder is not touched");
        drop(claim);

        // With the run's folder in place, a stale `.old` is removed instead.
        fs::create_dir_all(&moved_aside).unwrap();
        let _claim = dir.claim(&id).unwrap().expect("free");
        assert!(!moved_aside.exists());
        assert!(dir.run_dir(&id).join("result.json").exists());
    }
}
