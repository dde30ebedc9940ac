//! Figures of the summary stage: per-setting loss/cost/accuracy curves with a min..max
//! band over seeds (against epochs or update steps, with the learning-rate curve when
//! it moves), one chart overlaying every setting's validation accuracy, and weight
//! montages that show each row of the first weight matrix (W's classes, W1's hidden
//! units) as a 32x32 RGB image, and (in `response`) validation accuracy against each
//! setting axis and heatmaps over two axes. It draws what it is
//! given and knows nothing of the summary; each PNG is encoded in memory and written
//! atomically, so a full disk never leaves a 0-byte or truncated figure.
//!
//! May import `output::atomic` only.
//!
//! Charts are drawn with plotters' pure-Rust bitmap backend. Text goes through ab_glyph
//! with DejaVu Sans embedded in the binary (license in `assets/LICENSE-DejaVu`), so no
//! system font or fontconfig is needed at build or run time.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, ScaleFont};
use ndarray::{Array2, ArrayView1};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters_backend::DrawingErrorKind;
use thiserror::Error;

use crate::output::atomic::write_atomic;

mod response;
pub use response::{
    Heatmap, HeatmapAxis, Response, ResponsePoint, ResponseSeries, draw_heatmap, draw_response,
    heatmap_size, response_size,
};

/// Side of a CIFAR-10 image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Length of one row of W: three 32x32 planes (R, G, B), each row-major.
pub const IMAGE_LEN: usize = 3 * IMAGE_SIDE * IMAGE_SIDE;
/// Each weight pixel becomes a SCALE x SCALE block so a 32x32 tile is visible.
const SCALE: usize = 4;
/// zlib effort for the line charts: `Default` makes them less than half the size of
/// `Fast` (they are mostly flat colour). Measured on a synthetic 1,000-run sweep (200
/// charts, 500 montages): 52 MB of figures and about 4 s of CPU with these two settings,
/// against 100 MB with `Fast` for both and 6 s of CPU with `Default` for both.
const CHART_COMPRESSION: png::Compression = png::Compression::Default;
/// zlib effort for the weight montages: they are noisy and barely compress, so `Fast`
/// costs little disk and saves about 2 s of CPU per 500 montages.
const MONTAGE_COMPRESSION: png::Compression = png::Compression::Fast;

static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
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
    #[error(
        "the embedded DejaVu Sans font was rejected by ab_glyph; the binary is corrupt, rebuild it"
    )]
    Font,
    #[error("cannot draw {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Registers the embedded font under the family name that plotters uses by default.
/// Safe to call many times and from many threads; only the first call does the work.
pub fn register_font() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok { Ok(()) } else { Err(FigureError::Font) }
}

/// How a `Label` sits relative to its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    /// The position is the top-left corner of the text.
    TopLeft,
    /// The position is the middle of the text's top edge.
    TopCenter,
}

/// Text drawn with ab_glyph directly. plotters 0.3.7's ab_glyph path places each glyph at
/// the pen position without its left side bearing, which leaves visible gaps after
/// glyphs such as `1`; this element uses ab_glyph's own positioning, so titles, captions,
/// legends and class names are evenly spaced. Tick labels and axis descriptions are
/// still drawn by plotters.
struct Label {
    text: String,
    pos: (i32, i32),
    size: f32,
    color: RGBColor,
    align: Align,
}

impl Label {
    fn new(text: impl Into<String>, pos: (i32, i32), size: f32) -> Label {
        Label {
            text: text.into(),
            pos,
            size,
            color: BLACK,
            align: Align::TopLeft,
        }
    }

    fn centered(mut self) -> Label {
        self.align = Align::TopCenter;
        self
    }

    /// The advance width of the text in pixels.
    fn width(&self) -> f32 {
        let font = font().as_scaled(self.size);
        let mut width = 0.0;
        let mut prev: Option<GlyphId> = None;
        for c in self.text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            prev = Some(id);
        }
        width
    }
}

fn font() -> &'static FontRef<'static> {
    static FONT_REF: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT_REF.get_or_init(|| {
        FontRef::try_from_slice(DEJAVU_SANS)
            .expect("invariant broken: the embedded DejaVu Sans parses (checked by a unit test)")
    })
}

