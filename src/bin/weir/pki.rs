//! `weir pki`: a development PKI for the mutual-TLS consumer service: a CA, the server
//! certificate of `weir-recv` and the client certificates of consumers.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use weir::pki::{self, Ca, PkiError, Usage, Validity};

/// Default folder of the dev PKI.
const DEFAULT_DIR: &str = "certs/dev";

/// The end of `weir pki --help`.
const EXAMPLES: &str = "\
Typical use:
  weir pki init
  weir pki issue server localhost 127.0.0.1 ::1
  weir pki issue client historian-replica.corp.example

then, in the policy of the IT host:
  [recv.serve]
  cert      = \"certs/dev/server.pem\"
  key       = \"certs/dev/server.key\"
  client_ca = \"certs/dev/ca.pem\"
and, in the channels this consumer may read:
  consumers = [\"historian-replica.corp.example\"]";

/// Make a development PKI for the consumer service (mutual TLS over TCP and QUIC): a CA, the
/// server certificate of weir-recv, and one client certificate per consumer.
///
/// Private keys are written with mode 0600 and never overwritten. For production, use your
/// organisation's PKI: see certs/README.md.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PkiCommand {
    /// Create a new CA: DIR/ca.pem (certificate) and DIR/ca.key (private key, mode 0600).
    ///
    /// The CA signs the server certificate and the consumers' client certificates; ca.pem is
    /// what `[recv.serve] client_ca` points at, and what consumers trust to verify the server.
    /// Refuses to touch an existing CA.
    Init {
        /// Folder of the PKI (created with mode 0700 if missing).
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Common name of the CA certificate.
        #[arg(long, default_value = "weir dev CA")]
        name: String,
        /// Days the CA certificate is valid.
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
    /// Issue a certificate signed by the CA in DIR (run `weir pki init` first).
    Issue {
        #[command(subcommand)]
        kind: IssueKind,
    },
}

#[derive(Debug, clap::Subcommand)]
enum IssueKind {
    /// A server certificate for weir-recv's consumer service: DIR/server.pem and DIR/server.key.
    ///
    /// List every name consumers use to reach the server: DNS names and IP addresses, e.g.
    /// `weir pki issue server localhost 127.0.0.1 ::1` or `weir pki issue server
    /// weir.corp.example 10.20.0.2`. A consumer refuses the server if the name it dialled is
    /// not listed.
    Server(IssueArgs),
    /// A client certificate for one consumer: DIR/<first NAME>.pem and .key.
    ///
    /// The DNS and URI names are the consumer's identities: a policy channel grants it with
    /// `consumers = ["NAME"]`. Use a DNS name (`historian-replica.corp.example`) or a URI
    /// (`spiffe://corp.example/historian`); IP addresses are not identities.
    Client(IssueArgs),
}

#[derive(Debug, clap::Args)]
struct IssueArgs {
    /// Names of the certificate: DNS names, IP addresses, or URIs (with `://`, or `urn:`,
    /// `spiffe:`). The first is also the subject common name.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Folder of the PKI: the CA is read from DIR/ca.pem and DIR/ca.key, the certificate is
    /// written there.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// File name stem of the output: DIR/OUT.pem and DIR/OUT.key [default: `server` for a
    /// server certificate, the first NAME for a client certificate].
    #[arg(long)]
    out: Option<String>,
    /// Days the certificate is valid. Shorter is safer: weir does not check revocation lists, so
    /// an expiry date is what ends a lost certificate.
    #[arg(long, default_value_t = 825, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
}

/// Runs `weir pki`.
pub fn run(args: PkiArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PkiCommand::Init { dir, name, days } => init(&dir, &name, days),
        PkiCommand::Issue { kind } => match kind {
            IssueKind::Server(a) => issue(Usage::Server, a),
            IssueKind::Client(a) => issue(Usage::Client, a),
        },
    }
}

