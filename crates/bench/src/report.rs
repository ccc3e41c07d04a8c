//! Results: one [`Report`] per scenario run, printed as an aligned table and written as JSON
//! (`--out FILE`), and `compare`, which reads two result folders (one per server) and prints a
//! Markdown table of every common metric with the A/B ratio.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One scenario run against one server.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Report {
    pub scenario: String,
    pub server: String,
    pub params: serde_json::Value,
    /// (name, value) in display order; names carry their unit (`_ms`, `_kib`, `_per_s`, ...).
    pub metrics: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, server: &str, params: serde_json::Value) -> Report {
        Report { scenario: scenario.into(), server: server.into(), params, ..Report::default() }
    }

    pub fn put(&mut self, name: &str, value: f64) {
        self.metrics.push((name.into(), value));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let t = text.into();
        eprintln!("note: {t}");
        self.notes.push(t);
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Prints the table and writes the JSON file if asked.
    pub fn emit(&self, out: Option<&Path>) -> std::io::Result<()> {
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

fn load_dir(dir: &Path) -> std::io::Result<Vec<Report>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&p)?;
            match serde_json::from_str::<Report>(&text) {
                Ok(r) => out.push(r),
                Err(e) => eprintln!("skipping {}: {e}", p.display()),
            }
        }
    }
    Ok(out)
}

/// Markdown comparison of the reports in `a` and `b` (matched by file scenario name).
pub fn compare(a: &Path, b: &Path, a_name: &str, b_name: &str) -> std::io::Result<String> {
    let ra = load_dir(a)?;
    let rb = load_dir(b)?;
    let mut md = format!("| scenario | metric | {a_name} | {b_name} | {a_name}/{b_name} |\n|---|---|---:|---:|---:|\n");
    for x in &ra {
        let Some(y) = rb.iter().find(|r| r.scenario == x.scenario) else {
            md.push_str(&format!("| {} | (no {b_name} result) | | | |\n", x.scenario));
            continue;
        };
        for (name, va) in &x.metrics {
            let vb = y.get(name);
            let ratio = match vb {
                Some(vb) if vb != 0.0 => format!("{:.2}", va / vb),
                _ => "–".into(),
            };
            let vb = vb.map(fmt).unwrap_or_else(|| "–".into());
            md.push_str(&format!("| {} | {name} | {} | {vb} | {ratio} |\n", x.scenario, fmt(*va)));
        }
        for n in x.notes.iter() {
            md.push_str(&format!("| {} | note ({a_name}) | {n} | | |\n", x.scenario));
        }
        for n in y.notes.iter() {
            md.push_str(&format!("| {} | note ({b_name}) | | {n} | |\n", y.scenario));
        }
    }
    Ok(md)
}
