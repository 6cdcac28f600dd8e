//! A test certificate authority writing PEM files, and leaves it signs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files of one leaf certificate and its key.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA whose certificate is at `dir/ca.pem`; it signs leaves into `dir`.
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_path: PathBuf,
    pub ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A fresh CA named `common_name`, written to `dir/ca.pem`.
    pub fn new(dir: &Path, common_name: &str) -> TestCa {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.distinguished_name.push(DnType::CommonName, common_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(ca, key).expect("self-signed CA");
        let ca_pem = issuer.as_ref().pem();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, &ca_pem).expect("write ca.pem");
        TestCa {
            dir: dir.to_path_buf(),
            ca_path,
            ca_pem,
            issuer,
        }
    }

    /// Signs a leaf for `names` (DNS names or IP addresses) with `common_name`, usable by servers
    /// and clients, and writes it to `leaf`'s paths: the key first, since a certificate reloader
    /// reads both when either changes.
    pub fn issue(&self, names: &[&str], common_name: &str, leaf: &Leaf) {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write leaf key");
        std::fs::write(&leaf.cert, cert.pem()).expect("write leaf certificate");
    }

    /// A leaf naming only `host` (its common name too), at `dir/<host>.pem` and `dir/<host>.key`.
    pub fn leaf(&self, host: &str) -> Leaf {
        let leaf = Leaf {
            cert: self.dir.join(format!("{host}.pem")),
            key: self.dir.join(format!("{host}.key")),
        };
        self.issue(&[host], host, &leaf);
        leaf
    }

    /// A leaf for `localhost` and `127.0.0.1` with `common_name`, at `dir/cert.pem` and
    /// `dir/key.pem`.
    pub fn localhost_leaf(&self, common_name: &str) -> Leaf {
        let leaf = Leaf {
            cert: self.dir.join("cert.pem"),
            key: self.dir.join("key.pem"),
        };
        self.issue(&["localhost", "127.0.0.1"], common_name, &leaf);
        leaf
    }
}
