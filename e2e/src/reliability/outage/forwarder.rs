//! The address the directories know the database by: a TCP forwarder on loopback that the harness
//! points at the current primary, as a Kubernetes Service (or a VIP, or pgbouncer) in front of a
//! Postgres pair is switched by whatever promotes the standby.
//!
//! Switching cuts every forwarded connection: they led to a server that was just stopped hard,
//! and a client must find out at once rather than wait out TCP keepalives.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::super::error::ReliabilityError;

pub struct Forwarder {
    pub addr: SocketAddr,
    target: watch::Sender<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(target: SocketAddr) -> Result<Forwarder, ReliabilityError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ReliabilityError::io("127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(ReliabilityError::io("127.0.0.1:0"))?;
        let (tx, rx) = watch::channel(target);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(forward(conn, rx.clone()));
            }
        });
        Ok(Forwarder {
            addr,
            target: tx,
            task,
        })
    }

    /// New connections go to `to`; existing ones are cut.
    pub fn switch(&self, to: SocketAddr) {
        self.target.send_replace(to);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, mut target: watch::Receiver<SocketAddr>) {
    let to = *target.borrow_and_update();
    // A refused connection is closed at once, as a Service with no ready endpoint does.
    let Ok(mut server) = TcpStream::connect(to).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = target.changed() => {}
    }
}
