//! The atProtocol engine shared by every atfleet binary.