fn init(dir: &Path, name: &str, days: u32) -> anyhow::Result<ExitCode> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    refuse_existing(&[&cert, &key], "remove it or choose another --dir")?;
    let ca = Ca::generate(name, Validity::days_from_now(days))?;
    create_dir(dir)?;
    write_pair(&cert, ca.cert_pem(), &key, ca.key_pem())?;
    println!("wrote {} (CA certificate, valid {days} days)", cert.display());
    println!(
        "wrote {} (CA private key, mode 0600: keep it secret)",
        key.display()
    );
    println!();
    println!("next:");
    println!(
        "  weir pki issue server --dir {} localhost 127.0.0.1",
        dir.display()
    );
    println!("  weir pki issue client --dir {} <consumer name>", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn issue(usage: Usage, args: IssueArgs) -> anyhow::Result<ExitCode> {
    let IssueArgs {
        names,
        dir,
        out,
        days,
    } = args;
    // Check every name before anything else, so a typo costs nothing.
    let sans = names
        .iter()
        .map(|name| pki::parse_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    if usage == Usage::Client && sans.iter().all(|san| matches!(san, rcgen::SanType::IpAddress(_))) {
        bail!(
            "a client certificate needs a DNS name or a URI: that is the consumer's identity, \
             which a policy channel grants with `consumers = [...]`; IP addresses are not identities"
        );
    }
    let stem = match out {
        Some(out) => {
            check_stem(&out)?;
            out
        }
        None => match usage {
            Usage::Server => "server".to_owned(),
            Usage::Client => default_stem(names.first().map_or("client", String::as_str)),
        },
    };
    let (cert, key) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
    refuse_existing(&[&cert, &key], "remove it or choose another --out or --dir")?;
    let ca = load_ca(&dir)?;
    let issued = ca.issue(usage, &names, Validity::days_from_now(days))?;
    write_pair(&cert, &issued.cert_pem, &key, &issued.key_pem)?;
    let kind = match usage {
        Usage::Server => "server",
        Usage::Client => "client",
    };
    println!(
        "wrote {} ({kind} certificate for {}, valid {days} days, signed by {})",
        cert.display(),
        names.join(", "),
        dir.join("ca.pem").display()
    );
    println!("wrote {} (private key, mode 0600: keep it secret)", key.display());
    println!();
    match usage {
        Usage::Server => {
            println!("in the policy of the IT host:");
            println!("  [recv.serve]");
            println!("  cert      = {}", toml_string(&cert.display().to_string()));
            println!("  key       = {}", toml_string(&key.display().to_string()));
            println!(
                "  client_ca = {}",
                toml_string(&dir.join("ca.pem").display().to_string())
            );
        }
        Usage::Client => {
            let identities = pki::identities(&pki::cert_der(&issued.cert_pem)?)?;
            println!("identities of this consumer (grant one in a policy channel):");
            for identity in &identities {
                println!("  consumers = [{}]", toml_string(identity));
            }
            println!(
                "the consumer connects with {}, {} and trusts {}",
                cert.display(),
                key.display(),
                dir.join("ca.pem").display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_ca(dir: &Path) -> anyhow::Result<Ca> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    match Ca::load(&cert, &key) {
        Ok(ca) => Ok(ca),
        Err(PkiError::Missing { path }) => bail!(
            "no CA in {}: {} does not exist (hint: run `weir pki init --dir {}` first, or pass the \
             --dir that holds ca.pem and ca.key)",
            dir.display(),
            path.display(),
            dir.display()
        ),
        Err(error) => Err(error).with_context(|| format!("cannot load the CA of {}", dir.display())),
    }
}

/// Fails, naming the first file of `paths` that exists, before anything is generated.
fn refuse_existing(paths: &[&Path], fix: &str) -> anyhow::Result<()> {
    for path in paths {
        if path.symlink_metadata().is_ok() {
            bail!("{} already exists; {fix}", path.display());
        }
    }
    Ok(())
}

/// Writes the key (0600, never overwriting), then the certificate; on failure removes the key
/// it wrote, so the pair is all there or not at all.
fn write_pair(cert: &Path, cert_pem: &str, key: &Path, key_pem: &str) -> anyhow::Result<()> {
    pki::write_private(key, key_pem)?;
    if let Err(error) = pki::write_public(cert, cert_pem, false) {
        let _ = std::fs::remove_file(key);
        return Err(error.into());
    }
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// An `--out` must be a plain file name stem, not a path.
fn check_stem(stem: &str) -> anyhow::Result<()> {
    if stem.is_empty() || stem.starts_with('.') || stem.contains('/') || stem.contains('\0') {
        bail!(
            "--out {stem:?} must be a file name stem such as `historian` (no `/`, not starting with \
             `.`); the files go to --dir"
        );
    }
    Ok(())
}

/// A file name stem from a certificate name: URIs lose their scheme separators.
fn default_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches(['.', '_']);
    if stem.is_empty() {
        "client".to_owned()
    } else {
        stem.to_owned()
    }
}

/// A TOML basic string (JSON escapes are valid TOML).
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}
