//! `cargo xtask fips-provider [--out DIR]`: OpenSSL's FIPS provider for librdkafka's TLS.
//!
//! A `fips` build of the readers carries Kafka TLS only on OpenSSL's FIPS provider (its start-up
//! check exits 4 otherwise), and librdkafka links the system OpenSSL, whose Debian build has no
//! FIPS provider. This builds the provider of OpenSSL 3.0.8, the FIPS 140-2 validated version
//! (CMVP certificate #4282), which runs under any OpenSSL 3.0.x library:
//!
//! 1. the source is the `openssl` tree of the crates.io crate `openssl-src =300.0.13+3.0.8`,
//!    fetched (checksum-verified) by cargo through a throwaway project in ~/.cache, never a
//!    dependency of the workspace;
//! 2. it is copied to `~/.cache/case-third-party-reader/openssl-fips-3.0.8`, configured exactly
//!    as the Security Policy says (`./Configure enable-fips`, no other option), and only the
//!    provider is built (`make build_generated providers/fips.so`: under a minute on 2 cores,
//!    skipped when `providers/fips.so` is already there);
//! 3. the output directory (default `target/fips-provider`) receives `fips.so`, `fipsmodule.cnf`
//!    made by `openssl fipsinstall` for that very file (its MAC covers the file's bytes, so copy
//!    the file unchanged, wherever it goes), and `openssl.cnf`, which includes `fipsmodule.cnf`
//!    by its absolute path in the output directory, activates the `fips` and `base` providers
//!    only and sets `default_properties = fips=yes`.
//!
//! `fipsinstall` runs with `-self_test_onload`: the module's known-answer self-tests run each
//! time a process loads it instead of once at installation, so `fipsmodule.cnf` stays valid on
//! another machine (a container image built here and run elsewhere), as OpenSSL 3.0's
//! documentation requires for a configuration made on one machine and used on another.
//!
//! Use: `OPENSSL_CONF=<out>/openssl.cnf OPENSSL_MODULES=<out> jira-reader ... fips-check`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The openssl-src crate whose `openssl` tree is OpenSSL 3.0.8.
const OPENSSL_SRC: &str = "=300.0.13+3.0.8";
/// The OpenSSL release of the validated FIPS provider.
const OPENSSL_VERSION: &str = "3.0.8";

pub fn run(root: &Path, out: Option<PathBuf>) -> Result<()> {
    let started = Instant::now();
    let cwd = std::env::current_dir().context("current directory")?;
    let out = match out {
        Some(out) => cwd.join(out),
        None => root.join("target/fips-provider"),
    };
    let cache = cache_dir()?;
    let build = cache.join(format!("openssl-fips-{OPENSSL_VERSION}"));
    let module = build.join("providers/fips.so");
    if module.is_file() {
        eprintln!(
            "fips provider: {} is built (cached; delete {} to rebuild)",
            module.display(),
            build.display()
        );
    } else {
        let source = fetch_source(&cache)?;
        build_module(&source, &build)?;
    }
    let built_in = started.elapsed();

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    let installed = out.join("fips.so");
    std::fs::copy(&module, &installed)
        .with_context(|| format!("copying {} to {}", module.display(), out.display()))?;
    let openssl = openssl_cli(&build)?;
    fipsinstall(&openssl, &installed, &out.join("fipsmodule.cnf"))?;
    let config = out.join("openssl.cnf");
    std::fs::write(&config, openssl_cnf(&out.join("fipsmodule.cnf")))
        .with_context(|| format!("writing {}", config.display()))?;
    check(&openssl, &config, &out)?;

    println!(
        "fips provider: OpenSSL {OPENSSL_VERSION} FIPS provider in {} (build {:.1}s, total {:.1}s)",
        out.display(),
        built_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "use: OPENSSL_CONF={} OPENSSL_MODULES={}",
        config.display(),
        out.display()
    );
    Ok(())
}

/// `~/.cache/case-third-party-reader`.
fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/case-third-party-reader"))
}

