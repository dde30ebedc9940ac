//! Figures of the summary stage: per-setting loss/cost/accuracy curves with a min..max
//! band over seeds, one chart overlaying every setting's validation accuracy, and weight
//! montages that show each class's row of W as a 32x32 RGB image.
//!
//! Charts are drawn with plotters' pure-Rust bitmap backend. Text goes through ab_glyph
//! with DejaVu Sans embedded in the binary (license in `assets/LICENSE-DejaVu`), so no
//! system font or fontconfig is needed at build or run time.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ndarray::{Array2, ArrayView1};
use plotters::prelude::*;
use plotters::style::FontStyle;
use thiserror::Error;

/// CIFAR-10 class names, in label order.
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Side of a CIFAR-10 image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Length of one row of W: three 32x32 planes (R, G, B), each row-major.
pub const IMAGE_LEN: usize = 3 * IMAGE_SIDE * IMAGE_SIDE;
/// Each weight pixel becomes a SCALE x SCALE block so a 32x32 tile is visible.
const SCALE: usize = 4;

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT: &str = "sans-serif";

/// Tableau 10, a palette designed so adjacent lines stay distinguishable.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const TRAIN: RGBColor = PALETTE[0];
const VAL: RGBColor = PALETTE[1];

/// Everything that can stop a figure from being drawn.
#[derive(Debug, Error)]
pub enum FigureError {
    #[error("the embedded DejaVu Sans font was rejected by ab_glyph; the binary is corrupt, rebuild it")]
    Font,
    #[error("cannot draw {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
}

/// Registers the embedded font under the family name that plotters uses by default.
/// Safe to call many times and from many threads; only the first call does the work.
pub fn register_font() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok { Ok(()) } else { Err(FigureError::Font) }
}

/// One quantity over epochs, aggregated over a setting's runs: the mean and the min..max
/// band, for every epoch at which at least one run has a finite value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Band {
    pub epochs: Vec<u32>,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl Band {
    /// Aggregates per-run `(epoch, value)` series. Non-finite values (a run whose cost
    /// blew up) are left out, so one bad epoch does not hide the others.
    pub fn from_runs(runs: &[&[(u32, f64)]]) -> Band {
        let mut acc: BTreeMap<u32, (f64, usize, f64, f64)> = BTreeMap::new();
        for run in runs {
            for &(epoch, v) in *run {
                if !v.is_finite() {
                    continue;
                }
                let e = acc
                    .entry(epoch)
                    .or_insert((0.0, 0, f64::INFINITY, f64::NEG_INFINITY));
                e.0 += v;
                e.1 += 1;
                e.2 = e.2.min(v);
                e.3 = e.3.max(v);
            }
        }
        let mut band = Band::default();
        for (epoch, (sum, n, lo, hi)) in acc {
            band.epochs.push(epoch);
            band.mean.push(sum / n as f64);
            band.min.push(lo);
            band.max.push(hi);
        }
        band
    }

    fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    fn scaled(&self, k: f64) -> Band {
        let s = |v: &Vec<f64>| v.iter().map(|x| x * k).collect();
        Band {
            epochs: self.epochs.clone(),
            mean: s(&self.mean),
            min: s(&self.min),
            max: s(&self.max),
        }
    }
}

/// The curves of one setting, train and val in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingCurves {
    pub title: String,
    pub n_runs: usize,
    pub loss: [Band; 2],
    pub cost: [Band; 2],
    pub accuracy: [Band; 2],
}

/// One line of the validation-accuracy overlay; lines come best first.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayLine {
    pub label: String,
    pub band: Band,
}

type DrawResult = Result<(), Box<dyn StdError>>;

fn draw_failed(path: &Path) -> impl Fn(Box<dyn StdError>) -> FigureError + '_ {
    move |e| FigureError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The x range covering every band's epochs, at least one epoch wide.
fn epoch_range<'a>(bands: impl IntoIterator<Item = &'a Band>) -> Range<f64> {
    let last = bands
        .into_iter()
        .filter_map(|b| b.epochs.last().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    0.0..f64::from(last)
}

/// A y range covering every band's min..max with 5% padding on each side.
fn value_range<'a>(bands: impl IntoIterator<Item = &'a Band>) -> Range<f64> {
    let (lo, hi) = bands
        .into_iter()
        .flat_map(|b| b.min.iter().chain(&b.max))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1.0)
    };
    (lo - pad)..(hi + pad)
}

