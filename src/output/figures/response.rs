//! Response figures: validation accuracy against one setting axis (a point per setting
//! at its mean over seeds with a min..max bar, a coarse sweep's settings beside a fine
//! one's), and heatmaps of the best mean validation accuracy over two binned axes. Like
//! the rest of `figures`, they draw what they are given and know nothing of the summary.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    CHART_COMPRESSION, FONT, FigureError, Label, PALETTE, padded, register_font, render_png,
    tick_label,
};

/// One setting on a response figure: its axis value and its validation accuracy (a
/// fraction) over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponsePoint {
    pub x: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// The settings of one sweep on a response figure, under `label` in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSeries {
    pub label: String,
    pub points: Vec<ResponsePoint>,
}

/// Validation accuracy against one axis. `series` come in legend order and are drawn
/// in `PALETTE` order (the first blue, on top; the second orange, below it).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub title: String,
    pub axis: String,
    /// Draw the x axis on a log scale (the values must then be positive).
    pub log_x: bool,
    pub series: Vec<ResponseSeries>,
}

/// The size in pixels of a [`draw_response`] figure.
pub fn response_size() -> (u32, u32) {
    (900, 560)
}

/// Draws validation accuracy (%) against one axis: each setting a dot at its mean over
/// seeds with a vertical bar from the worst to the best seed. A log x axis is drawn in
/// log10 coordinates with ticks labelled by the values themselves.
pub fn draw_response(path: &Path, r: &Response) -> Result<(), FigureError> {
    register_font()?;
    let size = response_size();
    let t = |x: f64| if r.log_x { x.log10() } else { x };
    let points = || r.series.iter().flat_map(|s| &s.points);
    let xr = padded(points().map(|p| t(p.x)));
    let yr = padded(points().flat_map(|p| [p.min * 100.0, p.max * 100.0]));
    render_png(path, size, CHART_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        root.draw(&Label::new(r.title.as_str(), (size.0 as i32 / 2, 10), 22.0).centered())?;
        let mut chart = ChartBuilder::on(&root.margin(46, 12, 8, 14))
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(xr.clone(), yr)?;
        let x_desc = if r.log_x {
            format!("{} (log scale)", r.axis)
        } else {
            r.axis.clone()
        };
        let x_fmt = |v: &f64| tick_label(if r.log_x { 10f64.powf(*v) } else { *v });
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_labels(if r.log_x {
                ((xr.end - xr.start).ceil() as usize + 1).clamp(3, 10)
            } else {
                8
            })
            .x_label_formatter(&x_fmt)
            .y_desc("validation accuracy (%)")
            .y_label_formatter(&|v| tick_label(*v))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(214, 214, 214))
            .draw()?;
        // The first series goes on top, so it is drawn last.
        for (i, s) in r.series.iter().enumerate().rev() {
            let color = PALETTE[i % PALETTE.len()];
            chart.draw_series(s.points.iter().map(|p| {
                PathElement::new(
                    vec![(t(p.x), p.min * 100.0), (t(p.x), p.max * 100.0)],
                    color.mix(0.35).stroke_width(1),
                )
            }))?;
            chart.draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((t(p.x), p.mean * 100.0), 3, color.filled())),
            )?;
        }
        if r.series.len() > 1 {
            let (px, py) = chart.plotting_area().get_pixel_range();
            let entries: Vec<String> = r
                .series
                .iter()
                .map(|s| format!("{} ({} settings)", s.label, s.points.len()))
                .collect();
            let w = entries
                .iter()
                .map(|e| Label::new(e.as_str(), (0, 0), 16.0).width().ceil() as i32)
                .max()
                .unwrap_or(0)
                + 40;
            let h = 24 * entries.len() as i32 + 12;
            // The corner that hides the fewest dots and bar ends.
            let marks: Vec<(i32, i32)> = points()
                .flat_map(|p| [p.min, p.mean, p.max].map(|v| (t(p.x), v * 100.0)))
                .map(|c| chart.backend_coord(&c))
                .collect();
            let (x0, y0) = [
                (px.end - 10 - w, py.end - 10 - h),
                (px.end - 10 - w, py.start + 10),
                (px.start + 10, py.end - 10 - h),
                (px.start + 10, py.start + 10),
            ]
            .into_iter()
            .min_by_key(|&(x0, y0)| {
                marks
                    .iter()
                    .filter(|&&(x, y)| {
                        x >= x0 - 6 && x <= x0 + w + 6 && y >= y0 - 6 && y <= y0 + h + 6
                    })
                    .count()
            })
            .expect("invariant broken: four candidate corners");
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + w, y0 + h)],
                WHITE.mix(0.9).filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + w, y0 + h)],
                RGBColor(170, 170, 170),
            ))?;
            for (i, e) in entries.iter().enumerate() {
                let y = y0 + 6 + 24 * i as i32 + 12;
                root.draw(&Circle::new((x0 + 16, y), 5, PALETTE[i].filled()))?;
                root.draw(&Label::new(e.as_str(), (x0 + 30, y - 10), 16.0))?;
            }
        }
        Ok(())
    })
}

/// One axis of a heatmap: its name, its number of bins, and its tick labels at
/// positions in bin units (0 is the first bin's lower edge, `bins` the last's upper).
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapAxis {
    pub name: String,
    pub bins: usize,
    pub ticks: Vec<(f64, String)>,
}

/// A grid of cells over two axes, each the best mean validation accuracy (a fraction)
/// of the settings in it, or None (drawn blank) when no setting falls in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub x: HeatmapAxis,
    pub y: HeatmapAxis,
    /// Row-major from the bottom row: `cells[iy * x.bins + ix]`.
    pub cells: Vec<Option<f64>>,
}

