//! The demo's recovery story, in a few lines: a Jira project onboarded late loses its changes
//! (`project_not_found`); once its settings exist, `jira-reader replay` foretells what would
//! change, `--apply` applies it while the live reader runs, and `why` shows both decisions.
//! The live group's committed offsets never move.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use case_api::pb::sandbox::v1::SeedRequest;
use case_api::pb::sandbox::v1::sandbox_admin_client::SandboxAdminClient;
use reader_runtime::testkit::{group_progress, produce, producer, wait_caught_up};
use thirdparty_core::CaseApi;
use time::OffsetDateTime;

use crate::demo::Sandbox;
use crate::scenario::{
    self, ACME, GROUP, JIRA_TOPIC, LATE_ISSUES, late_cases_seed, late_messages, late_settings_seed,
};

/// Plays the story against the running Jira reader; returns whether everything went as told.
pub(crate) async fn run(
    jira_reader: &Path,
    config: &Path,
    bootstrap: &str,
    sandbox: &Sandbox,
    seed: &Path,
) -> Result<bool> {
    println!("\nRecovery: project PROJ (late) has cases but no settings yet.");
    let mut admin = SandboxAdminClient::connect(sandbox.endpoint.clone())
        .await
        .context("connecting to the sandbox admin service")?;
    admin
        .seed(SeedRequest {
            json: late_cases_seed(),
        })
        .await
        .context("seeding the late project's cases")?;
    let from = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let p = producer(bootstrap)?;
    for message in late_messages() {
        produce(&p, JIRA_TOPIC, Some(0), "late", &message).await?;
    }
    wait_caught_up(bootstrap, GROUP, JIRA_TOPIC, Duration::from_secs(30)).await?;
    // The live reader's decision records leave within its linger time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Printed to the second: one second more, so the window holds every message.
    let to = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let committed = group_progress(bootstrap, GROUP, JIRA_TOPIC).await?;
    println!(
        "  {} status changes played: filtered project_not_found by the live reader",
        LATE_ISSUES.len()
    );

    let seed_json =
        std::fs::read_to_string(seed).with_context(|| format!("reading {}", seed.display()))?;
    admin
        .seed(SeedRequest {
            json: late_settings_seed(&seed_json)?,
        })
        .await
        .context("adding the late project's settings")?;
    println!("  settings added; then:");

    let (from, to) = (scenario::rfc3339(from), scenario::rfc3339(to));
    let window = ["--from", from.as_str(), "--to", to.as_str()];
    let n = LATE_ISSUES.len();
    let mut ok = true;
    let dry = replay(jira_reader, config, &window, &[]).await?;
    ok &= expect(&dry, &format!("project_not_found -> would_apply: {n}"));
    let applied = replay(
        jira_reader,
        config,
        &window,
        &["--reason", "project_not_found", "--apply"],
    )
    .await?;
    ok &= expect(&applied, &format!("project_not_found -> applied: {n}"));
    let again = replay(jira_reader, config, &window, &["--apply"]).await?;
    ok &= expect(&again, &format!("applied -> duplicate_event: {n}"));

    let api = sandbox.api().await?;
    for (_, key, case_id) in LATE_ISSUES {
        let status = api
            .get_case(ACME, case_id)
            .await?
            .map(|c| c.status)
            .unwrap_or_default();
        if status != "IN_PROGRESS" {
            println!("  DEVIATION: {key}'s case is {status}, not IN_PROGRESS");
            ok = false;
        }
    }
    let (_, key, _) = LATE_ISSUES[0];
    let why = cli(jira_reader, config, &["why", key]).await?;
    println!("  $ jira-reader why {key}");
    for line in why.lines() {
        println!("    {line}");
    }
    ok &= why.contains("filtered (project_not_found)") && why.contains("applied by replay");
    let unchanged = group_progress(bootstrap, GROUP, JIRA_TOPIC).await? == committed;
    println!(
        "  live group {GROUP}'s committed offsets {}",
        if unchanged { "unchanged" } else { "MOVED" }
    );
    Ok(ok && unchanged)
}

/// `jira-reader replay <window> <args>`, printed as `$ ...` and its table lines.
async fn replay(
    binary: &Path,
    config: &Path,
    window: &[&str],
    args: &[&str],
) -> Result<Vec<String>> {
    let mut all = vec!["replay"];
    all.extend_from_slice(window);
    all.extend_from_slice(args);
    let out = cli(binary, config, &all).await?;
    println!("  $ jira-reader {}", all.join(" "));
    if let Some(read) = out.lines().find(|l| l.contains("messages read")) {
        println!("      ({read})");
    }
    let lines: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" -> "))
        .map(|l| l.trim().to_owned())
        .collect();
    if lines.is_empty() {
        println!("      no transition; the whole output:\n{out}");
    }
    for line in &lines {
        println!("      {line}");
    }
    Ok(lines)
}

fn expect(lines: &[String], want: &str) -> bool {
    if lines.len() == 1 && lines[0] == want {
        return true;
    }
    println!("  DEVIATION: expected only `{want}`, got {lines:?}");
    false
}

/// Runs `binary --config config args`; its stdout, or an error with its stderr.
async fn cli(binary: &Path, config: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} exited with {}: {}",
            binary.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
