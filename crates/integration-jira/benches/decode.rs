//! The typed Jira decode of a realistic ~8 KiB `jira:issue_updated` webhook
//! (`issue_updated_8k.json`: the `cloud_issue_updated` fixture with the fields a real Jira
//! Cloud webhook carries: users with avatars, links, attachments, sprints, unset custom fields)
//! against `serde_json::from_slice::<serde_json::Value>` of the same bytes.
//!
//! `cargo xtask bench` runs it and reports `decode_vs_value_parse` = Value time / typed time.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use integration_jira::JiraDecoder;
use thirdparty_core::Decoder;

const WEBHOOK: &[u8] = include_bytes!("issue_updated_8k.json");

fn decode(c: &mut Criterion) {
    let decoder = JiraDecoder::new();
    // The fixture must decode: a benchmark of an error path would measure nothing useful.
    let changelogs = decoder.decode(WEBHOOK).expect("the webhook decodes");
    assert_eq!(changelogs.len(), 7);

    let mut group = c.benchmark_group("jira_decode_8k");
    group.throughput(Throughput::Bytes(WEBHOOK.len() as u64));
    group.bench_function("typed", |b| {
        b.iter(|| decoder.decode(black_box(WEBHOOK)).unwrap())
    });
    group.bench_function("value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(WEBHOOK)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
