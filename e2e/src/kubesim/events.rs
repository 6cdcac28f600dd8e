//! core/v1 and events.k8s.io/v1 Events are one resource stored in the core form, as in the real
//! apiserver: kube-runtime's recorder writes the new form and `kubectl describe` reads the old one.

use serde_json::Value;

/// `(core/v1 field, events.k8s.io/v1 field)`; every other field has the same name in both.
const RENAMES: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename(mut object: Value, to_core: bool) -> Value {
    if let Some(m) = object.as_object_mut() {
        for (core, new) in RENAMES {
            let (from, to) = if to_core { (new, core) } else { (core, new) };
            if let Some(v) = m.remove(from) {
                m.insert(to.to_string(), v);
            }
        }
    }
    object
}

/// events.k8s.io/v1 form to the stored core/v1 form.
pub fn to_core(object: Value) -> Value {
    rename(object, true)
}

/// Stored core/v1 form to the events.k8s.io/v1 form.
pub fn from_core(object: Value) -> Value {
    rename(object, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let new = json!({"regarding": {"name": "x"}, "note": "hi", "reason": "Made", "reportingController": "op"});
        let core = to_core(new.clone());
        assert_eq!(
            core,
            json!({"involvedObject": {"name": "x"}, "message": "hi", "reason": "Made", "reportingComponent": "op"})
        );
        assert_eq!(from_core(core), new);
    }
}
