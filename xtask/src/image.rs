//! The runtime image, tested without a Docker engine: the root file system `deploy/Dockerfile`
//! describes (Debian bookworm with `deploy/runtime-packages.txt`) is built with `mmdebstrap`,
//! the release binaries are copied in, and each is run in it with `chroot` as the image's user:
//! `--version`, `validate-config` on every Helm-rendered config the image serves, and
//! `fips-check`. A shared library the image lacks fails here, not in a deploy; the test proves
//! it can see one by removing `libssl.so.3` from a copy of the root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The Debian release of the runtime image (`debian:bookworm-slim` in the Dockerfile).
const SUITE: &str = "bookworm";
/// The archives, as the image's apt sees them (security updates included).
const MIRRORS: &[&str] = &[
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];
/// The image's user (`USER 65532:65532` in the Dockerfile).
const USER: &str = "65532:65532";
const FLAVORS: &[&str] = &["jira-reader", "servicenow-reader", "github-reader"];

/// The package list shared with the Dockerfile.
fn runtime_packages(root: &Path) -> Result<Vec<String>> {
    let path = root.join("deploy/runtime-packages.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// `cargo xtask image-test`.
pub fn image_test(workspace: &Path) -> Result<()> {
    let started = Instant::now();
    if !crate::is_root() {
        bail!("the image test needs root (mmdebstrap and chroot)");
    }
    if which("mmdebstrap").is_none() {
        eprintln!("installing mmdebstrap (Debian package) for the image test");
        crate::apt_install(&["mmdebstrap"])?;
    }
    if which("cmake").is_none() || which("go").is_none() {
        eprintln!("installing cmake and golang (Debian packages) for the fips build's AWS-LC");
        crate::apt_install(&["cmake", "golang"])?;
    }
    let target = crate::target_dir(workspace);
    let work = target.join("image-test");
    std::fs::create_dir_all(&work)?;

    // The binaries: standard and fips release builds (the Dockerfile's two builder stages).
    let bins = work.join("bin");
    std::fs::create_dir_all(bins.join("standard"))?;
    std::fs::create_dir_all(bins.join("fips"))?;
    for (kind, features) in [("standard", None), ("fips", Some("fips"))] {
        let mut cargo = crate::cargo_command();
        cargo
            .current_dir(workspace)
            .args(["build", "--release", "--locked"]);
        for flavor in FLAVORS {
            cargo.args(["-p", flavor]);
        }
        if let Some(features) = features {
            cargo.args(["--features", features]);
        }
        eprintln!("image-test: release build ({kind})");
        run(&mut cargo)?;
        for flavor in FLAVORS {
            std::fs::copy(
                target.join("release").join(flavor),
                bins.join(kind).join(flavor),
            )
            .with_context(|| format!("copying the {kind} {flavor}"))?;
        }
    }
    // The FIPS image's OpenSSL provider, as the Dockerfile's fips stage makes it.
    let provider = work.join("fips-provider");
    run(crate::cargo_command().current_dir(workspace).args([
        "xtask",
        "fips-provider",
        "--out",
        &provider.display().to_string(),
    ]))?;

    // The Helm-rendered configs (the chart test writes one per flavor x tenant).
    let configs = work.join("configs");
    run(Command::new(workspace.join("deploy/helm/test.sh"))
        .current_dir(workspace)
        .args(["--write-configs", &configs.display().to_string()]))?;

    // The root file system, cached per package list.
    let packages = runtime_packages(workspace)?;
    let tarball = work.join(format!("root-{SUITE}-{}.tar", packages.join("+")));
    if !tarball.is_file() {
        eprintln!(
            "image-test: mmdebstrap {SUITE} with {}",
            packages.join(", ")
        );
        // mmdebstrap picks the format from the name: a `.tar` name, or it writes a directory.
        let partial = tarball.with_extension("partial.tar");
        let mut mm = Command::new("mmdebstrap");
        mm.args(["--quiet", "--variant=minbase"])
            .arg(format!("--include={}", packages.join(",")))
            .arg(SUITE)
            .arg(&partial)
            .args(MIRRORS);
        run(&mut mm)?;
        std::fs::rename(&partial, &tarball)?;
    }

    let mut report = Vec::new();
    for image in [Image::Standard, Image::Fips] {
        let root = extract(&tarball, &work.join(image.name()))?;
        image.install(&root, &bins, &provider)?;
        for flavor in FLAVORS {
            let out = in_root(
                &root,
                image,
                &[&format!("/usr/local/bin/{flavor}"), "--version"],
            )?;
            expect(
                out.status == Some(0) && out.stdout.starts_with(&format!("{flavor} ")),
                image,
                flavor,
                "--version",
                &out,
            )?;
            report.push(format!(
                "{}: {flavor} --version: {}",
                image.name(),
                out.stdout.trim()
            ));
            for tenant in image.tenants() {
                let config = configs.join(format!(
                    "{}-{tenant}.toml",
                    flavor.trim_end_matches("-reader")
                ));
                stand_in_secrets(&root, &config)?;
                let in_image = format!("/etc/case-third-party-reader/{tenant}.toml");
                let host = inside(&root, Path::new(&in_image));
                if let Some(parent) = host.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&config, host)?;
                let bin = format!("/usr/local/bin/{flavor}");
                let out = in_root(&root, image, &[&bin, "validate-config", &in_image])?;
                expect(
                    out.status == Some(0) && out.stdout.trim() == "ok",
                    image,
                    flavor,
                    &format!("validate-config ({tenant})"),
                    &out,
                )?;
                let out = in_root(&root, image, &[&bin, "--config", &in_image, "fips-check"])?;
                let want = match image {
                    Image::Standard => Some(1),
                    Image::Fips => Some(0),
                };
                expect(out.status == want, image, flavor, "fips-check", &out)?;
                report.push(format!(
                    "{}: {flavor} {tenant}: validate-config ok; fips-check exit {:?}: {}",
                    image.name(),
                    out.status,
                    out.stdout.trim().replace('\n', "; ")
                ));
            }
        }
    }

    // A root without the library the binaries need fails the test.
    let broken = extract(&tarball, &work.join("missing-libssl"))?;
    Image::Standard.install(&broken, &bins, &provider)?;
    let mut removed = false;
    for lib in [
        "usr/lib/x86_64-linux-gnu/libssl.so.3",
        "lib/x86_64-linux-gnu/libssl.so.3",
    ] {
        if std::fs::remove_file(inside(&broken, Path::new(lib))).is_ok() {
            removed = true;
        }
    }
    if !removed {
        bail!("libssl.so.3 is not in the root: the negative control has nothing to remove");
    }
    let out = in_root(
        &broken,
        Image::Standard,
        &["/usr/local/bin/jira-reader", "--version"],
    )?;
    if out.status == Some(0) || !out.stderr.contains("libssl.so.3") {
        bail!("a root without libssl.so.3 ran the reader: {out:?}");
    }
    report.push(format!(
        "negative control: without libssl.so.3: {}",
        out.stderr.trim()
    ));
    for line in &report {
        println!("{line}");
    }
    println!("image-test: ok in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Image {
    /// `casethirdpartyreader-<flavor>`: staging and prod.
    Standard,
    /// `casethirdpartyreaderfips-<flavor>`: gov.
    Fips,
}

/// Where the FIPS image keeps OpenSSL's FIPS provider and its configuration (the Dockerfile's
/// `fips` stage and its `ENV`).
const FIPS_MODULES: &str = "usr/local/lib/ossl-modules";
const FIPS_CONF_DIR: &str = "etc/ssl/fips";

impl Image {
    fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Fips => "fips",
        }
    }

    fn tenants(self) -> &'static [&'static str] {
        match self {
            Self::Standard => &["staging", "prod"],
            Self::Fips => &["gov"],
        }
    }

    /// The environment the image sets (`ENV` in the Dockerfile).
    fn env(self) -> Vec<(&'static str, String)> {
        let mut env = vec![("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned())];
        if let Self::Fips = self {
            env.push(("OPENSSL_CONF", format!("/{FIPS_CONF_DIR}/openssl.cnf")));
            env.push(("OPENSSL_MODULES", format!("/{FIPS_MODULES}")));
        }
        env
    }

    /// Copies in what the Dockerfile's final stage copies.
    fn install(self, root: &Path, bins: &Path, provider: &Path) -> Result<()> {
        let dest = root.join("usr/local/bin");
        std::fs::create_dir_all(&dest)?;
        for flavor in FLAVORS {
            std::fs::copy(bins.join(self.name()).join(flavor), dest.join(flavor))?;
        }
        if let Self::Fips = self {
            std::fs::create_dir_all(root.join(FIPS_MODULES))?;
            std::fs::create_dir_all(root.join(FIPS_CONF_DIR))?;
            std::fs::copy(
                provider.join("fips.so"),
                root.join(FIPS_MODULES).join("fips.so"),
            )?;
            std::fs::copy(
                provider.join("fipsmodule.cnf"),
                root.join(FIPS_CONF_DIR).join("fipsmodule.cnf"),
            )?;
            // openssl.cnf includes fipsmodule.cnf by absolute path: where the image has it (the
            // Dockerfile makes it with `--out /etc/ssl/fips`).
            let cnf = std::fs::read_to_string(provider.join("openssl.cnf"))?;
            let include = format!(".include {}/fipsmodule.cnf", provider.display());
            if !cnf.contains(&include) {
                bail!(
                    "{} does not `{include}`",
                    provider.join("openssl.cnf").display()
                );
            }
            let cnf = cnf.replace(
                &include,
                &format!(".include /{FIPS_CONF_DIR}/fipsmodule.cnf"),
            );
            std::fs::write(root.join(FIPS_CONF_DIR).join("openssl.cnf"), cnf)?;
        }
        Ok(())
    }
}

/// A fresh copy of the root.
fn extract(tarball: &Path, dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("-C")
        .arg(dir))?;
    Ok(dir.to_owned())
}