/// The size in pixels of a [`draw_heatmap`] figure.
pub fn heatmap_size() -> (u32, u32) {
    (900, 720)
}

/// Viridis (matplotlib's perceptually uniform colour map) at nine evenly spaced
/// stops, interpolated linearly in RGB: dark blue for the worst cell, yellow for the best.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour of `t` in [0, 1] on [`VIRIDIS`].
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Draws a heatmap: each non-empty cell coloured on [`viridis`] from the worst to the
/// best cell and labelled with its accuracy when it is wide enough, empty cells blank,
/// and a colour bar with its scale on the right.
pub fn draw_heatmap(path: &Path, h: &Heatmap) -> Result<(), FigureError> {
    assert_eq!(
        h.cells.len(),
        h.x.bins * h.y.bins,
        "a heatmap has one cell per pair of bins"
    );
    register_font()?;
    let size = heatmap_size();
    let (left, right, top, bottom) = (110, size.0 as i32 - 170, 60, size.1 as i32 - 90);
    let (lo, hi) = h
        .cells
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
    let (nx, ny) = (h.x.bins.max(1) as f64, h.y.bins.max(1) as f64);
    let px = |u: f64| left + ((right - left) as f64 * u / nx).round() as i32;
    let py = |u: f64| bottom - ((bottom - top) as f64 * u / ny).round() as i32;
    let grid = RGBColor(214, 214, 214);
    render_png(path, size, CHART_COMPRESSION, |root| {
        root.fill(&WHITE)?;
        root.draw(&Label::new(h.title.as_str(), (size.0 as i32 / 2, 10), 22.0).centered())?;
        for iy in 0..h.y.bins {
            for ix in 0..h.x.bins {
                let (x0, x1) = (px(ix as f64), px(ix as f64 + 1.0));
                let (y0, y1) = (py(iy as f64 + 1.0), py(iy as f64));
                let Some(v) = h.cells[iy * h.x.bins + ix] else {
                    continue;
                };
                let t = scale(v);
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], viridis(t).filled()))?;
                let text = format!("{:.1}", v * 100.0);
                let mut label = Label::new(text, ((x0 + x1) / 2, (y0 + y1) / 2 - 8), 14.0);
                if label.width() + 6.0 < (x1 - x0) as f32 && y1 - y0 > 20 {
                    label.color = if t < 0.6 { WHITE } else { BLACK };
                    root.draw(&label.centered())?;
                }
            }
        }
        for ix in 0..=h.x.bins {
            let x = px(ix as f64);
            root.draw(&PathElement::new(vec![(x, top), (x, bottom)], grid))?;
        }
        for iy in 0..=h.y.bins {
            let y = py(iy as f64);
            root.draw(&PathElement::new(vec![(left, y), (right, y)], grid))?;
        }
        root.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            RGBColor(120, 120, 120),
        ))?;
        for (u, text) in &h.x.ticks {
            let x = px(*u);
            root.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], BLACK))?;
            root.draw(&Label::new(text.as_str(), (x, bottom + 8), 13.0).centered())?;
        }
        for (u, text) in &h.y.ticks {
            let y = py(*u);
            root.draw(&PathElement::new(vec![(left - 5, y), (left, y)], BLACK))?;
            let label = Label::new(text.as_str(), (0, y - 8), 13.0);
            let w = label.width().ceil() as i32;
            root.draw(&Label {
                pos: (left - 8 - w, y - 8),
                ..label
            })?;
        }
        root.draw(
            &Label::new(h.x.name.as_str(), ((left + right) / 2, bottom + 34), 16.0).centered(),
        )?;
        let rotated = (FONT, 16)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(&h.y.name, &rotated, (22, (top + bottom) / 2))?;

        // The colour bar: the scale from the worst to the best cell.
        let (bx0, bx1) = (right + 40, right + 64);
        let steps = 100;
        for k in 0..steps {
            let ya = bottom - (bottom - top) * k / steps;
            let yb = bottom - (bottom - top) * (k + 1) / steps;
            let t = (f64::from(k) + 0.5) / f64::from(steps);
            root.draw(&Rectangle::new([(bx0, yb), (bx1, ya)], viridis(t).filled()))?;
        }
        root.draw(&Rectangle::new(
            [(bx0, top), (bx1, bottom)],
            RGBColor(120, 120, 120),
        ))?;
        if lo.is_finite() {
            let marks = if hi > lo { 5 } else { 1 };
            for k in 0..marks {
                let f = if marks == 1 {
                    1.0
                } else {
                    f64::from(k) / f64::from(marks - 1)
                };
                let y = bottom - ((bottom - top) as f64 * f).round() as i32;
                root.draw(&PathElement::new(vec![(bx1, y), (bx1 + 5, y)], BLACK))?;
                let text = format!("{:.1}", (lo + f * (hi - lo)) * 100.0);
                root.draw(&Label::new(text, (bx1 + 8, y - 8), 13.0))?;
            }
        }
        root.draw(&Label::new("val acc (%)", (bx0 - 12, top - 24), 14.0))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_runs_from_dark_blue_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
    }

    #[test]
    fn padded_ranges_cover_their_values_and_survive_one_value() {
        let r = padded([1.0, 3.0].into_iter());
        assert!(r.start < 1.0 && r.end > 3.0);
        let one = padded(std::iter::once(-4.0));
        assert!(one.start < -4.0 && one.end > -4.0);
        assert_eq!(padded(std::iter::empty()), 0.0..1.0);
    }
}
