//! A throw-away PKI for the demo, the benchmark and the tests: a CA, a server certificate for
//! loopback (`localhost`, `127.0.0.1`, `::1`) and client certificates on demand, written as PEM
//! files into one directory.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::consumer::client::{ClientOptions, Transport};
use crate::pki::{write_private, write_public, Ca, Usage, Validity};

/// Files of a throw-away PKI.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    ca: Ca,
    /// The CA certificate (what servers and consumers trust).
    pub ca_cert: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
}

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The key (PEM).
    pub key: PathBuf,
}

fn other(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

impl TestPki {
    /// Creates the CA and the loopback server certificate in `dir`, or loads them if a
    /// previous run left them there.
    pub fn create(dir: &Path, ca_name: &str) -> io::Result<TestPki> {
        std::fs::create_dir_all(dir)?;
        let ca_cert = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        let ca = if ca_cert.exists() && ca_key.exists() {
            Ca::load(&ca_cert, &ca_key).map_err(other)?
        } else {
            let ca = Ca::generate(ca_name, Validity::days_from_now(30)).map_err(other)?;
            write_private(&ca_key, ca.key_pem()).map_err(other)?;
            write_public(&ca_cert, ca.cert_pem(), true).map_err(other)?;
            ca
        };
        let pki = TestPki {
            dir: dir.to_path_buf(),
            ca,
            ca_cert,
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        if !pki.server_cert.exists() || !pki.server_key.exists() {
            let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
            pki.issue("server", Usage::Server, &names, Validity::days_from_now(30))?;
        }
        Ok(pki)
    }

    /// A `[recv.serve]` table serving TLS and QUIC on `addr` with this PKI's files, followed by
    /// `extra` lines (timeouts, limits). It must come last in `[recv]`.
    pub fn serve_table(&self, addr: SocketAddr, extra: &str) -> String {
        format!(
            "[recv.serve]\ntls = \"{addr}\"\nquic = \"{addr}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             client_ca = \"{}\"\n{extra}\n",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca_cert.display(),
        )
    }

    /// How `client` reaches a loopback server of this PKI (its certificate names `localhost`).
    pub fn client_options(
        &self,
        client: &ClientFiles,
        server: SocketAddr,
        transport: Transport,
    ) -> ClientOptions {
        ClientOptions {
            server,
            server_name: "localhost".to_owned(),
            cert: client.cert.clone(),
            key: client.key.clone(),
            ca: self.ca_cert.clone(),
            transport,
        }
    }

    /// A client certificate for `identity`, valid for 30 days (reused if present).
    pub fn client(&self, identity: &str) -> io::Result<ClientFiles> {
        let files = self.files(identity);
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        self.issue(
            identity,
            Usage::Client,
            &[identity.to_owned()],
            Validity::days_from_now(30),
        )
    }

    /// A client certificate for `identity` with the given validity, under the file stem `stem`.
    pub fn client_with(&self, stem: &str, identity: &str, validity: Validity) -> io::Result<ClientFiles> {
        self.issue(stem, Usage::Client, &[identity.to_owned()], validity)
    }

    fn files(&self, stem: &str) -> ClientFiles {
        ClientFiles {
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}.key")),
        }
    }

    fn issue(
        &self,
        stem: &str,
        usage: Usage,
        names: &[String],
        validity: Validity,
    ) -> io::Result<ClientFiles> {
        let files = self.files(stem);
        let issued = self.ca.issue(usage, names, validity).map_err(other)?;
        let _ = std::fs::remove_file(&files.key);
        write_private(&files.key, &issued.key_pem).map_err(other)?;
        write_public(&files.cert, &issued.cert_pem, true).map_err(other)?;
        Ok(files)
    }
}