/// The secret files a rendered config names (mounted from Secrets in a pod), as stand-ins the
/// image's user can read.
fn stand_in_secrets(root: &Path, config: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config)?;
    let paths: BTreeSet<&str> = text
        .split('"')
        .filter(|s| s.starts_with("/var/run/secrets/"))
        .collect();
    for path in paths {
        let file = inside(root, Path::new(path));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, "stand-in\n")?;
    }
    Ok(())
}

/// `path` (absolute, as the image sees it) on the host, following the root's symlinks inside the
/// root: the image's `/var/run` is a symlink to `/run`, which must not lead to the host's `/run`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = root.to_owned();
    for (hops, component) in path.components().enumerate() {
        let std::path::Component::Normal(name) = component else {
            continue;
        };
        let next = resolved.join(name);
        match std::fs::read_link(&next) {
            Ok(target) if hops < 40 => {
                resolved = if target.is_absolute() {
                    inside(root, &target)
                } else {
                    inside(
                        root,
                        &Path::new("/")
                            .join(resolved.strip_prefix(root).unwrap_or(Path::new("")))
                            .join(target),
                    )
                };
            }
            _ => resolved = next,
        }
    }
    resolved
}

#[derive(Debug)]
struct Output {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs a command in the root as the image's user, with only the image's environment.
fn in_root(root: &Path, image: Image, argv: &[&str]) -> Result<Output> {
    // Resolved on the host's PATH: the child's environment (and PATH) is the image's.
    let chroot = which("chroot").context("chroot (coreutils) is not on PATH")?;
    let out = Command::new(chroot)
        .arg(format!("--userspec={USER}"))
        .arg(root)
        .args(argv)
        .env_clear()
        .envs(image.env())
        .current_dir("/")
        .output()
        .context("running chroot")?;
    Ok(Output {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn expect(ok: bool, image: Image, flavor: &str, what: &str, out: &Output) -> Result<()> {
    if !ok {
        bail!(
            "{} image, {flavor} {what}: exit {:?}\nstdout: {}\nstderr: {}",
            image.name(),
            out.status,
            out.stdout,
            out.stderr
        );
    }
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
