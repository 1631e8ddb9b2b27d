//! What every daemon's command line shares: the policy file, logging and the user to run as.
//! Each daemon flattens [`CommonArgs`] into its own arguments (`#[command(flatten)]`).

use std::path::PathBuf;

/// Arguments common to `weir-send`, `weir-recv` and `weir-deliver`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The conduit's policy file (the same file on both hosts).
    #[arg(short, long, default_value = "/etc/weir/policy.toml")]
    pub policy: PathBuf,
    /// Log filter, e.g. `info`, `debug`, `weir=debug` (RUST_LOG wins when set).
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// Switch to this unprivileged user once the sockets are bound and the files that need
    /// privileges are open (start as root to bind privileged ports).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

impl CommonArgs {
    /// Starts logging as asked.
    pub fn init_logging(&self) {
        crate::logging::init(&self.log, self.log_json);
    }

    /// Drops to `--user` if given, else warns when running as root.
    pub fn drop_privileges(&self) -> Result<(), crate::privilege::PrivilegeError> {
        match &self.user {
            Some(user) => crate::privilege::drop_to(user),
            None => {
                crate::privilege::warn_if_root();
                Ok(())
            }
        }
    }
}

/// The process's exit for a daemon's `run` result: success, or its error chain printed as
/// `name: error` (alternate form: every cause) and exit status 2.
pub fn exit_code<E: std::fmt::Display>(name: &str, result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