impl<'a> PointCollection<'a, (i32, i32)> for &'a Label {
    type Point = &'a (i32, i32);
    type IntoIter = std::iter::Once<&'a (i32, i32)>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.pos)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Label {
    fn draw<I: Iterator<Item = (i32, i32)>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _parent_dim: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = pos.next() else {
            return Ok(());
        };
        let font = font().as_scaled(self.size);
        let left = match self.align {
            Align::TopLeft => x as f32,
            Align::TopCenter => x as f32 - self.width() / 2.0,
        };
        let baseline = y as f32 + font.ascent();
        let mut pen = left;
        let mut prev: Option<GlyphId> = None;
        let mut result = Ok(());
        for c in self.text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(self.size, ab_glyph::point(pen, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    if result.is_ok() && coverage > 0.0 {
                        let px = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                        let color = self.color.mix(f64::from(coverage.min(1.0)));
                        result = backend.draw_pixel(px, color.to_backend_color());
                    }
                });
                std::mem::replace(&mut result, Ok(()))?;
            }
            pen += font.h_advance(id);
            prev = Some(id);
        }
        Ok(())
    }
}

/// What a chart's x axis counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XAxis {
    /// Whole epochs trained (the first lab's figures).
    #[default]
    Epoch,
    /// Update steps (the second lab's figures: cyclical rates, `eval_every`).
    Update,
}

impl XAxis {
    pub fn label(self) -> &'static str {
        match self {
            XAxis::Epoch => "epoch",
            XAxis::Update => "update step",
        }
    }
}

/// One quantity over epochs or update steps, aggregated over a setting's runs: the mean
/// and the min..max band, at every x at which at least one run has a finite value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Band {
    pub x: Vec<u32>,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl Band {
    /// Aggregates per-run `(x, value)` series. Non-finite values (a run whose cost
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
        for (x, (sum, n, lo, hi)) in acc {
            band.x.push(x);
            band.mean.push(sum / n as f64);
            band.min.push(lo);
            band.max.push(hi);
        }
        band
    }

    fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    fn scaled(&self, k: f64) -> Band {
        let s = |v: &Vec<f64>| v.iter().map(|x| x * k).collect();
        Band {
            x: self.x.clone(),
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
    pub x_axis: XAxis,
    /// The loss function's name for the loss panel's caption ("cross-entropy", "hinge").
    pub loss_name: String,
    pub loss: [Band; 2],
    pub cost: [Band; 2],
    pub accuracy: [Band; 2],
    /// The learning-rate curve, drawn as a fourth panel when the rate moves.
    pub learning_rate: Option<Band>,
}

impl SettingCurves {
    /// The figure's size in pixels: three panels, or four with a learning-rate curve.
    pub fn size(&self) -> (u32, u32) {
        (500 * self.panels() as u32, 500)
    }

    fn panels(&self) -> usize {
        3 + usize::from(self.learning_rate.is_some())
    }
}

/// One line of the validation-accuracy overlay or the halving figure; lines come best
/// first.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayLine {
    pub label: String,
    pub band: Band,
    /// Successive halving stopped it (drawn grey, crossed where it ends).
    pub stopped: bool,
}

type DrawResult = Result<(), Box<dyn StdError>>;

fn draw_failed(path: &Path) -> impl Fn(Box<dyn StdError>) -> FigureError + '_ {
    move |e| FigureError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Draws into an RGB buffer with `draw`, encodes it as a PNG in memory and writes that
