//! The output side through the `sweep` binary: a sweep whose features are not images
//! (npy, d = 32) summarizes and says why it has no weight montage, and a disk that fills
//! while the figures are written leaves no 0-byte or truncated figure or report.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{npy_header, sample_dir, sweep, visible_names, write_npy_split};
use ndarray::{Array1, Array2};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sweep run SPEC --out OUT`, which must exit 0.
fn run_ok(spec: &Path, out: &Path) {
    let run = sweep()
        .args([
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

/// `sweep summarize dir`, which must succeed; its output.
fn summarize_ok(dir: &Path) -> Output {
    let out = sweep()
        .args(["summarize", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// Trains and summarizes an npy sweep of 32 features and `classes` classes (2 settings x
/// 2 seeds) in `tmp`; returns the sweep folder and the data folder.
fn narrow_sweep(tmp: &Path, classes: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = tmp.join("data");
    fs::create_dir(&data).unwrap();
    write_npy_split(&data, "train", 200, 32, classes, 1);
    write_npy_split(&data, "val", 100, 32, classes, 2);
    let spec = tmp.join("narrow.toml");
    fs::write(
        &spec,
        format!(
            "name = \"narrow\"\n[data]\nformat = \"npy\"\ndir = \"{}\"\n\
             train = [{{ x = \"X_train.npy\", y = \"y_train.npy\" }}]\n\
             val = [{{ x = \"X_val.npy\", y = \"y_val.npy\" }}]\n\
             [train]\nepochs = 3\nbatch_size = 20\nseed = [1, 2]\neta = [0.01, 0.001]\n",
            data.display()
        ),
    )
    .unwrap();
    let out = tmp.join("out");
    run_ok(&spec, &out);
    (out.join("narrow"), data)
}

#[test]
fn an_npy_sweep_of_32_features_summarizes_and_the_report_says_why_it_has_no_montage() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = narrow_sweep(tmp.path(), 10);
    let w = npy_header(&dir.join("runs/lambda=0_eta=0.01_batch=20_epochs=3_seed=1/W.npy"));
    assert_eq!(w.shape, [10, 32]);

    let summarize = summarize_ok(&dir);
    let table = String::from_utf8(summarize.stdout).unwrap();
    assert!(
        table.contains("lambda=0_eta=0.01_batch=20_epochs=3"),
        "{table}"
    );
    assert_eq!(common::Table::read(&dir.join("summary.csv")).rows.len(), 2);

    let figures = visible_names(&dir.join("figures"));
    assert!(
        figures.iter().all(|f| !f.starts_with("weights_")),
        "no montage of rows that are not images: {figures:?}"
    );
    assert_eq!(
        figures.iter().filter(|f| f.starts_with("curves_")).count(),
        2,
        "{figures:?}"
    );
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(
        html.matches("No weight montage: run").count(),
        2,
        "each setting says it has no montage"
    );
    assert!(
        html.contains("its W is 10 × 32, and a row of 32 values is not an image"),
        "and why"
    );
}

/// Three classes from the labels: W is 3 x 32, and the validation accuracy in
/// results.csv is what the saved W and b score on the standardised validation data.
#[test]
fn three_classes_train_to_a_3_row_model_whose_saved_weights_give_the_reported_accuracy() {
    use ndarray_npy::ReadNpyExt;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = narrow_sweep(tmp.path(), 3);
    summarize_ok(&dir);
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("its W is 3 × 32"), "the report names K = 3");

    let read = |p: &Path| fs::File::open(p).unwrap();
    let x_train = Array2::<f32>::read_npy(read(&data.join("X_train.npy"))).unwrap();
    let x_val = Array2::<f32>::read_npy(read(&data.join("X_val.npy"))).unwrap();
    let y_val = Array1::<i64>::read_npy(read(&data.join("y_val.npy"))).unwrap();
    // The README's preprocessing: the training split's per-feature mean and population
    // standard deviation, in f64.
    let xt = x_train.mapv(f64::from);
    let mean = xt.mean_axis(ndarray::Axis(0)).unwrap();
    let std = (&xt - &mean)
        .mapv(|v| v * v)
        .mean_axis(ndarray::Axis(0))
        .unwrap()
        .mapv(f64::sqrt);
    let xv = (x_val.mapv(f64::from) - &mean) / &std;
    let results = common::Table::read(&dir.join("results.csv"));
    assert_eq!(results.rows.len(), 4);
    for row in &results.rows {
        let id = &row[results.col("run_id")];
        let run = dir.join("runs").join(id);
        let w = Array2::<f32>::read_npy(read(&run.join("W.npy"))).unwrap();
        let b = Array1::<f32>::read_npy(read(&run.join("b.npy"))).unwrap();
        assert_eq!((w.dim(), b.len()), ((3, 32), 3), "{id}");
        let scores = xv.dot(&w.mapv(f64::from).t()) + &b.mapv(f64::from);
        let correct = scores
            .rows()
            .into_iter()
            .zip(&y_val)
            .filter(|(s, y)| {
                let top = (0..3).fold(0, |m, c| if s[c] > s[m] { c } else { m });
                top as i64 == **y
            })
            .count();
        let reported: f64 = row[results.col("val_accuracy")].parse().unwrap();
        assert_eq!(reported, correct as f64 / 100.0, "{id}");
    }
}

/// Free space the summary gets on the full disk: more than the CSV tables and the
/// validation-accuracy overlay (about 48 KB) take, less than a weight montage (about
/// 80 KB), so the disk fills part-way through the figures.
const FREE: u64 = 72 * 1024;

/// How the test makes writes fail: a full tmpfs, or, where none can be mounted (not
/// root), a file-size limit on the summarizing process (RLIMIT_FSIZE), under which a
/// write past `FREE` bytes fails with EFBIG just as a full disk fails with ENOSPC.
enum Squeeze {
    Tmpfs { mount: PathBuf, filler: PathBuf },
    FileSizeLimit,
}

impl Squeeze {
    fn new(mount: &Path) -> Squeeze {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(mount)
            .output();
        match status {
            Ok(o) if o.status.success() => Squeeze::Tmpfs {
                mount: mount.to_path_buf(),
                filler: mount.join("filler"),
            },
            other => {
                let why = match other {
                    Ok(o) => stderr(&o),
                    Err(e) => e.to_string(),
                };
                // Said past the harness's capture, so the fallback is never silent.
                let _ = writeln!(
                    std::io::stderr(),
                    "cannot mount a tmpfs ({}); failing writes with RLIMIT_FSIZE instead",
                    why.trim()
                );
                Squeeze::FileSizeLimit
            }
        }
    }

    /// Fills the disk, then frees `FREE` bytes of it.
    fn fill(&self) {
        let Squeeze::Tmpfs { filler, .. } = self else {
            return;
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(filler)
            .unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len - FREE).unwrap();
    }

    /// The message of the failed write.
    fn error_text(&self) -> &'static str {
        match self {
            Squeeze::Tmpfs { .. } => "No space left on device",
            Squeeze::FileSizeLimit => "File too large",
        }
    }

    fn summarize(&self, dir: &Path) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sweep"));
        cmd.env_remove("SWEEP_LOG")
            .env("NO_COLOR", "1")
            .args(["summarize", dir.to_str().unwrap()]);
        if let Squeeze::FileSizeLimit = self {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: between fork and exec the closure only calls the async-signal-safe
            // signal() and setrlimit(), and allocates nothing.
            unsafe {
                cmd.pre_exec(|| {
                    // Ignored, SIGXFSZ no longer kills the process: the write returns EFBIG.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let limit = libc::rlimit {
                        rlim_cur: FREE,
                        rlim_max: FREE,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.output().unwrap()
    }
}

impl Drop for Squeeze {
    fn drop(&mut self) {
        if let Squeeze::Tmpfs { mount, .. } = self {
            let _ = std::process::Command::new("umount").arg(mount).status();
        }
    }
}

/// Every visible file of `dir` by name with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    visible_names(dir)
        .into_iter()
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn hidden_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect()
}

/// A PNG's width, height and RGB pixels.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let mut reader = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let rgb = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, rgb)
}

/// A cyclic two-layer setting and a constant-rate one-layer setting in one sweep: the
/// network's curves are drawn against update steps with a fourth panel for its
/// learning rate (the lab's figures), its first-layer units (rows of W1) become a
/// montage, and the one-layer setting keeps its three panels against epochs.
#[test]
fn a_cyclic_network_is_drawn_against_update_steps_with_its_rate_and_units() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = common::write_sample_spec(
        tmp.path(),
        "net.toml",
        "net",
        "[train]\nbatch_size = 100\nseed = [1, 2]\n\
         [[grid]]\nhidden = [12]\ninit = \"xavier\"\nlambda = 0.01\nschedule = \"cyclic\"\n\
         eta_min = 1e-5\neta_max = 0.05\nstep_size = 15\ncycles = 1\neval_every = 5\n\
         [[grid]]\nepochs = 2\neta = 0.01\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out);
    let dir = out.join("net");
    summarize_ok(&dir);

    let figures = dir.join("figures");
    let net_setting = "lambda=0.01_batch=100_hidden=12_init=xavier_cyclic_max=0.05_ns=15_eval=5";
    let net_run = net_setting.replace("batch=100_", "batch=100_seed=1_");
    let linear_setting = "lambda=0_eta=0.01_batch=100_epochs=2";
    let names = visible_names(&figures);
    let curves = |setting: &str| figures.join(format!("curves_{setting}.png"));
    assert!(curves(net_setting).is_file(), "{names:?}");
    assert!(curves(linear_setting).is_file(), "{names:?}");

    // The learning-rate panel is the only thing drawn in the third palette colour.
    const RATE_GREEN: [u8; 3] = [44, 160, 44];
    let (w, h, net) = pixels(&curves(net_setting));
    assert_eq!((w, h), (2000, 500), "four panels");
    let green = net.iter().filter(|p| **p == RATE_GREEN).count();
    assert!(
        green > 500,
        "a drawn learning-rate curve: {green} green pixels"
    );
    let (w, h, linear) = pixels(&curves(linear_setting));
    assert_eq!(
        (w, h),
        (1500, 500),
        "three panels: a constant rate has no curve"
    );
    assert!(!linear.contains(&RATE_GREEN));

    // 12 units in rows of 10: two rows of tiles, wider than the 5-wide class montage.
    let (w, h, _) = pixels(&figures.join(format!("weights_{net_run}.png")));
    assert_eq!((w, h), (10 * 156 + 20, 44 + 2 * (4 * 32 + 34) + 4));
    let linear_run = linear_setting.replace("epochs=2", "epochs=2_seed=1");
    let (w, _, _) = pixels(&figures.join(format!("weights_{linear_run}.png")));
    assert_eq!(w, 5 * 156 + 20);

    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("per update step;"), "the network's caption");
    assert!(html.contains("per epoch;"), "the one-layer caption");
    assert!(html.contains("width=\"2000\" height=\"500\""));
    assert!(html.contains("Validation accuracy of every setting"));
    assert!(
        !names.iter().any(|n| n.starts_with("batchnorm_")) && !html.contains("id=\"batch-norm\""),
        "no batch-norm pairs in a sweep without batch norm: {names:?}"
    );
}

/// Every batch-normalised setting is drawn beside the setting that differs from it only
/// in batch norm (the third lab's with/without figures), and the report shows each pair
/// with both test accuracies. Two momenta share one twin; each hidden width is its own
/// pair, never mixed with the other width.
#[test]
fn batch_norm_settings_are_drawn_beside_their_twins_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = common::write_sample_spec(
        tmp.path(),
        "pairs.toml",
        "pairs",
        "[train]\nbatch_size = 50\nseed = [1, 2]\nhidden = [[8], [6]]\ninit = \"he\"\n\
         epochs = 2\neta = 0.05\n\
         [[grid]]\nbatch_norm = false\n\
         [[grid]]\nbatch_norm = true\nbn_momentum = [0.9, 0.5]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out);
    let dir = out.join("pairs");
    summarize_ok(&dir);

    let figures = dir.join("figures");
    let mut pairs: Vec<String> = visible_names(&figures)
        .into_iter()
        .filter(|n| n.starts_with("batchnorm_"))
        .collect();
    pairs.sort();
    let base = |h: u32| format!("lambda=0_eta=0.05_batch=50_epochs=2_hidden={h}_init=he");
    let mut expected: Vec<String> = [6, 8]
        .into_iter()
        .flat_map(|h| {
            [
                format!("batchnorm_{}_bn.png", base(h)),
                format!("batchnorm_{}_bn_mom=0.5.png", base(h)),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(pairs, expected);

    const WITHOUT_BLUE: [u8; 3] = [31, 119, 180];
    const WITH_ORANGE: [u8; 3] = [255, 127, 14];
    for name in &pairs {
        let (w, h, rgb) = pixels(&figures.join(name));
        assert_eq!((w, h), (1800, 560), "{name}");
        for colour in [WITHOUT_BLUE, WITH_ORANGE] {
            let n = rgb.iter().filter(|p| **p == colour).count();
            assert!(
                n > 300,
                "{name}: {n} pixels of {colour:?}, both settings drawn"
            );
        }
    }

    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    let section = html
        .split("id=\"batch-norm\"")
        .nth(1)
        .expect("a batch-norm section")
        .split("<h2")
        .next()
        .unwrap();
    assert!(
        section.contains("4 settings trained with batch norm"),
        "{section}"
    );
    for name in &pairs {
        assert!(
            section.contains(&format!("src=\"figures/{name}\"")),
            "{name}"
        );
    }
    assert_eq!(
        section.matches("Test accuracy without batch norm").count(),
        4
    );
    assert!(section.contains(&format!("<h3>{}</h3>", base(8))));
}

/// Decodes a whole PNG: a 0-byte or truncated file fails.
fn decodes(bytes: &[u8]) -> bool {
    let Ok(mut reader) = png::Decoder::new(std::io::Cursor::new(bytes)).read_info() else {
        return false;
    };
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).is_ok()
}

#[test]
fn a_disk_that_fills_while_figures_are_written_leaves_no_truncated_figure_or_report() {
    let mount = tempfile::tempdir().unwrap();
    let squeeze = Squeeze::new(mount.path());
    let spec = mount.path().join("full.toml");
    fs::write(
        &spec,
        format!(
            "name = \"full\"\n[data]\nformat = \"cifar10-bin\"\ndir = \"{}\"\n\
             train = [\"data_batch_1.bin\"]\nval = [\"data_batch_2.bin\"]\n\
             [train]\nepochs = 3\nbatch_size = 100\neta = [0.01, 0.001]\n",
            sample_dir().display()
        ),
    )
    .unwrap();
    let out = mount.path().join("out");
    run_ok(&spec, &out);
    let dir = out.join("full");
    let fig_dir = dir.join("figures");
    let good_figures = files(&fig_dir);
    let good_report = fs::read(dir.join("report.html")).unwrap();
    assert_eq!(
        good_figures.len(),
        6,
        "overlay, 2 curves, 2 montages, eta's response"
    );

    // With earlier figures in place: each is left as it was or rewritten whole (and a
    // figure drawn again is the same bytes), so the folder reads exactly as before.
    squeeze.fill();
    let failed = squeeze.summarize(&dir);
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains(squeeze.error_text()) && stderr(&failed).contains("figures"),
        "fails writing a figure: {}",
        stderr(&failed)
    );
    assert_eq!(
        files(&fig_dir),
        good_figures,
        "earlier figures are untouched"
    );
    assert_eq!(fs::read(dir.join("report.html")).unwrap(), good_report);
    assert_eq!(
        hidden_names(&fig_dir),
        Vec::<String>::new(),
        "no temporary left"
    );
    assert_eq!(hidden_names(&dir), Vec::<String>::new());

    // Without earlier figures: what is written is whole, and the report is not written
    // half (nor at all, since its figures are not all there).
    fs::remove_dir_all(&fig_dir).unwrap();
    fs::remove_file(dir.join("report.html")).unwrap();
    squeeze.fill();
    let failed = squeeze.summarize(&dir);
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    let written = files(&fig_dir);
    assert!(
        !written.is_empty() && written.len() < good_figures.len(),
        "the disk filled part-way through the figures: {:?}",
        written.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, bytes) in &written {
        assert!(
            decodes(bytes),
            "{name} is a whole PNG ({} bytes)",
            bytes.len()
        );
        let good = good_figures.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(
            bytes, &good.1,
            "{name} is the figure a full disk would have had"
        );
    }
    assert!(!dir.join("report.html").exists());
    assert_eq!(
        hidden_names(&fig_dir),
        Vec::<String>::new(),
        "no temporary left"
    );
}

/// A batch-normalised sweep through the binary: its runs save gamma, beta and the running
/// averages of each hidden layer, and its gradient check covers every array, with the
/// biases before batch norm reported as zero by construction, in the CSV and the report.
#[test]
fn a_batch_norm_sweep_saves_its_statistics_and_checks_every_array() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = common::write_sample_spec(
        tmp.path(),
        "bn.toml",
        "bn",
        "[train]\nbatch_size = 50\nseed = 1\nhidden = [8, 6]\ninit = \"he\"\nepochs = 2\n\
         eta = 0.05\nbatch_norm = [false, true]\n\
         [gradcheck]\nhidden = [8, 6]\ninit = \"he\"\nbatch_norm = true\nbatch_sizes = [20]\n\
         segments = 1\nstep = 1e-5\nlambda = [0.0, 0.01]\n",
    );
    let out = tmp.path().join("out");
    run_ok(&spec, &out);
    let dir = out.join("bn");
    let runs = visible_names(&dir.join("runs"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    let normed = runs
        .iter()
        .find(|r| r.ends_with("_bn"))
        .expect("a batch-norm run id");
    for (name, shape) in [
        ("gamma1", [8]),
        ("beta1", [8]),
        ("mean2", [6]),
        ("var2", [6]),
    ] {
        let header = npy_header(&dir.join("runs").join(normed).join(format!("{name}.npy")));
        assert_eq!(header.shape, shape, "{name}");
    }
    let plain = runs.iter().find(|r| !r.ends_with("_bn")).unwrap();
    assert!(!dir.join("runs").join(plain).join("gamma1.npy").exists());

    let check = common::Table::read(&dir.join("gradcheck.csv"));
    let params = check.column("param");
    let zero = check.column("zero_by_construction");
    let rel = check.column("max_rel_err");
    assert_eq!(
        check.rows.len(),
        2 * 2 * 2 * 10,
        "2 segments x 2 lambdas x 2 methods x 10 arrays"
    );
    for ((p, z), r) in params.iter().zip(&zero).zip(&rel) {
        let by_construction = *p == "b1" || *p == "b2";
        assert_eq!(*z, if by_construction { "true" } else { "false" }, "{p}");
        assert_eq!(
            r.parse::<f64>().unwrap().is_nan(),
            by_construction,
            "{p}: {r}"
        );
    }
    assert!(params.contains(&"gamma2") && params.contains(&"beta1"));
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("0 by construction"),
        "the report says why b1 has no error"
    );
    assert!(html.contains("<td class=\"id\">gamma1</td>"));
}

/// `sweep summarize DIR` with extra arguments, which must succeed.
fn summarize_with(dir: &Path, args: &[&str]) {
    let out = sweep()
        .arg("summarize")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The figure names in `dir/figures` that start with `prefix`.
fn figures_named(dir: &Path, prefix: &str) -> Vec<String> {
    visible_names(&dir.join("figures"))
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// How many pixels of `png` are exactly `colour`.
fn count_colour(png: &Path, colour: [u8; 3]) -> usize {
    pixels(png).2.iter().filter(|p| **p == colour).count()
}

const FINE_BLUE: [u8; 3] = [31, 119, 180];
const COARSE_ORANGE: [u8; 3] = [255, 127, 14];

/// A 12-draw search of lambda and eta on the sample (1 epoch, seeds 1 and 2), run and
/// summarized by `sweep run`; its folder.
fn search_sweep(tmp: &Path) -> PathBuf {
    let spec = common::write_sample_spec(
        tmp,
        "search.toml",
        "search",
        "[train]\nepochs = 1\nbatch_size = 100\nseed = [1, 2]\n\
         lambda = { log_uniform = [1e-4, 1e-1] }\neta = { log_uniform = [1e-3, 1e-1] }\n\
         [search]\nsamples = 12\nseed = 1\n",
    );
    let out = tmp.join("out");
    run_ok(&spec, &out);
    out.join("search")
}

/// The reports at scale: `--top 3` draws curves and montages for the 3 best
/// settings only (removing those of the 8 that `sweep run` drew), and every setting is
/// on the response figures (one per varying axis, log scale) and the heatmap, which the
/// report shows before the settings in detail.
#[test]
fn top_n_limits_per_setting_figures_and_response_figures_cover_every_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = search_sweep(tmp.path());
    assert_eq!(
        figures_named(&dir, "curves_").len(),
        8,
        "`sweep run` summarizes with the default --top 8"
    );

    summarize_with(&dir, &["--top", "3"]);
    let summary = common::Table::read(&dir.join("summary.csv"));
    assert_eq!(summary.rows.len(), 12, "summary.csv keeps every setting");
    let mut best: Vec<(usize, &str)> = summary
        .column("rank")
        .iter()
        .map(|r| r.parse().unwrap())
        .zip(summary.column("setting_id"))
        .collect();
    best.sort();
    let mut expected: Vec<String> = best[..3]
        .iter()
        .map(|(_, id)| format!("curves_{id}.png"))
        .collect();
    expected.sort();
    assert_eq!(
        figures_named(&dir, "curves_"),
        expected,
        "the 3 best by rank"
    );
    let weights = figures_named(&dir, "weights_");
    assert_eq!(weights.len(), 3 * 2, "each seed of the 3 best: {weights:?}");
    assert!(
        weights
            .iter()
            .all(|w| best[..3].iter().any(|(_, id)| w.contains(id))),
        "{weights:?}"
    );

    let figures = dir.join("figures");
    for axis in ["lambda", "eta"] {
        let png = figures.join(format!("response_{axis}.png"));
        let (w, h, _) = pixels(&png);
        assert_eq!((w, h), (900, 560), "{axis}");
        assert!(count_colour(&png, FINE_BLUE) > 100, "{axis}: dots drawn");
        assert_eq!(count_colour(&png, COARSE_ORANGE), 0, "no coarse sweep");
    }
    assert!(
        figures_named(&dir, "response_").len() == 2,
        "lambda and eta only: epochs, batch size and the rest do not vary"
    );
    let (w, h, heat) = pixels(&figures.join("heatmap_lambda_eta.png"));
    assert_eq!((w, h), (900, 720));
    // Cells run from viridis' dark blue (the worst cell) to its yellow (the best).
    for colour in [[68, 1, 84], [253, 231, 37]] {
        let n = heat.iter().filter(|p| **p == colour).count();
        assert!(n > 500, "{n} pixels of {colour:?}: a whole cell");
    }

    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    let details = html.find("<h2>Settings in detail</h2>").unwrap();
    for rel in [
        "figures/response_lambda.png",
        "figures/response_eta.png",
        "figures/heatmap_lambda_eta.png",
    ] {
        let at = html
            .find(&format!("src=\"{rel}\""))
            .unwrap_or_else(|| panic!("the report shows {rel}"));
        assert!(at < details, "{rel} comes before the per-setting sections");
    }
    assert!(
        html.contains("(log scale)"),
        "both axes were drawn log-uniformly"
    );
    assert_eq!(html.matches("<section id=\"setting-").count(), 3);
    assert!(html.contains("the other 9 are in the settings table"));
    for name in &expected {
        assert!(html.contains(&format!("src=\"figures/{name}\"")), "{name}");
    }

    summarize_with(&dir, &[]);
    assert_eq!(figures_named(&dir, "curves_").len(), 8, "the default is 8");
    summarize_with(&dir, &["--top", "20"]);
    assert_eq!(
        figures_named(&dir, "curves_").len(),
        12,
        "at most every setting"
    );
}

/// A refined sweep (`[search] refined_from`) draws the coarse sweep's settings beside its
/// own on each response figure, in another colour, and the report says so.
#[test]
fn a_refined_sweep_shows_the_coarse_settings_on_its_response_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let coarse = search_sweep(tmp.path());
    let fine_spec = common::write_sample_spec(
        tmp.path(),
        "fine.toml",
        "fine",
        &format!(
            "[train]\nepochs = 1\nbatch_size = 100\nseed = [1, 2]\neta = 0.01\n\
             lambda = {{ log_uniform = [1e-3, 1e-2] }}\n\
             [search]\nsamples = 5\nseed = 2\nrefined_from = \"{}\"\n",
            coarse.display()
        ),
    );
    let out = tmp.path().join("out");
    run_ok(&fine_spec, &out);
    let fine = out.join("fine");
    summarize_ok(&fine);

    assert_eq!(figures_named(&fine, "response_"), ["response_lambda.png"]);
    let png = fine.join("figures/response_lambda.png");
    assert_eq!(pixels(&png).0, 900);
    let (blue, orange) = (
        count_colour(&png, FINE_BLUE),
        count_colour(&png, COARSE_ORANGE),
    );
    assert!(blue > 50, "the fine settings: {blue} blue pixels");
    assert!(orange > 50, "the coarse settings: {orange} orange pixels");
    assert_eq!(
        count_colour(&coarse.join("figures/response_lambda.png"), COARSE_ORANGE),
        0,
        "the coarse sweep alone has no second series"
    );
    let html = fs::read_to_string(fine.join("report.html")).unwrap();
    assert!(
        html.contains("the coarse sweep it was refined from"),
        "the caption names both series"
    );
    assert!(
        figures_named(&fine, "heatmap_").is_empty(),
        "one axis varies"
    );

    // A coarse folder that is gone leaves the fine sweep's figure alone, not a failure.
    fs::rename(&coarse, tmp.path().join("moved")).unwrap();
    summarize_ok(&fine);
    assert_eq!(count_colour(&png, COARSE_ORANGE), 0);
    assert!(count_colour(&png, FINE_BLUE) > 50);
}
