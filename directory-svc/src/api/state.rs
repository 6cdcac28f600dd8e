//! What every handler is given: the directory and the bearer token the registration routes expect.

use std::sync::Arc;

use crate::directory::Directory;

#[derive(Clone)]
pub struct ApiState {
    pub directory: Directory,
    pub token: Arc<str>,
}