/// atomically to `path`. Encoding ourselves with the `png` crate with adaptive filtering
/// makes the charts about a quarter the size that plotters' own encoder wrote (and drops
/// the `image` crate); see `CHART_COMPRESSION`.
fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    compression: png::Compression,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> Result<(), FigureError> {
    let failed = draw_failed(path);
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root).map_err(&failed)?;
        root.present().map_err(|e| failed(e.into()))?;
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(compression);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header().map_err(|e| failed(e.into()))?;
        writer
            .write_image_data(&buf)
            .map_err(|e| failed(e.into()))?;
        writer.finish().map_err(|e| failed(e.into()))?;
    }
    write_atomic(path, &bytes).map_err(|source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The x range covering every band's x values, at least one wide.
fn x_range<'a>(bands: impl IntoIterator<Item = &'a Band>) -> Range<f64> {
    let last = bands
        .into_iter()
        .filter_map(|b| b.x.last().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    0.0..f64::from(last)
}

/// A y range covering every band's min..max with 5% padding on each side.
fn value_range<'a>(bands: impl IntoIterator<Item = &'a Band>) -> Range<f64> {
    padded(
        bands
            .into_iter()
            .flat_map(|b| b.min.iter().chain(&b.max))
            .copied(),
    )
}

/// A range covering `values` (the finite ones) with 5% padding on each side, at least
/// some width; 0..1 when none is finite.
fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
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

/// A y tick's text: plain decimals (at most 4, trailing zeros dropped) for everyday
/// magnitudes, scientific notation for huge or tiny ones (a cost that blew up to 1e15,
/// a learning rate of 1e-5), so a label never runs off the chart.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_string()
}

/// Draws a legend box with one entry per (label, colour); each entry shows the line
/// over a shaded swatch, like the mean line over its band. `corner` is the box's
/// top-right corner in root pixel coordinates.
fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor)],
    (right, top): (i32, i32),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    const ROW: i32 = 24;
    let labels: Vec<Label> = entries
        .iter()
        .map(|(t, _)| Label::new(*t, (0, 0), 16.0))
        .collect();
    let text_w = labels
        .iter()
        .map(|l| l.width().ceil() as i32)
        .max()
        .unwrap_or(0);
    let (w, h) = (text_w + 58, ROW * entries.len() as i32 + 12);
    let (x0, y0) = (right - w, top);
    root.draw(&Rectangle::new(
        [(x0, y0), (right, y0 + h)],
        WHITE.mix(0.9).filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(x0, y0), (right, y0 + h)],
        RGBColor(170, 170, 170),
    ))?;
    for (i, (mut label, (_, color))) in labels.into_iter().zip(entries).enumerate() {
        let y = y0 + 6 + ROW * i as i32 + ROW / 2;
        root.draw(&Rectangle::new(
            [(x0 + 10, y - 7), (x0 + 38, y + 7)],
            color.mix(0.18).filled(),
        ))?;
        root.draw(&PathElement::new(
            vec![(x0 + 10, y), (x0 + 38, y)],
            color.stroke_width(3),
        ))?;
        label.pos = (x0 + 46, y - 10);
        root.draw(&label)?;
    }
    Ok(())
}

