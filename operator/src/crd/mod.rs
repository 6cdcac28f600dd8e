//! The `atfleet.dev/v1alpha1` custom resources and their YAML rendering.

mod atsign;
mod class;
mod common;

pub use atsign::{Atsign, AtsignSpec, AtsignStatus, CertificateStatus, Phase, RegistrationStatus};
pub use class::{
    AtServerClass, AtServerClassSpec, ImagePullPolicy, RolloutPolicy, RolloutStrategy,
    SchedulingSpec,
};
pub use common::{
    ExposureMode, ExposureSpec, GatewayRef, IssuerKind, IssuerRef, RetentionPolicy, StorageSpec,
    TlsSpec,
};

use kube::CustomResourceExt;

/// The CRD manifests `crdgen` writes, as `(file name, YAML)`.
pub fn manifests() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    Ok(vec![
        ("atsign.yaml", serde_yaml::to_string(&Atsign::crd())?),
        (
            "atserverclass.yaml",
            serde_yaml::to_string(&AtServerClass::crd())?,
        ),
    ])
}
