//! From global options to an authenticated connection: TLS trust, address resolution (directory or
//! `--server`), keys file, PKAM.

use std::path::{Path, PathBuf};

use at_protocol::client::{AtConnection, ClientConfig, RootClient, TlsOptions};
use at_protocol::crypto::{AtKeys, AtKeysFile, PkamSigner};
use at_protocol::AtSign;

use crate::atsign_arg::parse_atsign;
use crate::cli::Global;
use crate::error::{CtlError, Result};
use crate::keysfile;

/// Where the system CA bundle usually lives, for when `--ca-bundle` is not given.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Everything derived from the global options.
pub struct Context {
    pub global: Global,
    pub config: ClientConfig,
}

/// `host:port` split, with a usage error naming the flag.
pub fn split_host_port(text: &str, flag: &str) -> Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| CtlError::usage(format!("{flag} must be host:port, got {text:?}")))?;
    let port = port
        .parse()
        .map_err(|_| CtlError::usage(format!("{flag}: invalid port in {text:?}")))?;
    if host.is_empty() {
        return Err(CtlError::usage(format!("{flag}: empty host in {text:?}")));
    }
    Ok((host.to_owned(), port))
}

impl Context {
    pub fn new(global: Global) -> Result<Self> {
        let tls = match &global.ca_bundle {
            Some(path) => TlsOptions::from_ca_pem_file(path)
                .map_err(|e| CtlError::usage(format!("--ca-bundle {}: {e}", path.display())))?,
            None => {
                let found = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists());
                let path = found.ok_or_else(|| {
                    CtlError::usage("no --ca-bundle given and no system CA bundle found")
                })?;
                TlsOptions::from_ca_pem_file(path)
                    .map_err(|e| CtlError::usage(format!("{}: {e}", path.display())))?
            }
        };
        let config =
            ClientConfig::new(tls).map_err(|e| CtlError::usage(format!("TLS setup: {e}")))?;
        Ok(Self { global, config })
    }

    pub fn keys_dir(&self) -> Result<PathBuf> {
        keysfile::keys_dir(self.global.keys_dir.as_deref())
    }

    /// Who the user acts as: `--atsign`, else `fallback` (e.g. the key's owner), else the only keys
    /// file in the keys folder.
    pub fn me(&self, fallback: Option<&AtSign>) -> Result<AtSign> {
        if let Some(a) = &self.global.atsign {
            return parse_atsign(a);
        }
        if let Some(a) = fallback {
            return Ok(a.clone());
        }
        keysfile::only_atsign(&self.keys_dir()?)
    }

    /// The directory's answer for `atsign`.
    pub async fn lookup(&self, atsign: &AtSign) -> Result<(String, u16)> {
        let root = self.global.root_server.as_deref().ok_or_else(|| {
            CtlError::usage("no directory: pass --root-server host:port (or ATCTL_ROOT_SERVER)")
        })?;
        let (host, port) = split_host_port(root, "--root-server")?;
        let client = RootClient::new(self.config.clone(), host, port);
        match client.lookup(atsign).await {
            Ok(Some(addr)) => Ok(addr),
            Ok(None) => Err(CtlError::not_found(format!(
                "{atsign} is not registered in the directory at {root}; check the atSign, or that \
                 the operator has registered it (kubectl get atsign)"
            ))),
            Err(e) => Err(CtlError::client(&format!("asking the directory {root}"), e)),
        }
    }

    /// The address of `atsign`'s server: `--server` when it is this user's own server, else the
    /// directory.
    pub async fn server_of(&self, atsign: &AtSign, own: bool) -> Result<(String, u16)> {
        match (&self.global.server, own) {
            (Some(s), true) => split_host_port(s, "--server"),
            _ => self.lookup(atsign).await,
        }
    }

    /// An unauthenticated connection to `atsign`'s server.
    pub async fn connect(&self, atsign: &AtSign, own: bool) -> Result<AtConnection> {
        let (host, port) = self.server_of(atsign, own).await?;
        AtConnection::connect(&self.config, &host, port)
            .await
            .map_err(|e| {
                CtlError::client(&format!("connecting to {atsign}'s server {host}:{port}"), e)
            })
    }

    /// Loads and decrypts `atsign`'s keys file.
    pub fn load_keys(&self, atsign: &AtSign) -> Result<AtKeys> {
        let path = keysfile::path_for(&self.keys_dir()?, atsign);
        if !path.exists() {
            return Err(CtlError::usage(format!(
                "no keys file for {atsign} at {}: onboard first (`atctl onboard {atsign}`) or pass \
                 --keys-dir",
                path.display()
            )));
        }
        let file = AtKeysFile::load(&path)
            .map_err(|e| CtlError::usage(format!("reading {}: {e}", path.display())))?;
        file.decrypt()
            .map_err(|e| CtlError::usage(format!("decrypting {}: {e}", path.display())))
    }

    /// A PKAM-authenticated session as `me`.
    pub async fn authenticated(&self, me: &AtSign) -> Result<Session> {
        let keys = self.load_keys(me)?;
        let mut conn = self.connect(me, true).await?;
        pkam(&mut conn, me, &keys).await?;
        Ok(Session {
            me: me.clone(),
            keys,
            conn,
        })
    }
}

/// PKAM with this device's keys (APKAM when the keys carry an enrollment id).
pub async fn pkam(conn: &mut AtConnection, me: &AtSign, keys: &AtKeys) -> Result<()> {
    let signer = PkamSigner::rsa(keys.pkam.private_key().clone());
    conn.authenticate_pkam(me, &signer, keys.enrollment_id.as_deref())
        .await
        .map_err(|e| {
            let mut err = CtlError::client(&format!("PKAM authentication as {me}"), e);
            if err.class == crate::error::Class::NotFound || err.class == crate::error::Class::Other
            {
                err.class = crate::error::Class::Auth;
            }
            err
        })
}

/// An authenticated connection with the keys that opened it.
pub struct Session {
    pub me: AtSign,
    pub keys: AtKeys,
    pub conn: AtConnection,
}

impl Session {
    /// Sends a command built with `at_protocol::Command` and returns the `data:` text.
    pub async fn data(&mut self, command: &str, what: &str) -> Result<String> {
        self.conn
            .send_data(command)
            .await
            .map_err(|e| CtlError::client(what, e))
    }
}