/// Draws one panel: for each band a shaded min..max area and the mean as a line.
fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    (x_axis, y_desc): (XAxis, &str),
    bands: &[(&str, RGBColor, &Band)],
    integer_y: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (xr, yr) = area.get_pixel_range();
    root.draw(&Label::new(caption, ((xr.start + xr.end) / 2, yr.start + 2), 21.0).centered())?;
    let x = x_range(bands.iter().map(|b| b.2));
    let y = value_range(bands.iter().map(|b| b.2));
    let mut chart = ChartBuilder::on(&area.margin(34, 8, 8, 14))
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    let int_fmt = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_axis.label())
        .x_label_formatter(&int_fmt)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(214, 214, 214));
    let value_fmt = |v: &f64| tick_label(*v);
    if integer_y {
        mesh.y_label_formatter(&int_fmt);
    } else {
        mesh.y_label_formatter(&value_fmt);
    }
    mesh.draw()?;
    for &(_, color, band) in bands {
        if band.is_empty() {
            continue;
        }
        let upper = band
            .x
            .iter()
            .zip(&band.max)
            .map(|(e, v)| (f64::from(*e), *v));
        let lower = band
            .x
            .iter()
            .zip(&band.min)
            .rev()
            .map(|(e, v)| (f64::from(*e), *v));
        chart.draw_series(std::iter::once(Polygon::new(
            upper.chain(lower).collect::<Vec<_>>(),
            color.mix(0.18).filled(),
        )))?;
        chart.draw_series(LineSeries::new(
            band.x
                .iter()
                .zip(&band.mean)
                .map(|(e, v)| (f64::from(*e), *v)),
            color.stroke_width(2),
        ))?;
    }
    let (px, py) = chart.plotting_area().get_pixel_range();
    let entries: Vec<(&str, RGBColor)> = bands.iter().map(|b| (b.0, b.1)).collect();
    let legend_w = entries
        .iter()
        .map(|(t, _)| Label::new(*t, (0, 0), 16.0).width().ceil() as i32)
        .max()
        .unwrap_or(0)
        + 58;
    let legend_h = 24 * entries.len() as i32 + 12;
    // Put the legend in the corner that hides the fewest curve points; the curves are
    // sampled between records too, so a line crossing a corner counts even with few epochs.
    let mut points = Vec::new();
    for &(_, _, band) in bands {
        for series in [&band.mean, &band.min, &band.max] {
            for (i, w) in band.x.windows(2).enumerate() {
                for k in 0..=8 {
                    let t = f64::from(k) / 8.0;
                    let x = f64::from(w[0]) + t * f64::from(w[1] - w[0]);
                    let y = series[i] + t * (series[i + 1] - series[i]);
                    points.push(chart.backend_coord(&(x, y)));
                }
            }
        }
    }
    let (right, left) = (px.end - 10, px.start + 10 + legend_w);
    let (top, bottom) = (py.start + 10, py.end - 10 - legend_h);
    let corner = [(right, top), (right, bottom), (left, top), (left, bottom)]
        .into_iter()
        .min_by_key(|&(r, t)| {
            points
                .iter()
                .filter(|&&(x, y)| {
                    x >= r - legend_w - 6 && x <= r + 6 && y >= t - 6 && y <= t + legend_h + 6
                })
                .count()
        })
        .expect("invariant broken: four candidate corners");
    draw_legend(root, &entries, corner)
}

/// Draws loss, cost and accuracy (train and val) of one setting side by side, and the
/// learning-rate curve beside them when there is one.
pub fn draw_setting_curves(path: &Path, curves: &SettingCurves) -> Result<(), FigureError> {
    register_font()?;
    let size = curves.size();
    render_png(path, size, CHART_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        let seeds = if curves.n_runs == 1 {
            "1 seed".to_string()
        } else {
            format!(
                "mean of {} seeds; shaded: min to max over seeds",
                curves.n_runs
            )
        };
        let middle = size.0 as i32 / 2;
        root.draw(
            &Label::new(format!("{}  ({seeds})", curves.title), (middle, 10), 22.0).centered(),
        )?;
        let panels = root.margin(46, 0, 0, 0).split_evenly((1, curves.panels()));
        let acc = [
            curves.accuracy[0].scaled(100.0),
            curves.accuracy[1].scaled(100.0),
        ];
        let x = curves.x_axis;
        draw_panel(
            root,
            &panels[0],
            &format!("Loss ({})", curves.loss_name),
            (x, "loss"),
            &[
                ("train", TRAIN, &curves.loss[0]),
                ("val", VAL, &curves.loss[1]),
            ],
            false,
        )?;
        draw_panel(
            root,
            &panels[1],
            "Cost (loss + λ‖W‖²)",
            (x, "cost"),
            &[
                ("train", TRAIN, &curves.cost[0]),
                ("val", VAL, &curves.cost[1]),
            ],
            false,
        )?;
        draw_panel(
            root,
            &panels[2],
            "Accuracy",
            (x, "accuracy (%)"),
            &[("train", TRAIN, &acc[0]), ("val", VAL, &acc[1])],
            true,
        )?;
        if let Some(lr) = &curves.learning_rate {
            draw_panel(
                root,
                &panels[3],
                "Learning rate",
                (x, "η"),
                &[("learning rate", PALETTE[2], lr)],
                false,
            )?;
        }
        Ok(())
    })
}

/// Tableau 20's light companions of blue and orange: the train curves of a pair.
const LIGHT_BLUE: RGBColor = RGBColor(174, 199, 232);
const LIGHT_ORANGE: RGBColor = RGBColor(255, 187, 120);

