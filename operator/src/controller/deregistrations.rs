//! Which deletions already withdrew their atSign from the directory.

/// The Atsigns (by uid) whose deletion already told the directory, so the finalizer's later passes
/// (waiting for the pod to stop) do not deregister again. Forgotten when the finalizer is removed;
/// after an operator restart one more call is harmless.
#[derive(Debug, Default)]
pub struct Deregistrations(std::sync::Mutex<std::collections::HashSet<String>>);

impl Deregistrations {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, uid: &str) -> bool {
        !uid.is_empty() && self.set().contains(uid)
    }

    pub fn insert(&self, uid: &str) {
        if !uid.is_empty() {
            self.set().insert(uid.to_owned());
        }
    }

    pub fn forget(&self, uid: &str) {
        self.set().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deregistration_per_deletion() {
        let d = Deregistrations::default();
        assert!(!d.contains("u1"));
        d.insert("u1");
        assert!(
            d.contains("u1"),
            "later passes of the finalizer skip the directory"
        );
        assert!(!d.contains("u2"));
        d.forget("u1");
        assert!(
            !d.contains("u1"),
            "a new Atsign with the same uid is impossible, but memory is freed"
        );
        d.insert("");
        assert!(!d.contains(""), "an object without a uid is never skipped");
    }
}
