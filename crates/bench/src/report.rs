//! Results: one [`Report`] per scenario run, printed as an aligned table and written as JSON
//! (`--out FILE`), and `compare`, which reads two result folders (one per server) and prints a
//! Markdown table of every common metric with the A/B ratio.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One scenario run against one server.
#[derive(Debug, Serialize, Deserialize, Default)]
pub(crate) struct Report {
    pub scenario: String,
    pub server: String,
    pub params: serde_json::Value,
    /// (name, value) in display order; names carry their unit (`_ms`, `_kib`, `_per_s`, ...).
    pub metrics: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(scenario: &str, server: &str, params: serde_json::Value) -> Report {
        Report { scenario: scenario.into(), server: server.into(), params, ..Report::default() }
    }

    pub(crate) fn put(&mut self, name: &str, value: f64) {
        self.metrics.push((name.into(), value));
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        let t = text.into();
        eprintln!("note: {t}");
        self.notes.push(t);
    }

    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Prints the table and writes the JSON file if asked.
    pub(crate) fn emit(&self, out: Option<&Path>) -> std::io::Result<()> {
        println!("== {} against {} ==", self.scenario, self.server);
        println!("params: {}", self.params);
        for (n, v) in &self.metrics {
            println!("  {n:<40} {}", fmt(*v));
        }
        for n in &self.notes {
            println!("  note: {n}");
        }
        if let Some(p) = out {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, serde_json::to_string_pretty(self)?)?;
        }
        Ok(())
    }
}

fn fmt(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Headline metrics per scenario (file name) for `compare --summary`.
const SUMMARY: &[&str] = &[
    "opened",
    "failed",
    "connect_subscribe_per_s",
    "server_rss_per_connection_bytes",
    "alive_after_hold",
    "delivered_msgs_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "lost",
    "out_of_order",
    "server_cpu_us_per_delivered_msg",
    "server_cpu_us_per_delivered_msg_above_floor",
    "kernel_floor_cpu_us_per_delivered_msg",
    "api_tcp_connections",
    "max_sustained_delivered_msgs_per_s",
    "max_sustained_publish_rate",
    "best_server_cpu_us_per_delivered_msg",
    "best_latency_p99_ms",
    "half_delivered_msgs_per_s",
    "half_latency_p50_ms",
    "half_latency_p99_ms",
    "half_latency_p999_ms",
    "half_lost",
    "half_out_of_order",
    "half_server_cpu_us_per_delivered_msg",
    "refused_pusher_error",
    "churn_cycles_per_s",
    "churn_failures",
    "fanout_lost",
    "fanout_out_of_order",
    "fanout_latency_p99_ms",
    "server_rss_start_kib",
    "server_rss_peak_kib",
    "server_rss_end_kib",
    "server_rss_change_pct",
];

/// Adds `kernel_floor_cpu_us_per_delivered_msg` and `<cpu metric>_above_floor` after each
/// server CPU per message figure of `r`.
fn add_above_floor(r: &mut Report, floor_us: f64) {
    let mut out = Vec::with_capacity(r.metrics.len() + 4);
    let mut added = false;
    for (name, v) in r.metrics.drain(..) {
        let cpu = name.ends_with("server_cpu_us_per_delivered_msg");
        out.push((name.clone(), v));
        if cpu {
            out.push((format!("{name}_above_floor"), v - floor_us));
            added = true;
        }
    }
    if added {
        out.push(("kernel_floor_cpu_us_per_delivered_msg".into(), floor_us));
    }
    r.metrics = out;
}

fn load_dir(dir: &Path) -> std::io::Result<Vec<(String, Report)>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&p)?;
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            match serde_json::from_str::<Report>(&text) {
                Ok(r) => out.push((stem, r)),
                Err(e) => eprintln!("skipping {}: {e}", p.display()),
            }
        }
    }
    Ok(out)
}

/// Markdown comparison of the reports in `a` and `b` (matched by file name, e.g. `fanout.json`);
/// `summary` keeps only the headline metrics and no notes. With `floor` (a `send-floor` report),
/// the fanout CPU per message figure is also shown above that floor (what the server's own code
/// costs beyond the kernel's one `send` per message per socket).
pub(crate) fn compare(
    a: &Path,
    b: &Path,
    a_name: &str,
    b_name: &str,
    summary: bool,
    floor: Option<&Path>,
) -> std::io::Result<String> {
    let mut ra = load_dir(a)?;
    let mut rb = load_dir(b)?;
    if let Some(floor) = floor {
        let f: Report = serde_json::from_str(&std::fs::read_to_string(floor)?)?;
        if let Some(us) = f.get("floor_cpu_us_per_delivered_msg") {
            // The floor is measured at the fanout pattern: only that scenario compares with it
            // (at saturation several frames share one send; client events are not a fan-out).
            for reports in [&mut ra, &mut rb] {
                for (_, r) in reports.iter_mut().filter(|(stem, _)| stem == "fanout") {
                    add_above_floor(r, us);
                }
            }
        }
    }
    let mut md = format!("| scenario | metric | {a_name} | {b_name} | {a_name}/{b_name} |\n|---|---|---:|---:|---:|\n");
    for (stem, x) in &ra {
        let Some((_, y)) = rb.iter().find(|(s, _)| s == stem) else {
            md.push_str(&format!("| {stem} | (no {b_name} result) | | | |\n"));
            continue;
        };
        for (name, va) in &x.metrics {
            if summary && !SUMMARY.contains(&name.as_str()) {
                continue;
            }
            let vb = y.get(name);
            let ratio = match vb {
                Some(vb) if vb != 0.0 => format!("{:.2}", va / vb),
                _ => "–".into(),
            };
            let vb = vb.map(fmt).unwrap_or_else(|| "–".into());
            md.push_str(&format!("| {stem} | {name} | {} | {vb} | {ratio} |\n", fmt(*va)));
        }
        if summary {
            continue;
        }
        for n in x.notes.iter() {
            md.push_str(&format!("| {stem} | note ({a_name}) | {} | | |\n", n.replace('|', "/")));
        }
        for n in y.notes.iter() {
            md.push_str(&format!("| {stem} | note ({b_name}) | | {} | |\n", n.replace('|', "/")));
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_above_floor_is_added_after_the_cpu_figure() {
        let mut r = Report::new("fanout", "x", serde_json::Value::Null);
        r.put("lost", 0.0);
        r.put("server_cpu_us_per_delivered_msg", 10.0);
        add_above_floor(&mut r, 8.0);
        let names: Vec<&str> = r.metrics.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "lost",
                "server_cpu_us_per_delivered_msg",
                "server_cpu_us_per_delivered_msg_above_floor",
                "kernel_floor_cpu_us_per_delivered_msg"
            ]
        );
        assert_eq!(r.get("server_cpu_us_per_delivered_msg_above_floor"), Some(2.0));
    }

    #[test]
    fn reports_without_cpu_figures_are_left_alone() {
        let mut r = Report::new("connections", "x", serde_json::Value::Null);
        r.put("opened", 5.0);
        add_above_floor(&mut r, 8.0);
        assert_eq!(r.metrics.len(), 1);
    }
}