/// Draws two settings that differ in one switch in one figure: loss, cost and accuracy
/// panels, each with both settings' train and validation curves on the same axes (the
/// first setting in blues, the second in oranges; train light, validation dark).
/// `sides` are (legend name, curves); both are drawn against the first side's x axis.
pub fn draw_pair_curves(
    path: &Path,
    title: &str,
    sides: [(&str, &SettingCurves); 2],
) -> Result<(), FigureError> {
    register_font()?;
    let size = pair_size();
    let [(a, ca), (b, cb)] = sides;
    let names = [
        format!("train, {a}"),
        format!("val, {a}"),
        format!("train, {b}"),
        format!("val, {b}"),
    ];
    let colours = [LIGHT_BLUE, PALETTE[0], LIGHT_ORANGE, PALETTE[1]];
    let four = |of: fn(&SettingCurves) -> &[Band; 2], k: f64| -> [Band; 4] {
        let (x, y) = (of(ca), of(cb));
        [&x[0], &x[1], &y[0], &y[1]].map(|band| band.scaled(k))
    };
    let panels_of: [(String, &str, [Band; 4], bool); 3] = [
        (
            format!("Loss ({})", ca.loss_name),
            "loss",
            four(|c| &c.loss, 1.0),
            false,
        ),
        (
            "Cost (loss + λ‖W‖²)".into(),
            "cost",
            four(|c| &c.cost, 1.0),
            false,
        ),
        (
            "Accuracy".into(),
            "accuracy (%)",
            four(|c| &c.accuracy, 100.0),
            true,
        ),
    ];
    render_png(path, size, CHART_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        let seeds = if ca.n_runs == cb.n_runs {
            format!("{} seeds each; line: mean, shaded: min to max", ca.n_runs)
        } else {
            format!(
                "{} and {} seeds; line: mean, shaded: min to max",
                ca.n_runs, cb.n_runs
            )
        };
        root.draw(
            &Label::new(format!("{title}  ({seeds})"), (size.0 as i32 / 2, 10), 22.0).centered(),
        )?;
        let areas = root.margin(46, 0, 0, 0).split_evenly((1, 3));
        for (area, (caption, y_desc, bands, integer_y)) in areas.iter().zip(&panels_of) {
            let series: Vec<(&str, RGBColor, &Band)> = names
                .iter()
                .zip(colours)
                .zip(bands)
                .map(|((n, c), b)| (n.as_str(), c, b))
                .collect();
            draw_panel(
                root,
                area,
                caption,
                (ca.x_axis, y_desc),
                &series,
                *integer_y,
            )?;
        }
        Ok(())
    })
}

/// The size in pixels of a [`draw_pair_curves`] figure: three panels, wider than a
/// setting's so that four curves and their legend fit.
pub fn pair_size() -> (u32, u32) {
    (1800, 560)
}

/// How many overlay lines get a colour and a legend entry; the rest are drawn in grey so
/// a large sweep still shows its spread without an unreadable legend.
pub const OVERLAY_COLOURED: usize = 10;

/// Draws every setting's mean validation accuracy in one chart. `lines` come best first;
/// the first `OVERLAY_COLOURED` are coloured and listed in a legend beside the chart.
pub fn draw_val_accuracy_overlay(
    path: &Path,
    sweep_name: &str,
    x_axis: XAxis,
    lines: &[OverlayLine],
) -> Result<(), FigureError> {
    let title = format!(
        "Validation accuracy per {}, mean over seeds: {sweep_name}",
        x_axis.label()
    );
    draw_accuracy_lines(path, &title, "Settings by rank (best first)", x_axis, lines)
}

/// Draws a successive-halving race: every candidate's mean validation accuracy, the
/// ones that trained to the end coloured (best first, as `lines` come) and listed, the
/// stopped ones grey with a cross where they stopped.
pub fn draw_halving(
    path: &Path,
    sweep_name: &str,
    x_axis: XAxis,
    lines: &[OverlayLine],
) -> Result<(), FigureError> {
    let title = format!(
        "Successive halving: validation accuracy per {}, mean over seeds: {sweep_name}",
        x_axis.label()
    );
    draw_accuracy_lines(
        path,
        &title,
        "Trained to the end (best first)",
        x_axis,
        lines,
    )
}

