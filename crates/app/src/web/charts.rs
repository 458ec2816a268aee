//! Server-drawn SVG charts (UI.md: no chart library, no script): a bar chart and a line chart over days, with the
//! numbers in `<title>` elements for screen readers and hover. Colours come from the stylesheet's classes.

/// One point: the axis label (`12/03`), the value (`None` = no data that day) and its text for the tooltip.
pub struct Point {
    pub label: String,
    pub value: Option<i64>,
    pub text: String,
}

const W: i64 = 600;
const H: i64 = 160;
const PAD: i64 = 24;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn scale(points: &[Point], floor: Option<i64>) -> (i64, i64) {
    let values = points.iter().filter_map(|p| p.value);
    let max = values.clone().max().unwrap_or(1).max(1);
    let min = floor.unwrap_or_else(|| values.min().unwrap_or(0).min(0));
    (min, if max > min { max } else { min + 1 })
}

fn y_of(v: i64, (min, max): (i64, i64)) -> i64 {
    H - PAD - (v - min) * (H - 2 * PAD) / (max - min)
}

fn axis(points: &[Point], label: &str) -> String {
    let n = points.len().max(1) as i64;
    let step = (W - 2 * PAD) / n;
    // A label every week keeps the axis readable on a phone.
    let ticks: String = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == 0 || *i as i64 == n - 1)
        .map(|(i, p)| {
            let x = PAD + i as i64 * step + step / 2;
            format!(r#"<text class="graphe-axe" x="{x}" y="{}" text-anchor="middle">{}</text>"#, H - 6, esc(&p.label))
        })
        .collect();
    format!(
        r#"<line class="graphe-base" x1="{PAD}" y1="{y}" x2="{}" y2="{y}"/>{ticks}<text class="graphe-axe" x="{PAD}" y="14">{}</text>"#,
        W - PAD,
        esc(label),
        y = H - PAD
    )
}

/// Bars, one per day.
pub fn bars(id: &str, title: &str, unit_label: &str, points: &[Point]) -> String {
    let s = scale(points, Some(0));
    let n = points.len().max(1) as i64;
    let step = (W - 2 * PAD) / n;
    let bars: String = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.filter(|v| *v > 0).map(|v| (i, p, v)))
        .map(|(i, p, v)| {
            let (x, y) = (PAD + i as i64 * step + 1, y_of(v, s));
            format!(
                r#"<rect class="graphe-barre" x="{x}" y="{y}" width="{}" height="{}"><title>{} : {}</title></rect>"#,
                (step - 2).max(1),
                H - PAD - y,
                esc(&p.label),
                esc(&p.text)
            )
        })
        .collect();
    svg(id, title, &format!("{}{bars}", axis(points, unit_label)))
}

/// A line through the days that have a value; `band` draws the tolerance band `(low, high)` behind it.
pub fn line(id: &str, title: &str, unit_label: &str, points: &[Point], band: Option<(i64, i64)>) -> String {
    let floor = points.iter().filter_map(|p| p.value).chain(band.map(|b| b.0)).min();
    let mut s = scale(points, floor.map(|f| f - f / 20));
    if let Some((_, high)) = band {
        s.1 = s.1.max(high + high / 20);
    }
    let n = points.len().max(1) as i64;
    let step = (W - 2 * PAD) / n;
    let band_svg = band
        .map(|(low, high)| {
            let (top, bottom) = (y_of(high, s), y_of(low, s));
            format!(
                r#"<rect class="graphe-bande" x="{PAD}" y="{top}" width="{}" height="{}"/>"#,
                W - 2 * PAD,
                (bottom - top).max(1)
            )
        })
        .unwrap_or_default();
    let coords: Vec<(i64, i64, &Point)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.map(|v| (PAD + i as i64 * step + step / 2, y_of(v, s), p)))
        .collect();
    let path: Vec<String> = coords.iter().map(|(x, y, _)| format!("{x},{y}")).collect();
    let dots: String = coords
        .iter()
        .map(|(x, y, p)| {
            format!(
                r#"<circle class="graphe-point" cx="{x}" cy="{y}" r="3"><title>{} : {}</title></circle>"#,
                esc(&p.label),
                esc(&p.text)
            )
        })
        .collect();
    let polyline = if path.len() > 1 {
        format!(r#"<polyline class="graphe-ligne" points="{}"/>"#, path.join(" "))
    } else {
        String::new()
    };
    svg(id, title, &format!("{band_svg}{}{polyline}{dots}", axis(points, unit_label)))
}

fn svg(id: &str, title: &str, body: &str) -> String {
    format!(
        r#"<svg class="graphe" id="{}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{0}-titre"><title id="{0}-titre">{}</title>{body}</svg>"#,
        esc(id),
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: &str, v: Option<i64>) -> Point {
        Point { label: label.into(), value: v, text: v.map(|v| v.to_string()).unwrap_or_default() }
    }

    #[test]
    fn bars_draw_one_rect_per_day_with_output_and_scale_to_the_highest() {
        let svg =
            bars("prod", "Production", "pièces", &[p("10/03", Some(50)), p("11/03", None), p("12/03", Some(100))]);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("<title>12/03 : 100</title>"));
        // The highest bar spans the whole plot height: from PAD to H − PAD.
        assert!(svg.contains(&format!(r#"y="{PAD}" width="#)), "{svg}");
        assert!(svg.starts_with(r#"<svg class="graphe" id="prod""#));
    }

    #[test]
    fn a_line_skips_empty_days_and_draws_its_band() {
        let svg = line(
            "rdt",
            "Rendement",
            "%",
            &[p("a", Some(9_000)), p("b", None), p("c", Some(10_000))],
            Some((9_800, 10_200)),
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("graphe-bande") && svg.contains("<polyline"));
        assert!(!line("x", "t", "u", &[p("a", Some(1))], None).contains("<polyline"), "one point is a dot");
        assert!(bars("x", "<b>", "u", &[]).contains("&lt;b&gt;"));
    }
}
