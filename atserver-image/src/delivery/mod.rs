//! Durable delivery of sent notifications to peers' atServers (§8.2, §8.3): the queue is the
//! notification store itself (status `queued`), so a restart resumes where it stopped.

pub mod command;
pub mod engine;
pub mod latest;
pub mod settings;

pub use engine::Engine;
pub use settings::DeliverySettings;