/// The chart of [`draw_val_accuracy_overlay`] and [`draw_halving`]: the first
/// `OVERLAY_COLOURED` lines not stopped are coloured and listed under `legend_title`,
/// the other such lines light grey, and stopped lines darker grey with a cross at
/// their end.
fn draw_accuracy_lines(
    path: &Path,
    title: &str,
    legend_title: &str,
    x_axis: XAxis,
    lines: &[OverlayLine],
) -> Result<(), FigureError> {
    register_font()?;
    const WIDTH: u32 = 1300;
    const PLOT_W: u32 = 820;
    render_png(path, (WIDTH, 620), CHART_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        root.draw(&Label::new(title, (WIDTH as i32 / 2, 10), 22.0).centered())?;
        let (plot_area, _) = root.margin(46, 0, 0, 0).split_horizontally(PLOT_W);
        let scaled: Vec<Band> = lines
            .iter()
            .map(|l| mean_only(&l.band.scaled(100.0)))
            .collect();
        let mut chart = ChartBuilder::on(&plot_area.margin(8, 8, 8, 14))
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range(&scaled), value_range(&scaled))?;
        chart
            .configure_mesh()
            .x_desc(x_axis.label())
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("validation accuracy (%)")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(214, 214, 214))
            .draw()?;
        let points = |b: &Band| -> Vec<(f64, f64)> {
            b.x.iter()
                .zip(&b.mean)
                .map(|(e, v)| (f64::from(*e), *v))
                .collect()
        };
        let (grey, stopped_grey) = (RGBColor(190, 190, 190), RGBColor(170, 170, 170));
        let finished: Vec<(&OverlayLine, &Band)> = lines
            .iter()
            .zip(&scaled)
            .filter(|(l, _)| !l.stopped)
            .collect();
        // Grey lines first so the coloured ones are drawn on top of them.
        for (_, band) in finished.iter().skip(OVERLAY_COLOURED) {
            chart.draw_series(LineSeries::new(points(band), grey.stroke_width(1)))?;
        }
        for (_, band) in lines.iter().zip(&scaled).filter(|(l, _)| l.stopped) {
            let pts = points(band);
            if let Some(&end) = pts.last() {
                chart.draw_series(std::iter::once(Cross::new(
                    end,
                    5,
                    stopped_grey.stroke_width(2),
                )))?;
            }
            chart.draw_series(LineSeries::new(pts, stopped_grey.stroke_width(1)))?;
        }
        for (i, (_, band)) in finished.iter().enumerate().take(OVERLAY_COLOURED).rev() {
            chart.draw_series(LineSeries::new(points(band), PALETTE[i].stroke_width(2)))?;
        }
        let x0 = PLOT_W as i32 + 10;
        let mut y = 70;
        root.draw(&Label::new(legend_title, (x0, y - 24), 17.0))?;
        let mut entries: Vec<(String, RGBColor)> = finished
            .iter()
            .take(OVERLAY_COLOURED)
            .enumerate()
            .map(|(i, (l, _))| (l.label.clone(), PALETTE[i]))
            .collect();
        if finished.len() > OVERLAY_COLOURED {
            entries.push((
                format!("the other {} settings", finished.len() - OVERLAY_COLOURED),
                grey,
            ));
        }
        let stopped = lines.len() - finished.len();
        if stopped > 0 {
            entries.push((format!("{stopped} stopped (x: where)"), stopped_grey));
        }
        for (text, color) in entries {
            root.draw(&PathElement::new(
                vec![(x0, y + 9), (x0 + 26, y + 9)],
                color.stroke_width(3),
            ))?;
            root.draw(&Label::new(text, (x0 + 34, y), 14.0))?;
            y += 26;
        }
        Ok(())
    })
}