/// Draws one panel: for each band a shaded min..max area and the mean as a line.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    bands: &[(&str, RGBColor, &Band)],
    legend_at: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let x = epoch_range(bands.iter().map(|b| b.2));
    let y = value_range(bands.iter().map(|b| b.2));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()?;
    for &(label, color, band) in bands {
        if band.is_empty() {
            continue;
        }
        let upper = band.epochs.iter().zip(&band.max).map(|(e, v)| (f64::from(*e), *v));
        let lower = band.epochs.iter().zip(&band.min).rev().map(|(e, v)| (f64::from(*e), *v));
        chart.draw_series(std::iter::once(Polygon::new(
            upper.chain(lower).collect::<Vec<_>>(),
            color.mix(0.18).filled(),
        )))?;
        chart
            .draw_series(LineSeries::new(
                band.epochs.iter().zip(&band.mean).map(|(e, v)| (f64::from(*e), *v)),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()?;
    Ok(())
}

/// Draws loss, cost and accuracy (train and val) of one setting side by side.
pub fn draw_setting_curves(path: &Path, curves: &SettingCurves) -> Result<(), FigureError> {
    register_font()?;
    let draw = || -> DrawResult {
        let root = BitMapBackend::new(path, (1500, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let seeds = if curves.n_runs == 1 {
            "1 seed".to_string()
        } else {
            format!("mean of {} seeds, shaded: min..max", curves.n_runs)
        };
        let body = root.titled(&format!("{}  ({seeds})", curves.title), (FONT, 20))?;
        let panels = body.split_evenly((1, 3));
        let acc = [curves.accuracy[0].scaled(100.0), curves.accuracy[1].scaled(100.0)];
        draw_panel(
            &panels[0],
            "Loss (cross-entropy)",
            "loss",
            &[("train", TRAIN, &curves.loss[0]), ("val", VAL, &curves.loss[1])],
            SeriesLabelPosition::UpperRight,
        )?;
        draw_panel(
            &panels[1],
            "Cost (loss + λ‖W‖²)",
            "cost",
            &[("train", TRAIN, &curves.cost[0]), ("val", VAL, &curves.cost[1])],
            SeriesLabelPosition::UpperRight,
        )?;
        draw_panel(
            &panels[2],
            "Accuracy",
            "accuracy (%)",
            &[("train", TRAIN, &acc[0]), ("val", VAL, &acc[1])],
            SeriesLabelPosition::LowerRight,
        )?;
        root.present()?;
        Ok(())
    };
    draw().map_err(draw_failed(path))
}

/// How many overlay lines get a colour and a legend entry; the rest are drawn in grey so
/// a large sweep still shows its spread without an unreadable legend.
pub const OVERLAY_COLOURED: usize = 10;

/// Draws every setting's mean validation accuracy in one chart. `lines` come best first;
/// the first `OVERLAY_COLOURED` are coloured and listed in a legend beside the chart.
pub fn draw_val_accuracy_overlay(
    path: &Path,
    sweep_name: &str,
    lines: &[OverlayLine],
) -> Result<(), FigureError> {
    register_font()?;
    let draw = || -> DrawResult {
        let root = BitMapBackend::new(path, (1300, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = if lines.len() > OVERLAY_COLOURED {
            format!(
                "Validation accuracy of all {} settings ({sweep_name}); best {OVERLAY_COLOURED} in colour",
                lines.len()
            )
        } else {
            format!("Validation accuracy of every setting ({sweep_name}), mean over seeds")
        };
        let body = root.titled(&title, (FONT, 20))?;
        let (plot_area, legend_area) = body.split_horizontally(830);
        let scaled: Vec<Band> = lines.iter().map(|l| l.band.scaled(100.0)).collect();
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(epoch_range(&scaled), value_range(scaled.iter().map(mean_only).collect::<Vec<_>>().iter()))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("validation accuracy (%)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()?;
        // Grey lines first so the coloured ones are drawn on top of them.
        for band in scaled.iter().skip(OVERLAY_COLOURED) {
            chart.draw_series(LineSeries::new(
                band.epochs.iter().zip(&band.mean).map(|(e, v)| (f64::from(*e), *v)),
                RGBColor(190, 190, 190).stroke_width(1),
            ))?;
        }
        for (i, band) in scaled.iter().enumerate().take(OVERLAY_COLOURED).rev() {
            chart.draw_series(LineSeries::new(
                band.epochs.iter().zip(&band.mean).map(|(e, v)| (f64::from(*e), *v)),
                PALETTE[i].stroke_width(2),
            ))?;
        }
        let legend = legend_area.margin(30, 10, 10, 10);
        for (i, line) in lines.iter().enumerate().take(OVERLAY_COLOURED) {
            let y = 24 * i as i32 + 10;
            legend.draw(&PathElement::new(
                vec![(0, y), (26, y)],
                PALETTE[i].stroke_width(3),
            ))?;
            legend.draw(&Text::new(
                line.label.clone(),
                (34, y - 8),
                (FONT, 14).into_font().color(&BLACK),
            ))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(draw_failed(path))
}

fn mean_only(b: &Band) -> Band {
    Band {
        epochs: b.epochs.clone(),
        mean: b.mean.clone(),
        min: b.mean.clone(),
        max: b.mean.clone(),
    }
}

/// One class's weights as 32x32 RGB pixels, row-major, scaled to [0, 255] by
/// (w - min) / (max - min) over that class's 3072 values, as the lab's montage does.
/// A constant row becomes mid-grey; non-finite weights become black.
pub fn class_image(row: ArrayView1<f64>) -> Vec<[u8; 3]> {
    assert_eq!(row.len(), IMAGE_LEN, "a row of W has 3 x 32 x 32 values");
    let (lo, hi) = row
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let to_byte = |v: f64| -> u8 {
        if !v.is_finite() {
            0
        } else if hi > lo {
            ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
        } else {
            128
        }
    };
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    (0..plane)
        .map(|p| [to_byte(row[p]), to_byte(row[plane + p]), to_byte(row[2 * plane + p])])
        .collect()
}

/// Draws the 10 rows of W as labelled 32x32 RGB tiles (2 rows of 5), upscaled
/// `SCALE` times with nearest-neighbour blocks.
pub fn draw_weight_montage(path: &Path, title: &str, w: &Array2<f64>) -> Result<(), FigureError> {
    register_font()?;
    const COLS: usize = 5;
    const CELL_W: usize = 150;
    const CELL_H: usize = IMAGE_SIDE * SCALE + 34;
    const TOP: usize = 44;
    const LEFT: usize = 10;
    let tile = IMAGE_SIDE * SCALE;
    let rows = CLASS_NAMES.len().div_ceil(COLS);
    let size = ((COLS * CELL_W + 2 * LEFT) as u32, (TOP + rows * CELL_H + 6) as u32);
    let draw = || -> DrawResult {
        let root = BitMapBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            format!("W rows as images: {title}"),
            (LEFT as i32, 12),
            (FONT, 16).into_font().color(&BLACK),
        ))?;
        for (k, name) in CLASS_NAMES.iter().enumerate() {
            let x0 = LEFT + (k % COLS) * CELL_W + (CELL_W - tile) / 2;
            let y0 = TOP + (k / COLS) * CELL_H;
            let pixels = class_image(w.row(k));
            for (p, rgb) in pixels.iter().enumerate() {
                let (r, c) = (p / IMAGE_SIDE, p % IMAGE_SIDE);
                let (x, y) = ((x0 + c * SCALE) as i32, (y0 + r * SCALE) as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + SCALE as i32 - 1, y + SCALE as i32 - 1)],
                    RGBColor(rgb[0], rgb[1], rgb[2]).filled(),
                ))?;
            }
            let style = (FONT, 15)
                .into_font()
                .color(&BLACK)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ));
            root.draw(&Text::new(
                name.to_string(),
                ((x0 + tile / 2) as i32, (y0 + tile + 6) as i32),
                style,
            ))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(draw_failed(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    #[test]
    fn band_is_mean_min_max_per_epoch() {
        let a = [(0, 1.0), (1, 2.0), (2, 5.0)];
        let b = [(0, 3.0), (1, 4.0)];
        let band = Band::from_runs(&[&a, &b]);
        assert_eq!(band.epochs, vec![0, 1, 2]);
        assert_eq!(band.mean, vec![2.0, 3.0, 5.0]);
        assert_eq!(band.min, vec![1.0, 2.0, 5.0]);
        assert_eq!(band.max, vec![3.0, 4.0, 5.0]);
    }

    #[test]
    fn band_skips_non_finite_values() {
        let a = [(0, 1.0), (1, f64::INFINITY)];
        let b = [(0, 3.0), (1, f64::NAN)];
        let band = Band::from_runs(&[&a, &b]);
        assert_eq!(band.epochs, vec![0]);
        assert_eq!(band.mean, vec![2.0]);
    }

    #[test]
    fn class_image_scales_per_class_and_reads_rgb_planes() {
        let plane = IMAGE_SIDE * IMAGE_SIDE;
        let mut row = Array1::<f64>::from_elem(IMAGE_LEN, 0.5);
        row[3] = -2.0; // R of pixel 3 (row 0, column 3) is the minimum.
        row[plane + 33] = 6.0; // G of pixel 33 (row 1, column 1) is the maximum.
        row[2 * plane + 1023] = 2.0; // B of the last pixel is (2 - -2) / 8 of the range.
        let img = class_image(row.view());
        assert_eq!(img.len(), plane);
        assert_eq!(img[3][0], 0);
        assert_eq!(img[33][1], 255);
        assert_eq!(img[1023][2], 128); // 0.5 * 255 = 127.5 rounds to 128.
        // 0.5 sits at (0.5 + 2) / 8 = 0.3125 of the range: 79.6875 rounds to 80.
        assert_eq!(img[0], [80, 80, 80]);
    }

    #[test]
    fn constant_row_is_grey_not_nan() {
        let row = Array1::<f64>::from_elem(IMAGE_LEN, 3.0);
        assert!(class_image(row.view()).iter().all(|p| *p == [128, 128, 128]));
    }

    #[test]
    fn value_range_pads_and_survives_degenerate_input() {
        let flat = Band {
            epochs: vec![0],
            mean: vec![2.0],
            min: vec![2.0],
            max: vec![2.0],
        };
        let r = value_range([&flat]);
        assert!(r.start < 2.0 && r.end > 2.0);
        assert_eq!(value_range(std::iter::empty()), 0.0..1.0);
    }
}
