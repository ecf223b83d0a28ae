//! The plot of docs/benchmarks.md, drawn as SVG by hand: Mpps of vbr's unicast paths against
//! FDB size (with the ceiling and the Linux bridge as references), and of floods against fan-out.
use std::fmt::Write as _;

use anyhow::Result;

use crate::{
    report::{self, Results, Series},
    variant::{FAN_OUTS, FDB_SIZES, fdb_label},
};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 430.0;
const PANEL_WIDTH: f64 = 470.0;
/// Margins of a panel's plot area: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (55.0, 15.0, 40.0, 150.0);
const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];
const GREY: &str = "#555";

/// One panel: categories on x, series of rates, dashed reference levels.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    categories: Vec<String>,
    series: &'a [Series],
    references: &'a [(String, f64)],
}

pub fn svg(results: &Results) -> Result<String> {
    let (by_fdb, by_fan_out) = report::series(results)?;
    let references = report::references(results)?;
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    panel(
        &mut svg,
        0.0,
        &Panel {
            title: "vbr unicast, 64-byte frames",
            x_label: "FDB entries (traffic spread over all)",
            categories: FDB_SIZES.iter().map(|&n| fdb_label(n)).collect(),
            series: &by_fdb,
            references: &references,
        },
    )?;
    panel(
        &mut svg,
        PANEL_WIDTH + 40.0,
        &Panel {
            title: "broadcast, 64-byte frames",
            x_label: "ports flooded to",
            categories: FAN_OUTS.iter().map(usize::to_string).collect(),
            series: &by_fan_out,
            references: &[],
        },
    )?;
    writeln!(svg, "</svg>")?;
    Ok(svg)
}

fn panel(svg: &mut String, left: f64, panel: &Panel) -> Result<()> {
    let (x0, x1) = (left + MARGIN.0, left + PANEL_WIDTH - MARGIN.1);
    let (y0, y1) = (MARGIN.2, HEIGHT - MARGIN.3);
    let top = panel
        .series
        .iter()
        .flat_map(|(_, rates)| rates.iter().copied())
        .chain(panel.references.iter().map(|(_, rate)| *rate))
        .fold(0.0, f64::max);
    let step = tick_step(top);
    let top = (top / step).ceil() * step;
    let y = |rate: f64| y1 - (y1 - y0) * rate / top;
    let n = panel.categories.len();
    let x = |i: usize| x0 + (x1 - x0) * (i as f64 + 0.5) / n as f64;

    writeln!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        (x0 + x1) / 2.0,
        panel.title
    )?;
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let (line_y, text_x, text_y) = (y(tick), x0 - 6.0, y(tick) + 4.0);
        let label = format!("{tick:.*}", decimals(step));
        writeln!(
            svg,
            r##"<line x1="{x0}" x2="{x1}" y1="{line_y:.1}" y2="{line_y:.1}" stroke="#ddd"/><text x="{text_x}" y="{text_y:.1}" text-anchor="end">{label}</text>"##
        )?;
        tick += step;
    }
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">Mpps</text>"#,
        left + 15.0,
        (y0 + y1) / 2.0,
        left + 15.0,
        (y0 + y1) / 2.0
    )?;
    for (i, category) in panel.categories.iter().enumerate() {
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{category}</text>"#,
            x(i),
            y1 + 16.0
        )?;
    }
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        y1 + 34.0,
        panel.x_label
    )?;
    writeln!(
        svg,
        r#"<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="{GREY}"/><line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="{GREY}"/>"#
    )?;
    let mut legend = Vec::new();
    for (k, (label, rate)) in panel.references.iter().enumerate() {
        let dash = ["6,3", "2,3", "8,3,2,3"][k % 3];
        let line_y = y(*rate);
        writeln!(
            svg,
            r#"<line x1="{x0}" x2="{x1}" y1="{line_y:.1}" y2="{line_y:.1}" stroke="{GREY}" stroke-dasharray="{dash}"/>"#
        )?;
        legend.push((format!("{label} ({rate:.2})"), GREY, Some(dash)));
    }
    for (k, (label, rates)) in panel.series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let points: Vec<String> = rates
            .iter()
            .enumerate()
            .map(|(i, rate)| format!("{:.1},{:.1}", x(i), y(*rate)))
            .collect();
        writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        )?;
        for (i, rate) in rates.iter().enumerate() {
            writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{label}: {rate:.3} Mpps</title></circle>"#,
                x(i),
                y(*rate)
            )?;
        }
        legend.push((label.clone(), colour, None));
    }
    for (row, (label, colour, dash)) in legend.iter().enumerate() {
        let ly = y1 + 56.0 + 15.0 * row as f64;
        let dash = dash.map_or(String::new(), |dash| {
            format!(r#" stroke-dasharray="{dash}""#)
        });
        let (line_end, line_y, text_x) = (x0 + 24.0, ly - 4.0, x0 + 30.0);
        writeln!(
            svg,
            r#"<line x1="{x0}" x2="{line_end}" y1="{line_y:.1}" y2="{line_y:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{text_x}" y="{ly:.1}">{label}</text>"#
        )?;
    }
    Ok(())
}

/// Decimals that show every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..4)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-9
        })
        .unwrap_or(4)
}

/// A round step for about five gridlines up to `top`.
fn tick_step(top: f64) -> f64 {
    if top <= 0.0 {
        return 1.0;
    }
    let raw = top / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}