fn mean_only(b: &Band) -> Band {
    Band {
        x: b.x.clone(),
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
        .map(|p| {
            [
                to_byte(row[p]),
                to_byte(row[plane + p]),
                to_byte(row[2 * plane + p]),
            ]
        })
        .collect()
}

/// Draws the rows of a weight matrix (n x 3072: W's classes, or W1's first-layer units)
/// as 32x32 RGB tiles labelled with `names`, under `heading`. Up to 10 tiles go in rows
/// of 5 (2 rows for CIFAR-10's 10 classes), more in rows of 10; each is upscaled `SCALE`
/// times with nearest-neighbour blocks.
pub fn draw_weight_montage(
    path: &Path,
    heading: &str,
    w: &Array2<f64>,
    names: &[String],
) -> Result<(), FigureError> {
    assert_eq!(
        (w.nrows(), w.ncols()),
        (names.len(), IMAGE_LEN),
        "a montage shows one 3 x 32 x 32 row per name"
    );
    register_font()?;
    const CELL_W: usize = 156;
    const CELL_H: usize = IMAGE_SIDE * SCALE + 34;
    const TOP: usize = 44;
    const LEFT: usize = 10;
    let cols = if names.len() <= 10 { 5 } else { 10 };
    let tile = IMAGE_SIDE * SCALE;
    let rows = names.len().div_ceil(cols);
    let size = (
        (cols * CELL_W + 2 * LEFT) as u32,
        (TOP + rows * CELL_H + 4) as u32,
    );
    render_png(path, size, MONTAGE_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        root.draw(&Label::new(heading, (LEFT as i32, 12), 16.0))?;
        for (k, name) in names.iter().enumerate() {
            let x0 = LEFT + (k % cols) * CELL_W + (CELL_W - tile) / 2;
            let y0 = TOP + (k / cols) * CELL_H;
            for (p, rgb) in class_image(w.row(k)).iter().enumerate() {
                let (r, c) = (p / IMAGE_SIDE, p % IMAGE_SIDE);
                let (x, y) = ((x0 + c * SCALE) as i32, (y0 + r * SCALE) as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + SCALE as i32, y + SCALE as i32)],
                    RGBColor(rgb[0], rgb[1], rgb[2]).filled(),
                ))?;
            }
            let center = (x0 + tile / 2) as i32;
            root.draw(
                &Label::new(name.as_str(), (center, (y0 + tile + 6) as i32), 15.0).centered(),
            )?;
        }
        Ok(())
    })
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
        assert_eq!(band.x, vec![0, 1, 2]);
        assert_eq!(band.mean, vec![2.0, 3.0, 5.0]);
        assert_eq!(band.min, vec![1.0, 2.0, 5.0]);
        assert_eq!(band.max, vec![3.0, 4.0, 5.0]);
    }

    #[test]
    fn band_skips_non_finite_values() {
        let a = [(0, 1.0), (1, f64::INFINITY)];
        let b = [(0, 3.0), (1, f64::NAN)];
        let band = Band::from_runs(&[&a, &b]);
        assert_eq!(band.x, vec![0]);
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
        assert!(
            class_image(row.view())
                .iter()
                .all(|p| *p == [128, 128, 128])
        );
    }

    #[test]
    fn tick_labels_stay_short_at_any_magnitude() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(0.02), "0.02");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(12345.0), "12345");
        assert_eq!(tick_label(4.0e15), "4.0e15");
        assert_eq!(tick_label(1e-5), "1.0e-5");
    }

    #[test]
    fn embedded_font_parses_and_labels_have_width() {
        assert!(register_font().is_ok());
        let w = Label::new("airplane", (0, 0), 15.0).width();
        assert!(w > 30.0 && w < 120.0, "{w}");
        assert!(Label::new("", (0, 0), 15.0).width() == 0.0);
    }

    #[test]
    fn value_range_pads_and_survives_degenerate_input() {
        let flat = Band {
            x: vec![0],
            mean: vec![2.0],
            min: vec![2.0],
            max: vec![2.0],
        };
        let r = value_range([&flat]);
        assert!(r.start < 2.0 && r.end > 2.0);
        assert_eq!(value_range(std::iter::empty()), 0.0..1.0);
    }
}
