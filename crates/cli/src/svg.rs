//! A small line chart in SVG: series of (x, y) points on log-x axes.

use std::fmt::Write;

/// One line of a chart.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One panel: a title, a y-axis label, series, and whether y is logarithmic.
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) y_label: String,
    pub(crate) log_y: bool,
    pub(crate) series: Vec<Series>,
}

const COLORS: [&str; 9] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    "#1f78b4",
];

/// Renders panels side by side, sharing a log-scale x axis (shards).
pub(crate) fn render(panels: &[Panel]) -> String {
    let (w, h, pad) = (460.0, 340.0, 60.0);
    let total_w = w * panels.len() as f64 + 180.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (p, panel) in panels.iter().enumerate() {
        let x0 = p as f64 * w;
        let pts = panel.series.iter().flat_map(|s| s.points.iter());
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            if x > 0.0 && y.is_finite() && (!panel.log_y || y > 0.0) {
                xmin = xmin.min(x);
                xmax = xmax.max(x);
                ymin = ymin.min(y);
                ymax = ymax.max(y);
            }
        }
        if xmin > xmax {
            continue;
        }
        if !panel.log_y {
            ymin = ymin.min(0.0);
        }
        let ty = |y: f64| if panel.log_y { y.log10() } else { y };
        let (lx0, lx1) = (xmin.log10(), xmax.log10().max(xmin.log10() + 1e-9));
        let (ly0, ly1) = (ty(ymin), ty(ymax).max(ty(ymin) + 1e-9));
        let px = |x: f64| x0 + pad + (x.log10() - lx0) / (lx1 - lx0) * (w - 2.0 * pad);
        let py = |y: f64| h - pad - (ty(y) - ly0) / (ly1 - ly0) * (h - 2.0 * pad);
        let _ = write!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-weight="bold">{}</text>"#,
            x0 + w / 2.0,
            panel.title
        );
        let _ = write!(
            s,
            r##"<line x1="{a}" y1="{b}" x2="{c}" y2="{b}" stroke="#000"/><line x1="{a}" y1="{d}" x2="{a}" y2="{b}" stroke="#000"/>"##,
            a = x0 + pad,
            b = h - pad,
            c = x0 + w - pad,
            d = pad
        );
        let mut x = 10f64.powf(lx0.floor());
        while x <= xmax * 1.0001 {
            if x >= xmin * 0.9999 {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    px(x),
                    h - pad + 16.0,
                    x
                );
            }
            x *= 10.0;
        }
        for (label, y) in [(ymin, ymin), (ymax, ymax)] {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{:.3}</text>"#,
                x0 + pad - 4.0,
                py(y) + 4.0,
                label
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">shards (log)</text><text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">{}</text>"#,
            x0 + w / 2.0,
            h - 15.0,
            x0 + 15.0,
            h / 2.0,
            x0 + 15.0,
            h / 2.0,
            panel.y_label
        );
        for (i, series) in panel.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| *x > 0.0 && y.is_finite() && (!panel.log_y || *y > 0.0))
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>"#);
            }
        }
    }
    // One legend for all panels (same series order).
    if let Some(first) = panels.first() {
        for (i, series) in first.series.iter().enumerate() {
            let y = 50.0 + i as f64 * 18.0;
            let x = w * panels.len() as f64 + 10.0;
            let _ = write!(
                s,
                r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                y - 10.0,
                COLORS[i % COLORS.len()],
                x + 18.0,
                y,
                series.name
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
