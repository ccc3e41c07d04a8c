//! The `[tls]` table at start-up: where the paths come from (file < env < flags), and every
//! unusable certificate/key pair refused with a message naming `tls.cert_file` or
//! `tls.key_file` — by the config loader, by `herald::start`, and by `herald check-config`.
#![allow(clippy::unwrap_used)] // a test's unwrap is its failure report

mod config_support;
mod support;

use std::process::Command;

use config_support::{load, load_err, TempFile};
use herald::config::tls::TlsConfig;
use herald::config::Config;
use support::{test_config, Leaf, TestCa, TlsFiles};

fn flags(files: &TlsFiles) -> [String; 4] {
    [
        "--tls-cert-file".into(),
        files.cert.to_str().unwrap().into(),
        "--tls-key-file".into(),
        files.key.to_str().unwrap().into(),
    ]
}

/// The error `load_from` gives for `files` (passed as flags).
fn error_for(files: &TlsFiles) -> String {
    let args = flags(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    load_err(&args, &[])
}

/// The error `herald::start` gives for `files` in an otherwise valid config.
async fn start_error(files: &TlsFiles) -> String {
    start_error_with(files.config()).await
}

async fn start_error_with(tls: TlsConfig) -> String {
    let config = Config { tls: Some(tls), ..test_config() };
    match herald::start(config).await {
        Ok(_) => panic!("herald started with an unusable pair"),
        Err(e) => e.to_string(),
    }
}

fn valid_leaf() -> Leaf {
    TestCa::new().leaf(1)
}

#[test]
fn tls_table_env_and_flags_layer_key_by_key() {
    let files = TlsFiles::new(&valid_leaf());
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let toml = TempFile::new(&format!("[tls]\ncert_file = \"/nowhere/cert.pem\"\nkey_file = \"{key}\"\n"));
    // The file names a missing certificate; the environment overrides it.
    let c = load(&["--config", toml.path()], &[("HERALD_TLS_CERT_FILE", cert)]).unwrap();
    assert_eq!(c.tls, Some(TlsConfig { cert_file: files.cert.clone(), key_file: files.key.clone() }));
    // The flag wins over the environment.
    let err =
        load_err(&["--config", toml.path(), "--tls-cert-file", "/flag/cert.pem"], &[("HERALD_TLS_CERT_FILE", cert)]);
    assert!(err.starts_with("tls.cert_file: cannot read /flag/cert.pem"), "{err}");
    // Nothing set: plain.
    assert_eq!(load(&[], &[]).unwrap().tls, None);
}

#[test]
fn setting_only_one_file_names_the_missing_key() {
    let err = load_err(&[], &[("HERALD_TLS_KEY_FILE", "/etc/herald/key.pem")]);
    assert!(err.starts_with("tls.cert_file: missing"), "{err}");
    let toml = TempFile::new("[tls]\ncert_file = \"/etc/herald/cert.pem\"\n");
    let err = load_err(&["--config", toml.path()], &[]);
    assert!(err.starts_with("tls.key_file: missing"), "{err}");
    let err = load_err(&["--tls-cert-file", "/etc/herald/cert.pem"], &[]);
    assert!(err.starts_with("tls.key_file: missing"), "{err}");
}

#[tokio::test]
async fn a_missing_or_unreadable_file_names_its_key() {
    let files = TlsFiles::new(&valid_leaf());
    std::fs::remove_file(&files.key).unwrap();
    let err = error_for(&files);
    assert!(err.starts_with("tls.key_file: cannot read"), "{err}");
    assert!(start_error(&files).await.starts_with("tls.key_file: cannot read"));

    // A directory where the certificate should be cannot be read either.
    let files = TlsFiles::new(&valid_leaf());
    std::fs::remove_file(&files.cert).unwrap();
    std::fs::create_dir(&files.cert).unwrap();
    let err = error_for(&files);
    assert!(err.starts_with("tls.cert_file: cannot read"), "{err}");
    assert!(start_error(&files).await.starts_with("tls.cert_file: cannot read"));
}

#[tokio::test]
async fn a_certificate_file_without_a_certificate_names_tls_cert_file() {
    let leaf = valid_leaf();
    let files = TlsFiles::new(&leaf);
    files.write(&leaf.key_pem, &leaf.key_pem);
    let err = error_for(&files);
    assert!(err.starts_with("tls.cert_file: no certificate"), "{err}");
    assert!(start_error(&files).await.starts_with("tls.cert_file: no certificate"));
}

#[tokio::test]
async fn a_key_file_without_a_key_names_tls_key_file() {
    let leaf = valid_leaf();
    let files = TlsFiles::new(&leaf);
    files.write(&leaf.cert_pem, &leaf.cert_pem);
    let err = error_for(&files);
    assert!(err.starts_with("tls.key_file: no private key"), "{err}");
    assert!(start_error(&files).await.starts_with("tls.key_file: no private key"));
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_names_tls_key_file() {
    let ca = TestCa::new();
    let (a, b) = (ca.leaf(1), ca.leaf(2));
    let files = TlsFiles::new(&a);
    files.write(&a.cert_pem, &b.key_pem);
    let err = error_for(&files);
    assert!(err.starts_with("tls.key_file: the private key in"), "{err}");
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(start_error(&files).await.starts_with("tls.key_file: the private key in"));
}

#[tokio::test]
async fn an_expired_leaf_names_tls_cert_file() {
    let leaf = TestCa::new().leaf_with(1, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let files = TlsFiles::new(&leaf);
    let err = error_for(&files);
    assert!(err.starts_with("tls.cert_file: the certificate in"), "{err}");
    assert!(err.contains("expired on") && err.contains("2021"), "{err}");
    assert!(start_error(&files).await.contains("expired on"));
}

#[tokio::test]
async fn a_leaf_not_yet_valid_names_tls_cert_file() {
    let leaf = TestCa::new().leaf_with(1, |p| {
        p.not_before = rcgen::date_time_ymd(2999, 1, 1);
        p.not_after = rcgen::date_time_ymd(3000, 1, 1);
    });
    let files = TlsFiles::new(&leaf);
    let err = error_for(&files);
    assert!(err.starts_with("tls.cert_file: the certificate in"), "{err}");
    assert!(err.contains("not valid before") && err.contains("2999"), "{err}");
}

#[test]
fn check_config_reports_a_bad_pair_and_accepts_a_good_one() {
    let ca = TestCa::new();
    let (a, b) = (ca.leaf(1), ca.leaf(2));
    let files = TlsFiles::new(&a);
    let check = |files: &TlsFiles| {
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("check-config")
            .args(flags(files))
            .env_remove("RUST_LOG")
            .output()
            .expect("run herald check-config")
    };
    let ok = check(&files);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));

    files.write(&a.cert_pem, &b.key_pem);
    let bad = check(&files);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("configuration error: tls.key_file: the private key in"), "{stderr}");
}

#[tokio::test]
async fn an_endless_file_is_refused_naming_its_key() {
    // /dev/zero never ends: herald reads at most 1 MiB of a PEM file.
    let files = TlsFiles::new(&valid_leaf());
    let config = TlsConfig { cert_file: "/dev/zero".into(), key_file: files.key.clone() };
    let err = herald::tls::load(&config).err().expect("refused").to_string();
    assert!(err.starts_with("tls.cert_file: /dev/zero is larger than 1 MiB"), "{err}");
    assert!(start_error_with(config).await.starts_with("tls.cert_file: /dev/zero is larger"));
}
