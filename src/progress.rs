//! Progress display on stderr. For `sweep run` ([`Reporter`]): a live bar (runs done of
//! total, epochs, ETA) on an interactive terminal, and one log line per finished run
//! otherwise. For `sweep data fetch` ([`Download`]): a bar of bytes on a terminal, nothing
//! otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::exec::{Progress, RunOutcome};
use crate::output::artifacts::RunStatus;
use crate::plan::RunSpec;

/// Reports progress of `total_runs` runs, counted in recordings of their metrics (a run's
/// epochs, or its `eval_every` spans; see [`crate::exec::Progress::begin`]).
pub struct Reporter {
    bar: Option<ProgressBar>,
    done: AtomicUsize,
    total: usize,
}

impl Reporter {
    /// A live bar when `interactive`, plain log lines otherwise.
    pub fn new(total_runs: usize, interactive: bool) -> Self {
        let bar = interactive.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {msg} ({pos}/{len} evaluations, ETA {eta})",
                )
                .expect("valid template"),
            );
            bar.set_message(format!("0/{total_runs} runs"));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            done: AtomicUsize::new(0),
            total: total_runs,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => info!("{text}"),
        }
    }
}

impl Progress for Reporter {
    fn started(&self, runs: &[RunSpec]) {
        if runs.len() > 1 {
            tracing::debug!("training {} runs fused, from {}", runs.len(), runs[0].id);
        } else {
            tracing::debug!("training {}", runs[0].id);
        }
    }

    fn begin(&self, spans: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(spans);
        }
    }

    fn span(&self, runs: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(runs as u64);
        }
    }

    fn finished(&self, o: &RunOutcome) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{n}/{} runs", self.total));
        }
        let text = match &o.result {
            Ok(r) => match r.status {
                RunStatus::Ok => format!(
                    "[{n}/{}] {} ok: val accuracy {:.4}, test accuracy {}, {:.1}s",
                    self.total,
                    o.run.id,
                    r.val.map_or(f64::NAN, |v| v.accuracy),
                    r.test.map_or("-".into(), |t| format!("{:.4}", t.accuracy)),
                    r.seconds
                ),
                RunStatus::Diverged => format!(
                    "[{n}/{}] {} diverged at epoch {}",
                    self.total,
                    o.run.id,
                    r.diverged_epoch.unwrap_or(0)
                ),
                RunStatus::Failed => format!("[{n}/{}] {} failed", self.total, o.run.id),
                RunStatus::Stopped => format!(
                    "[{n}/{}] {} stopped by halving after epoch {}: val accuracy {:.4}",
                    self.total,
                    o.run.id,
                    r.stopped_epoch.unwrap_or(0),
                    r.val.map_or(f64::NAN, |v| v.accuracy),
                ),
            },
            Err(e) => format!("[{n}/{}] {}: {e}", self.total, o.run.id),
        };
        self.line(text);
    }
}

/// The bytes of a download, as a bar on an interactive terminal (hidden otherwise).
pub struct Download {
    bar: ProgressBar,
}

impl Download {
    /// A bar drawn on stderr when `interactive`, else one that draws nothing.
    pub fn new(interactive: bool) -> Self {
        let bar = ProgressBar::new(0);
        if interactive {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} ETA {eta}",
                )
                .expect("valid template"),
            );
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Download { bar }
    }

    /// `done` bytes so far, of `total` if known.
    pub fn update(&self, done: u64, total: Option<u64>) {
        if let Some(t) = total {
            self.bar.set_length(t);
        }
        self.bar.set_position(done);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
