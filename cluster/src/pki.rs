//! The cluster's certificates and keys, made fresh for every state directory: one CA that signs
//! the apiserver's serving certificate and every client certificate, and the key pair that signs
//! and verifies service-account tokens.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::ClusterError;

/// A certificate and its key as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Who a client certificate names: Kubernetes takes the user from the common name and the
/// groups from the organizations.
pub struct Identity<'a> {
    pub user: &'a str,
    pub groups: &'a [&'a str],
}

pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn pki_error(what: &str) -> impl FnOnce(rcgen::Error) -> ClusterError + '_ {
    move |e| ClusterError::Pki(format!("{what}: {e}"))
}

impl Pki {
    /// A new CA written to `dir/ca.crt` (and its key to `dir/ca.key`).
    pub fn create(dir: &Path) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(dir).map_err(ClusterError::io(dir))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(pki_error("CA parameters"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "atfleet-local-kubernetes-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(pki_error("CA key"))?;
        let key_pem = key.serialize_pem();
        let issuer =
            CertifiedIssuer::self_signed(params, key).map_err(pki_error("self-signed CA"))?;
        let ca_pem = issuer.as_ref().pem();
        let ca_cert = dir.join("ca.crt");
        write(&dir.join("ca.key"), &key_pem)?;
        write(&ca_cert, &ca_pem)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_cert,
            ca_pem,
            issuer,
        })
    }

    /// A serving certificate for `names` (DNS names or IP addresses) at `dir/<file>.{crt,key}`.
    pub fn serving(
        &self,
        file: &str,
        common_name: &str,
        names: &[&str],
    ) -> Result<Pair, ClusterError> {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).map_err(pki_error("serving parameters"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(file, params)
    }

    /// A client certificate for `who` at `dir/<file>.{crt,key}`.
    pub fn client(&self, file: &str, who: &Identity<'_>) -> Result<Pair, ClusterError> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(pki_error("client parameters"))?;
        params.distinguished_name.push(DnType::CommonName, who.user);
        for group in who.groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(file, params)
    }

    fn sign(&self, file: &str, mut params: CertificateParams) -> Result<Pair, ClusterError> {
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().map_err(pki_error("leaf key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(pki_error("signing"))?;
        let pair = Pair {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        write(&pair.key, &key.serialize_pem())?;
        write(&pair.cert, &cert.pem())?;
        Ok(pair)
    }

    /// The service-account token key pair (ECDSA P-256, ES256 tokens): the private key at
    /// `dir/sa.key` for the apiserver's signer and the controller manager's token controller, the
    /// public key at `dir/sa.pub` for verification.
    pub fn service_account_keys(&self) -> Result<Pair, ClusterError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(pki_error("service-account key"))?;
        let pair = Pair {
            cert: self.dir.join("sa.pub"),
            key: self.dir.join("sa.key"),
        };
        write(&pair.key, &key.serialize_pem())?;
        write(&pair.cert, &key.public_key_pem())?;
        Ok(pair)
    }
}

fn write(path: &Path, contents: &str) -> Result<(), ClusterError> {
    std::fs::write(path, contents).map_err(ClusterError::io(path))
}
