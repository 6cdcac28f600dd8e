//! Async TLS client for atServers and the atDirectory.
