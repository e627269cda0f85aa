//! Round trips counted on the wire: a loopback proxy in front of
//! PostgreSQL that reads the client's half of the protocol and counts the
//! messages after which the client waits for the server (`Sync`, which ends
//! each extended-protocol exchange, and the simple `Query`). Statement
//! counters miss what a driver does by itself (pings before use, prepares);
//! this does not.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use durable::sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{CliError, Result};

/// Round trips seen by one proxy, over all its connections.
#[derive(Debug, Default)]
pub(crate) struct WireCounter {
    round_trips: AtomicU64,
}

impl WireCounter {
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }
}

/// Where clients of the proxy connect instead of the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proxy {
    port: u16,
}

impl Proxy {
    /// Point connect options at the proxy, in plain text (the proxy must
    /// read the messages).
    pub(crate) fn apply(self, options: PgConnectOptions) -> PgConnectOptions {
        options
            .host("127.0.0.1")
            .port(self.port)
            .ssl_mode(PgSslMode::Disable)
    }
}

/// Start a proxy to the server of a PostgreSQL URL. `None` when the server
/// is reached through a Unix socket (nothing to proxy).
pub(crate) async fn proxy_for(url: &str) -> Result<Option<(Proxy, Arc<WireCounter>)>> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| CliError::Usage(format!("cannot parse the PostgreSQL URL: {e}")))?;
    let host = options.get_host().to_string();
    if host.starts_with('/') {
        return Ok(None);
    }
    let upstream = format!("{host}:{}", options.get_port());
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::io("bind the wire-counting proxy", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::io("wire-counting proxy address", e))?
        .port();
    let counter = Arc::new(WireCounter::default());
    let c = counter.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(relay(client, server, c.clone()));
        }
    });
    Ok(Some((Proxy { port }, counter)))
}

/// Forward both directions; parse the client's messages as they pass.
async fn relay(client: TcpStream, server: TcpStream, counter: Arc<WireCounter>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut server_rx, &mut client_tx).await });
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let waits = parser.feed(&buf[..n]);
        counter.round_trips.fetch_add(waits, Ordering::SeqCst);
        if server_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = server_tx.shutdown().await;
    let _ = down.await;
}

/// The client's side of the protocol: untyped start-up messages (length
/// first), then typed ones (a type byte, then a length that counts itself).
#[derive(Debug, Default)]
struct Parser {
    started: bool,
    /// Bytes of the current message's header read so far.
    header: Vec<u8>,
    /// Body bytes of the current message still to skip.
    remaining: usize,
}

/// `Sync` and `Query`: the client waits for the server after them.
fn waits_for_server(kind: u8) -> bool {
    kind == b'S' || kind == b'Q'
}

impl Parser {
    /// Consume bytes; return how many round-trip messages completed.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut waits = 0;
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(bytes.len());
                self.remaining -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            // Typed messages have a 5-byte header; start-up ones 8 bytes
            // (length and a protocol code).
            let header_len = if self.started { 5 } else { 8 };
            let take = (header_len - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() < header_len {
                break;
            }
            let h = std::mem::take(&mut self.header);
            if self.started {
                let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                self.remaining = len.saturating_sub(4);
                if waits_for_server(h[0]) {
                    waits += 1;
                }
            } else {
                let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                self.remaining = len.saturating_sub(8);
                // SSL and GSS encryption requests are followed by another
                // start-up message; the start-up message proper (protocol
                // 3.x) by typed messages.
                if code >> 16 == 3 {
                    self.started = true;
                }
            }
        }
        waits
    }
}

#[cfg(test)]
mod tests {
    use super::Parser;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn counts_sync_and_query_across_split_reads() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&80_877_103u32.to_be_bytes()); // SSLRequest
        stream.extend_from_slice(&13u32.to_be_bytes());
        stream.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
        stream.extend_from_slice(b"user\0");
        stream.extend(typed(b'P', b"\0SELECT 1\0\0\0"));
        stream.extend(typed(b'B', b"\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        stream.extend(typed(b'S', b""));
        stream.extend(typed(b'Q', b"SELECT 'S'\0"));
        let mut parser = Parser::default();
        let mut total = 0;
        for chunk in stream.chunks(3) {
            total += parser.feed(chunk);
        }
        assert_eq!(total, 2);
        let mut whole = Parser::default();
        assert_eq!(whole.feed(&stream), 2);
    }
}
