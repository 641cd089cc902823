//! Self-contained HTML: escaping, tables, a page shell with inline CSS, and inline SVG
//! bar charts. Nothing is ever fetched: no external stylesheet, script, font or image,
//! and every page carries a Content-Security-Policy that forbids fetching anything. These
//! files are opened from the secure zone or the reports directory, often offline, and a
//! request leaving the reader's machine would say that someone is reading them.

use std::fmt::Write;

/// The policy every page carries: inline styles only; no scripts, fetches, frames or
/// forms.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Text made safe for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The shared look: readable on screen and on paper.
pub const BASE_CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.4}\
h1{font-size:1.5rem;margin:.2rem 0 .8rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}\
h3{font-size:1rem;margin:1.2rem 0 .4rem}\
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}\
th,td{border:1px solid #bbb;padding:.2rem .45rem;text-align:left;vertical-align:top}\
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:.5rem 0 1rem}dt{font-weight:600}dd{margin:0}\
.banner{border:2px solid #a00;color:#a00;padding:.5rem .8rem;font-weight:600;margin-bottom:1rem}\
.note{font-size:.85rem;color:#444}.muted{color:#666}\
.ok{color:#075e07}.bad{color:#a00}\
svg{display:block;margin:.3rem 0 1rem;max-width:100%;height:auto}\
@media print{body{margin:0;max-width:none}.banner{border-width:1px}h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}";

/// A complete page: `body` is HTML already (built with [`escape`]); `extra_css` is added
/// to [`BASE_CSS`].
pub fn page(title: &str, extra_css: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{BASE_CSS}{extra_css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        csp = escape(CSP),
        title = escape(title),
    )
}

/// One table cell: text (escaped here) and whether it is a number (right-aligned).
#[derive(Debug, Clone)]
pub struct Td {
    pub text: String,
    pub numeric: bool,
    pub class: Option<&'static str>,
}

impl Td {
    pub fn text(s: impl Into<String>) -> Td {
        Td {
            text: s.into(),
            numeric: false,
            class: None,
        }
    }

    pub fn num(s: impl Into<String>) -> Td {
        Td {
            text: s.into(),
            numeric: true,
            class: None,
        }
    }

    pub fn class(mut self, class: &'static str) -> Td {
        self.class = Some(class);
        self
    }
}

/// A table with a header row; an empty `rows` renders `empty` instead.
pub fn table(headers: &[&str], rows: &[Vec<Td>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>\n", escape(empty));
    }
    let mut out = String::from("<table>\n<thead><tr>");
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let mut classes: Vec<&str> = Vec::new();
            if c.numeric {
                classes.push("n");
            }
            if let Some(k) = c.class {
                classes.push(k);
            }
            if classes.is_empty() {
                let _ = write!(out, "<td>{}</td>", escape(&c.text));
            } else {
                let _ = write!(
                    out,
                    "<td class=\"{}\">{}</td>",
                    classes.join(" "),
                    escape(&c.text)
                );
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A definition list of label → value (both escaped).
pub fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<dl>\n");
    for (k, v) in items {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    out.push_str("</dl>\n");
    out
}

/// One bar of a chart: its label, the value it draws (`None`: suppressed or not known,
/// drawn as a gap with `note`), and the text printed beside it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub text: String,
}

/// A horizontal bar chart as inline SVG. `max` is the value of a full-width bar (1.0 for
/// rates). The chart has a `<title>` and every bar its own, so a screen reader (and a
/// headless browser's text dump) reads what it shows.
pub fn bar_chart(title: &str, bars: &[Bar], max: f64) -> String {
    const LABEL_W: f64 = 230.0;
    const BAR_W: f64 = 360.0;
    const TEXT_W: f64 = 190.0;
    const ROW_H: f64 = 22.0;
    let width = LABEL_W + BAR_W + TEXT_W;
    let height = ROW_H * bars.len() as f64 + 8.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"system-ui,Arial,sans-serif\" font-size=\"12\">\n<title>{}</title>\n",
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW_H * i as f64;
        let _ = write!(
            out,
            "<g><title>{}: {}</title><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#1b1b1b\">{}</text>",
            escape(&b.label),
            escape(&b.text),
            LABEL_W - 6.0,
            y + 14.0,
            escape(&b.label)
        );
        let _ = write!(
            out,
            "<rect x=\"{LABEL_W}\" y=\"{}\" width=\"{BAR_W}\" height=\"{}\" fill=\"#eef1f5\"/>",
            y + 2.0,
            ROW_H - 6.0
        );
        if let Some(v) = b.value {
            let w = if max > 0.0 {
                (v / max).clamp(0.0, 1.0) * BAR_W
            } else {
                0.0
            };
            let _ = write!(
                out,
                "<rect x=\"{LABEL_W}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"#2f5d8a\"/>",
                y + 2.0,
                ROW_H - 6.0
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text></g>",
            LABEL_W + BAR_W + 6.0,
            y + 14.0,
            if b.value.is_some() { "#1b1b1b" } else { "#666" },
            escape(&b.text)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn a_page_fetches_nothing() {
        let body = table(
            &["a", "b"],
            &[vec![Td::text("<script>"), Td::num("1")]],
            "none",
        ) + &bar_chart(
            "chart",
            &[
                Bar {
                    label: "x".into(),
                    value: Some(0.5),
                    text: "50%".into(),
                },
                Bar {
                    label: "y".into(),
                    value: None,
                    text: "suppressed".into(),
                },
            ],
            1.0,
        );
        let html = page("t", "", &body);
        assert!(html.contains("Content-Security-Policy"));
        assert!(!html.contains("<script"));
        for needle in ["src=", "href=", "url(", "@import", "http://", "https://"] {
            let hits: Vec<_> = html.match_indices(needle).collect();
            // The SVG namespace is a name, not a fetch.
            let allowed = needle == "http://"
                && html.matches("http://www.w3.org/2000/svg").count() == hits.len();
            assert!(hits.is_empty() || allowed, "{needle} in {html}");
        }
    }
}
