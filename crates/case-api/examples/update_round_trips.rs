//! Limit B of `cargo xtask bench`: sequential `UpdateCase` round trips from one client (the
//! reader's own `GrpcCaseApi`, built in release like the reader) to a Case API, for a while.
//!
//! ```text
//! update_round_trips <endpoint> <org_id> <case id prefix> <cases> <seconds> <first event ms>
//! ```
//!
//! Reads each case's version, then writes titles to case `<prefix><i:012>` round-robin, one
//! call at a time, with source event times `<first event ms>`, +1, +2, ... Prints one JSON line:
//! `{"calls": n, "seconds": s, "calls_per_s": r}`.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use thirdparty_core::{CaseApi, CaseUpdate, FieldChange};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, org_id, prefix, cases, seconds, first_ms] = args.as_slice() else {
        return Err("usage: update_round_trips <endpoint> <org_id> <case id prefix> <cases> <seconds> <first event ms>".into());
    };
    let org_id: u64 = org_id.parse()?;
    let cases: u64 = cases.parse()?;
    let duration = Duration::from_secs_f64(seconds.parse()?);
    let first_ms: i64 = first_ms.parse()?;
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(endpoint.clone())).await?;
    let case_id = |i: u64| format!("{prefix}{i:012}");
    let mut versions = Vec::with_capacity(cases as usize);
    for i in 0..cases {
        let case = api
            .get_case(org_id, &case_id(i))
            .await?
            .ok_or_else(|| format!("case {} is missing", case_id(i)))?;
        versions.push(case.version);
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        let i = (n % cases) as usize;
        let millis = first_ms + n as i64;
        let update = CaseUpdate {
            org_id,
            case_id: case_id(i as u64),
            expected_version: versions[i],
            change: FieldChange::Title(format!("Limit B write {n}")),
            writer: thirdparty_core::UpdateWriter::Sync(thirdparty_core::SyncWrite {
                source: thirdparty_core::ExternalReference::new("jira", "bench", i.to_string()),
                source_event_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(millis) * 1_000_000,
                )?,
                change_key: n.to_string(),
            }),
        };
        versions[i] = api.update_case(&update).await?.version;
        n += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"calls\": {n}, \"seconds\": {seconds}, \"calls_per_s\": {}}}",
        n as f64 / seconds
    );
    Ok(())
}