/// The `openssl` source tree of the openssl-src crate, fetched by cargo (from crates.io, its
/// checksum verified against the index) through a throwaway project that depends on it.
fn fetch_source(cache: &Path) -> Result<PathBuf> {
    let project = cache.join("openssl-src-fetch");
    std::fs::create_dir_all(project.join("src"))
        .with_context(|| format!("creating {}", project.display()))?;
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "# Made by `cargo xtask fips-provider` to fetch OpenSSL's source; never built.\n\
             [package]\nname = \"openssl-src-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nopenssl-src = \"{OPENSSL_SRC}\"\n\n[workspace]\n"
        ),
    )?;
    std::fs::write(project.join("src/lib.rs"), "")?;
    eprintln!("fips provider: fetching openssl-src {OPENSSL_SRC} with cargo");
    let status = crate::cargo_command()
        .args(["fetch", "--quiet"])
        .current_dir(&project)
        .status()
        .context("running cargo fetch")?;
    if !status.success() {
        bail!("cargo fetch of openssl-src {OPENSSL_SRC} failed with {status}");
    }
    let output = crate::cargo_command()
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&project)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "openssl-src")
        .and_then(|p| p["manifest_path"].as_str())
        .context("cargo metadata lists no openssl-src package")?;
    let source = Path::new(manifest)
        .parent()
        .context("openssl-src manifest path")?
        .join("openssl");
    let version = std::fs::read_to_string(source.join("VERSION.dat"))
        .with_context(|| format!("reading {}/VERSION.dat", source.display()))?;
    let [major, minor, patch] = ["MAJOR", "MINOR", "PATCH"].map(|key| {
        version
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("?")
            .trim()
            .to_owned()
    });
    if format!("{major}.{minor}.{patch}") != OPENSSL_VERSION {
        bail!(
            "{} is OpenSSL {major}.{minor}.{patch}, not {OPENSSL_VERSION}",
            source.display()
        );
    }
    Ok(source)
}

