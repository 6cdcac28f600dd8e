//! Free loopback ports for binaries that take a fixed `--http-listen`.

use std::net::TcpListener;

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("bound address").port()
}

/// A port the OS had free a moment ago.
pub fn free_port() -> u16 {
    port(&TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
}

/// Two distinct free ports (both held while choosing, so they differ).
pub fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    (port(&a), port(&b))
}
