//! Limits B and C of `cargo xtask bench`: `UpdateCase` round trips from `<concurrency>`
//! concurrent callers (1 by default: sequential calls from one client) on the reader's own
//! `GrpcCaseApi` (built in release like the reader; its clones share one HTTP/2 connection, as
//! the reader's concurrent calls do) to a Case API, for a while.
//!
//! ```text
//! update_round_trips <endpoint> <org_id> <case id prefix> <cases> <seconds> <first event ms> [<concurrency>]
//! ```
//!
//! Caller `w` owns the cases `<prefix><i:012>` with `i % concurrency == w` (so no two callers
//! race for a version), reads their versions, then writes titles to them round-robin, one call
//! at a time, its `k`-th write with source event time `<first event ms> + k * concurrency + w`.
//! Prints one JSON line: `{"calls": n, "seconds": s, "calls_per_s": r, "next_ms": t}`, where
//! `next_ms` is above every event time used.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use thirdparty_core::{CaseApi, CaseUpdate, FieldChange};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (required, concurrency) = match args.as_slice() {
        [required @ .., concurrency] if args.len() == 7 => (required, concurrency.as_str()),
        required => (required, "1"),
    };
    let [endpoint, org_id, prefix, cases, seconds, first_ms] = required else {
        return Err("usage: update_round_trips <endpoint> <org_id> <case id prefix> <cases> <seconds> <first event ms> [<concurrency>]".into());
    };
    let org_id: u64 = org_id.parse()?;
    let cases: u64 = cases.parse()?;
    let duration = Duration::from_secs_f64(seconds.parse()?);
    let first_ms: i64 = first_ms.parse()?;
    let concurrency: u64 = concurrency.parse()?;
    if concurrency == 0 || concurrency > cases {
        return Err(format!("concurrency must be between 1 and the {cases} cases").into());
    }
    let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(endpoint.clone())).await?;
    // Every caller reads its cases' versions first, concurrently (not timed).
    let mut reads = Vec::with_capacity(concurrency as usize);
    for w in 0..concurrency {
        let api = api.clone();
        let ids: Vec<String> = (w..cases)
            .step_by(concurrency as usize)
            .map(|i| format!("{prefix}{i:012}"))
            .collect();
        reads.push(tokio::spawn(async move {
            let mut versions = Vec::with_capacity(ids.len());
            for id in &ids {
                let case = api
                    .get_case(org_id, id)
                    .await?
                    .ok_or_else(|| format!("case {id} is missing"))?;
                versions.push(case.version);
            }
            Ok::<_, Error>((w, ids, versions))
        }));
    }
    let mut callers = Vec::with_capacity(reads.len());
    for read in reads {
        callers.push(read.await??);
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers.len());
    for (w, ids, mut versions) in callers {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut k = 0u64;
            while started.elapsed() < duration {
                let i = (k % ids.len() as u64) as usize;
                let millis = first_ms + (k * concurrency + w) as i64;
                let update = CaseUpdate {
                    org_id,
                    case_id: ids[i].clone(),
                    expected_version: versions[i],
                    change: FieldChange::Title(format!("Limit write {w}/{k}")),
                    writer: thirdparty_core::UpdateWriter::Sync(thirdparty_core::SyncWrite {
                        source: thirdparty_core::ExternalReference::new(
                            "jira",
                            "bench",
                            ids[i].clone(),
                        ),
                        source_event_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(millis) * 1_000_000,
                        )?,
                        change_key: format!("{w}-{k}"),
                    }),
                };
                versions[i] = api.update_case(&update).await?.version;
                k += 1;
            }
            Ok::<u64, Error>(k)
        }));
    }
    let (mut n, mut most) = (0u64, 0u64);
    for task in tasks {
        let k = task.await??;
        n += k;
        most = most.max(k);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"calls\": {n}, \"seconds\": {seconds}, \"calls_per_s\": {}, \"next_ms\": {}}}",
        n as f64 / seconds,
        first_ms + (most * concurrency) as i64
    );
    Ok(())
}