/// Copies the source to `build`, configures it with `enable-fips` only (the Security Policy's
/// build) and builds `providers/fips.so` and nothing else of OpenSSL.
fn build_module(source: &Path, build: &Path) -> Result<()> {
    let started = Instant::now();
    if !build.join("Configure").is_file() {
        let partial = build.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("removing {}", partial.display()))?;
        }
        std::fs::create_dir_all(&partial)?;
        eprintln!(
            "fips provider: copying {} to {}",
            source.display(),
            build.display()
        );
        let status = Command::new("cp")
            .arg("-R")
            .arg(source.join("."))
            .arg(&partial)
            .status()
            .context("running cp")?;
        if !status.success() {
            bail!("copying the OpenSSL source failed with {status}");
        }
        std::fs::rename(&partial, build)
            .with_context(|| format!("renaming {} to {}", partial.display(), build.display()))?;
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log = build.join("xtask-build.log");
    let steps: [(&str, Vec<String>); 3] = [
        ("./Configure", vec!["enable-fips".into()]),
        ("make", vec![format!("-j{jobs}"), "build_generated".into()]),
        (
            "make",
            vec![format!("-j{jobs}"), "providers/fips.so".into()],
        ),
    ];
    for (program, args) in steps {
        if program == "./Configure" && build.join("Makefile").is_file() {
            continue;
        }
        eprintln!(
            "fips provider: {program} {} (log: {})",
            args.join(" "),
            log.display()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let status = Command::new(program)
            .args(&args)
            .current_dir(build)
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("running {program} in {}", build.display()))?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            for line in tail.into_iter().rev() {
                eprintln!("  {line}");
            }
            bail!("`{program} {}` failed with {status}", args.join(" "));
        }
    }
    eprintln!(
        "fips provider: built {} in {:.1}s",
        build.join("providers/fips.so").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An `openssl` command of OpenSSL 3 (any 3.x runs the 3.0.8 module's installation): the one on
/// PATH (Debian's), else the command line of the 3.0.8 tree, built for that (a few minutes).
fn openssl_cli(build: &Path) -> Result<Command> {
    let system = Command::new("openssl").arg("version").output();
    if let Ok(output) = system
        && output.status.success()
        && String::from_utf8_lossy(&output.stdout).starts_with("OpenSSL 3.")
    {
        return Ok(Command::new("openssl"));
    }
    let app = build.join("apps/openssl");
    if !app.is_file() {
        eprintln!("fips provider: no OpenSSL 3 command on PATH; building apps/openssl of 3.0.8");
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let status = Command::new("make")
            .args([format!("-j{jobs}").as_str(), "apps/openssl"])
            .current_dir(build)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running make apps/openssl")?;
        if !status.success() {
            bail!("`make apps/openssl` failed with {status}");
        }
    }
    let mut command = Command::new(app);
    command.env("LD_LIBRARY_PATH", build);
    Ok(command)
}

/// `openssl fipsinstall`: runs the module's self-tests and writes its configuration (the MAC of
/// `module`'s bytes, the module's security options).
fn fipsinstall(openssl: &Command, module: &Path, out: &Path) -> Result<()> {
    let output = rerun(openssl)
        .arg("fipsinstall")
        .arg("-module")
        .arg(module)
        .arg("-out")
        .arg(out)
        .arg("-self_test_onload")
        .env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_MODULES")
        .output()
        .context("running openssl fipsinstall")?;
    let text = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !text.contains("INSTALL PASSED") {
        bail!("openssl fipsinstall failed ({}):\n{text}", output.status);
    }
    Ok(())
}

/// The OpenSSL configuration for librdkafka's TLS: the FIPS provider (with the base provider
/// for key encoders and decoders, no algorithm) and nothing else, every fetch `fips=yes`.
fn openssl_cnf(fipsmodule: &Path) -> String {
    format!(
        "# OpenSSL configuration of a FIPS build of the readers (made by `cargo xtask \
         fips-provider`):\n\
         # librdkafka's TLS runs on the OpenSSL {OPENSSL_VERSION} FIPS provider (FIPS 140-2, CMVP \
         certificate #4282)\n\
         # and the base provider only; every algorithm is fetched with `fips=yes`.\n\
         # Use with OPENSSL_CONF=<this file> OPENSSL_MODULES=<the directory of fips.so>.\n\
         config_diagnostics = 1\n\
         openssl_conf = openssl_init\n\
         \n\
         .include {}\n\
         \n\
         [openssl_init]\n\
         providers = provider_sect\n\
         alg_section = algorithm_sect\n\
         \n\
         [provider_sect]\n\
         fips = fips_sect\n\
         base = base_sect\n\
         \n\
         [base_sect]\n\
         activate = 1\n\
         \n\
         [algorithm_sect]\n\
         default_properties = fips=yes\n",
        fipsmodule.display()
    )
}

/// Loads the configuration as a process would: the FIPS provider of OpenSSL 3.0.8 must be
/// active, and MD5 (not approved) must be unavailable.
fn check(openssl: &Command, config: &Path, modules: &Path) -> Result<()> {
    let output = rerun(openssl)
        .args(["list", "-providers"])
        .env("OPENSSL_CONF", config)
        .env("OPENSSL_MODULES", modules)
        .output()
        .context("running openssl list -providers")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fips = text.split_once("  fips\n").map(|(_, rest)| rest);
    let active = fips.is_some_and(|rest| {
        let block: Vec<&str> = rest.lines().take(3).collect();
        block
            .iter()
            .any(|l| l.trim() == format!("version: {OPENSSL_VERSION}"))
            && block.iter().any(|l| l.trim() == "status: active")
    });
    if !output.status.success() || !active {
        bail!(
            "with {} the FIPS provider {OPENSSL_VERSION} is not active:\n{text}{}",
            config.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let md5 = rerun(openssl)
        .args(["dgst", "-md5"])
        .arg(config)
        .env("OPENSSL_CONF", config)
        .env("OPENSSL_MODULES", modules)
        .output()
        .context("running openssl dgst -md5")?;
    if md5.status.success() {
        bail!(
            "with {} MD5 is still available: fips=yes is not in effect",
            config.display()
        );
    }
    Ok(())
}

/// A fresh copy of `command` (program and environment), for another run.
fn rerun(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => copy.env(key, value),
            None => copy.env_remove(key),
        };
    }
    copy
}
