//! Object storage: one global resourceVersion counter, a bounded history of change events for watch
//! resumption, and live watcher channels. Every mutation happens under the caller's lock, so the
//! history and the channels see events in resourceVersion order without gaps.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::resources::GroupResource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. `old` is the object before the change, so selector-filtered watches can turn a
/// modification that leaves the selection into a DELETED event.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub kind: EventType,
    pub object: Value,
    pub old: Option<Value>,
}

/// `(namespace, name)`; namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

pub type EventSender = mpsc::UnboundedSender<Arc<Event>>;

pub struct Store {
    rv: u64,
    objects: BTreeMap<GroupResource, BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Every event with a resourceVersion above this one is still in `history`.
    floor: u64,
    watchers: Vec<(GroupResource, EventSender)>,
}

/// Why a watch cannot start from the requested resourceVersion.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    pub requested: u64,
    pub oldest: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 1,
            watchers: Vec::new(),
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(gr).and_then(|m| m.get(key))
    }

    /// Objects of one resource in key order, optionally limited to a namespace.
    pub fn list<'a>(
        &'a self,
        gr: &GroupResource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.objects
            .get(gr)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
    }

    /// Every stored object of every resource.
    pub fn all(&self) -> impl Iterator<Item = (&GroupResource, &ObjectKey, &Value)> {
        self.objects
            .iter()
            .flat_map(|(gr, m)| m.iter().map(move |(k, v)| (gr, k, v)))
    }

    /// Stores `object` (create or replace), stamping a fresh resourceVersion; returns the stored copy.
    pub fn put(&mut self, gr: &GroupResource, key: ObjectKey, mut object: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let old = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key, object.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(Event {
            rv,
            gr: gr.clone(),
            kind,
            object: object.clone(),
            old,
        });
        object
    }

    /// Removes an object; the DELETED event carries a fresh resourceVersion as the real server does.
    pub fn remove(&mut self, gr: &GroupResource, key: &ObjectKey) -> Option<Value> {
        let mut object = self.objects.get_mut(gr)?.remove(key)?;
        self.rv += 1;
        let rv = self.rv;
        let old = object.clone();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        self.emit(Event {
            rv,
            gr: gr.clone(),
            kind: EventType::Deleted,
            object: object.clone(),
            old: Some(old),
        });
        Some(object)
    }

    fn emit(&mut self, event: Event) {
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.floor = dropped.rv;
            }
        }
        self.watchers
            .retain(|(gr, tx)| *gr != event.gr || tx.send(event.clone()).is_ok());
        self.watchers.retain(|(_, tx)| !tx.is_closed());
    }

    /// Events of `gr` after `rv`, or `TooOld` when the history no longer reaches back that far.
    pub fn events_since(&self, gr: &GroupResource, rv: u64) -> Result<Vec<Arc<Event>>, TooOld> {
        if rv < self.floor {
            return Err(TooOld {
                requested: rv,
                oldest: self.floor,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > rv && e.gr == *gr)
            .cloned()
            .collect())
    }

    /// Registers a live watcher for `gr`; it receives every event emitted from now on.
    pub fn subscribe(&mut self, gr: &GroupResource) -> mpsc::UnboundedReceiver<Arc<Event>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.watchers.push((gr.clone(), tx));
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    #[test]
    fn history_window_and_too_old() {
        let mut s = Store::new(2);
        for i in 0..4 {
            s.put(
                &gr(),
                ("ns".into(), format!("c{i}")),
                json!({"metadata": {}}),
            );
        }
        // rvs 2..=5 were issued; only the last two events remain.
        assert_eq!(s.current_rv(), 5);
        assert_eq!(s.events_since(&gr(), 3).map(|v| v.len()), Ok(2));
        assert_eq!(
            s.events_since(&gr(), 2).map(|v| v.len()),
            Err(TooOld {
                requested: 2,
                oldest: 3
            })
        );
    }

    #[test]
    fn subscribers_get_later_events() {
        let mut s = Store::new(10);
        let mut rx = s.subscribe(&gr());
        let stored = s.put(&gr(), ("ns".into(), "a".into()), json!({"metadata": {}}));
        assert_eq!(stored["metadata"]["resourceVersion"], "2");
        s.remove(&gr(), &("ns".into(), "a".into()));
        assert_eq!(rx.try_recv().map(|e| e.kind), Ok(EventType::Added));
        assert_eq!(
            rx.try_recv().map(|e| (e.kind, e.rv)),
            Ok((EventType::Deleted, 3))
        );
    }
}
