//! `tonic-msgpack check-compat OLD NEW` (or `NEW --against-git REF`): every change between two
//! versions of a contract, classified by what it does on the wire. The rules and their
//! messages are in `rules.rs`; the table of them is `docs/compat.md`.

mod rules;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tonic_msgpack_build::model::contract::Contract;

pub(crate) use rules::{Finding, Severity, compare};

/// `tonic-msgpack check-compat`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  tonic-msgpack check-compat contracts-v1/ contracts/
  tonic-msgpack check-compat proto/ --against-git origin/main
  tonic-msgpack check-compat proto/ --against-git origin/main --format json

Exit status: 1 when any change is an error (breaks existing peers on the wire), else 0.")]
pub(crate) struct CheckCompatArgs {
    /// OLD and NEW directories (each searched for .proto files, descriptor sets and
    /// #[msgpack_service] trait files), or NEW alone with --against-git.
    #[arg(value_name = "DIR", num_args = 1..=2, required = true)]
    dirs: Vec<PathBuf>,
    /// Read OLD from this git commit, branch or tag: the same directory as NEW in that revision.
    #[arg(long, value_name = "REF")]
    against_git: Option<String>,
    /// Output: one line per change, or one JSON document (for CI annotations).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Also print the safe (`ok`) changes.
    #[arg(long)]
    verbose: bool,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// `error[rule] file:line:col: message`, one line each.
    Text,
    /// `{"findings": [...], "errors": n, "warnings": n}`.
    Json,
}

pub(crate) fn run(args: CheckCompatArgs) -> anyhow::Result<ExitCode> {
    let (findings, _old_dir) = match (&args.against_git, args.dirs.as_slice()) {
        (None, [old, new]) => (compare_dirs(old, new)?, None),
        (Some(reference), [new]) => {
            let checkout = GitCheckout::new(new, reference)?;
            let old_contract = load(checkout.dir())
                .with_context(|| format!("in {reference}:{}", checkout.prefix))?;
            let new_contract = load(new)?;
            let mut findings = compare(&old_contract, &new_contract);
            // Show the old side's files as `REF:path`, not as the temporary directory.
            let temp = checkout.dir().display().to_string();
            let prefix = if checkout.prefix.is_empty() {
                format!("{reference}:")
            } else {
                format!("{reference}:{}", checkout.prefix)
            };
            for finding in &mut findings {
                if let Some(rest) = finding.location.file.strip_prefix(&temp) {
                    finding.location.file = format!("{prefix}{}", rest.trim_start_matches('/'));
                }
            }
            (findings, Some(checkout))
        }
        (None, [_]) => bail!("give OLD and NEW directories, or NEW with --against-git REF"),
        (Some(_), _) => bail!("with --against-git REF, give only the NEW directory"),
        (None, _) => bail!("give OLD and NEW directories"),
    };
    print!("{}", render(&findings, args.format, args.verbose));
    let failed = findings.iter().any(|f| f.severity == Severity::Error);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The findings between the contracts under `old` and `new`.
pub(crate) fn compare_dirs(old: &Path, new: &Path) -> anyhow::Result<Vec<Finding>> {
    let old = load(old)?;
    let new = load(new)?;
    Ok(compare(&old, &new))
}

fn load(dir: &Path) -> anyhow::Result<Contract> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    Ok(tonic_msgpack_build::load::contract(dir)?)
}

/// The findings as text or JSON; `ok` findings in text only when `verbose`.
pub(crate) fn render(findings: &[Finding], format: OutputFormat, verbose: bool) -> String {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    match format {
        OutputFormat::Json => {
            let list: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "severity": f.severity.as_str(),
                        "rule": f.rule,
                        "file": f.location.file,
                        "line": f.location.line,
                        "column": f.location.column,
                        "message": f.message,
                    })
                })
                .collect();
            let document = serde_json::json!({
                "findings": list,
                "errors": errors,
                "warnings": warnings,
            });
            format!("{document:#}\n")
        }
        OutputFormat::Text => {
            let mut out = String::new();
            for finding in findings {
                if finding.severity == Severity::Ok && !verbose {
                    continue;
                }
                out.push_str(&format!(
                    "{}[{}] {}: {}\n",
                    finding.severity.as_str(),
                    finding.rule,
                    finding.location,
                    finding.message
                ));
            }
            let safe = findings.len() - errors - warnings;
            out.push_str(&format!(
                "{errors} error(s), {warnings} warning(s), {safe} safe change(s)\n"
            ));
            out
        }
    }
}

/// The NEW directory's counterpart in another git revision, extracted to a temporary
/// directory with `git archive` (removed on drop).
struct GitCheckout {
    root: PathBuf,
    /// NEW's path inside the repository (`proto/`), empty at the root.
    prefix: String,
}

impl GitCheckout {
    fn new(new: &Path, reference: &str) -> anyhow::Result<Self> {
        let git = |dir: &Path, args: &[&str]| -> anyhow::Result<Vec<u8>> {
            let output = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .context("cannot run git (is it installed?)")?;
            if !output.status.success() {
                bail!(
                    "git {} failed in {}: {}",
                    args.join(" "),
                    dir.display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            Ok(output.stdout)
        };
        let text = |bytes: Vec<u8>| -> anyhow::Result<String> {
            Ok(String::from_utf8(bytes)
                .context("git printed a path that is not UTF-8")?
                .trim()
                .to_owned())
        };
        let prefix = text(git(new, &["rev-parse", "--show-prefix"])?)?;
        // `git archive` in a subdirectory archives only that subdirectory: run it at the top.
        let top = PathBuf::from(text(git(new, &["rev-parse", "--show-toplevel"])?)?);
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let root = std::env::temp_dir().join(format!(
            "tonic-msgpack-compat-{}-{unique}",
            std::process::id()
        ));
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let checkout = GitCheckout { root, prefix };
        let tree = format!("{reference}:{}", checkout.prefix);
        let archive = git(&top, &["archive", "--format=tar", &tree])
            .with_context(|| format!("cannot read `{tree}` from git"))?;
        let mut tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&checkout.root)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run tar")?;
        if let Some(mut stdin) = tar.stdin.take() {
            use std::io::Write as _;
            stdin.write_all(&archive).context("cannot write to tar")?;
        }
        let output = tar.wait_with_output().context("tar failed")?;
        if !output.status.success() {
            bail!(
                "tar could not extract `{tree}`: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(checkout)
    }

    fn dir(&self) -> &Path {
        &self.root
    }
}

impl Drop for GitCheckout {
    fn drop(&mut self) {
        // Best effort: a leftover temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
