//! Replays the checked-in seed corpus of every fuzz target (fuzz/corpus/TARGET/*) through
//! the same functions the fuzzers call, on stable Rust: no input may panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

fn replay(target: &str, f: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_file() {
            f(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    assert!(n >= 3, "{target}: only {n} seeds");
}

#[test]
fn profile_corpus() {
    replay("profile", ward::fuzzing::profile);
}

#[test]
fn policy_corpus() {
    replay("policy", ward::fuzzing::policy);
}

#[test]
fn normalize_corpus() {
    replay("normalize", ward::fuzzing::normalize);
}

#[test]
fn filter_corpus() {
    replay("filter", ward::fuzzing::filter);
}
