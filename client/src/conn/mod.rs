//! One connection to one broker: TCP connect with a timeout, the ApiVersions
//! handshake, and pipelined requests matched to responses by correlation id.
//!
//! A reader task and a writer task own the two halves of the socket, so a
//! large request being written never stops responses from being read (the
//! broker mutes a connection while its response is unsent; a single task
//! doing both could deadlock). When either side fails, every request in
//! flight fails with the same error and the connection is marked closed; the
//! [`crate::Client`] then opens a new one.

mod inflight;
mod sasl;
mod throttle;
mod versions;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use skotch_protocol::codec::Writer;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::frame::FrameDecoder;
use skotch_protocol::messages::{
    request_header_version, response_header_version, ApiKey, ApiVersionsRequest,
    ApiVersionsResponse, Message, Request,
};
use skotch_protocol::Reader;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use inflight::{InFlight, Mismatch};
pub use versions::BrokerVersions;

use crate::error::{Error, Result, TlsFailure};
use crate::security::Security;
use throttle::Throttle;

/// How a connection reaches its broker and what it may wait for.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `client.id` sent in request headers.
    pub client_id: String,
    /// Limit for TCP connect plus the ApiVersions handshake.
    pub connect_timeout: Duration,
    /// Limit for each request's response.
    pub request_timeout: Duration,
    /// Largest response frame accepted, in bytes.
    pub max_response_size: usize,
    /// TLS and SASL, per `security.protocol`.
    pub security: Security,
}

/// The body of a response, still to be decoded.
type Reply = oneshot::Sender<Result<Bytes>>;

struct Pending {
    header_version: i16,
    reply: Reply,
}

struct Outgoing {
    frame: BytesMut,
    /// More of the frame after `frame`, shared rather than copied (the
    /// producer's record batches); `frame`'s size prefix counts them.
    tail: Vec<Bytes>,
    header_version: i16,
    /// Gets the response body, or for requests the broker does not answer
    /// (produce with acks=0) an empty body once the request is written.
    reply: Reply,
    expects_response: bool,
}

#[derive(Default)]
struct Shared {
    inflight: Mutex<InFlight<Pending>>,
    /// The first error that closed the connection.
    closed: Mutex<Option<Error>>,
    /// When the broker lets us send again (KIP-219).
    throttle: Throttle,
}

impl Shared {
    /// Close with `err`: fail everything in flight. Later calls keep the
    /// first error.
    fn fail(&self, err: Error) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        if closed.is_none() {
            *closed = Some(err.clone());
        }
        drop(closed);
        let pending: Vec<Pending> = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for p in pending {
            let _ = p.reply.send(Err(err.clone()));
        }
    }

    fn closed_error(&self) -> Option<Error> {
        self.closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What sending a request needs; shared with the re-authentication task.
struct Inner {
    addr: String,
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    opts: ConnectOptions,
    /// Requests hold it shared while they are queued; a re-authentication
    /// (KIP-368) holds it exclusively, so that nothing is queued between its
    /// SaslHandshake and its last SaslAuthenticate, as the broker requires.
    /// Requests already queued or in flight are unaffected: the broker
    /// answers them before it reads the SaslHandshake.
    gate: tokio::sync::RwLock<()>,
    /// Completed re-authentications, for monitoring and tests.
    reauthentications: std::sync::atomic::AtomicU64,
}

/// A live connection to one broker. Cheap to share behind an `Arc`; dropping
/// the last reference closes the socket.
pub struct Connection {
    inner: Arc<Inner>,
    versions: BrokerVersions,
    /// Reader and writer, plus the re-authentication timer when the broker
    /// gave the SASL session a lifetime.
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Our ApiVersions range (v3+ carries the client software name, KIP-511).
const API_VERSIONS_MAX: i16 = 4;

impl Connection {
    /// Open a connection to `host:port`: TCP, then TLS and SASL as
    /// `opts.security` says, with ApiVersions negotiated in between (the
    /// SaslHandshake version depends on it, as in Java).
    ///
    /// Errors: [`Error::Connect`] if the socket cannot be opened or the
    /// handshakes do not finish within `connect_timeout`; [`Error::Tls`],
    /// [`Error::Authentication`] and [`Error::SaslMechanismNotEnabled`]
    /// when the broker cannot be trusted or refuses the credentials.
    pub async fn connect(host: &str, port: u16, opts: ConnectOptions) -> Result<Self> {
        let addr = format!("{host}:{port}");
        let timeout_ms = opts.connect_timeout.as_millis() as u64;
        let connect_err = |reason: String| Error::Connect {
            addr: addr.clone(),
            reason,
        };
        let stream = match tokio::time::timeout(
            opts.connect_timeout,
            TcpStream::connect((host, port)),
        )
        .await
        {
            Err(_) => return Err(connect_err(format!("timed out after {timeout_ms} ms"))),
            Ok(Err(e)) => return Err(connect_err(e.to_string())),
            Ok(Ok(s)) => s,
        };
        // Kafka requests are small and latency-sensitive; Java sets this too.
        let _ = stream.set_nodelay(true);
        let connect_timeout = opts.connect_timeout;
        let setup = async {
            match opts.security.tls.clone() {
                Some(tls) => {
                    let stream = tls.connect(host, &addr, stream).await?;
                    // With TLS 1.3 the broker judges our client certificate
                    // after our side of the handshake is done: its refusal
                    // is the first thing read, during ApiVersions.
                    Self::handshake(stream, addr.clone(), opts)
                        .await
                        .map_err(|e| match &e {
                            Error::Io {
                                source: Some(io), ..
                            } => tls.classify_io_error(&addr, io).unwrap_or(e),
                            _ => e,
                        })
                }
                None => Self::handshake(stream, addr.clone(), opts).await,
            }
        };
        match tokio::time::timeout(connect_timeout, setup).await {
            Err(_) => Err(connect_err(format!(
                "connection set-up (TLS, ApiVersions, SASL) timed out after {timeout_ms} ms"
            ))),
            Ok(r) => r,
        }
    }

    /// Start the I/O tasks on an already-open transport (TCP or TLS), run
    /// the ApiVersions handshake, then SASL authentication if configured.
    pub async fn handshake<S>(stream: S, addr: String, opts: ConnectOptions) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(64);
        let reader = tokio::spawn(read_loop(
            rd,
            shared.clone(),
            addr.clone(),
            opts.max_response_size,
            opts.security.sasl.is_some(),
        ));
        let writer = tokio::spawn(write_loop(wr, rx, shared.clone(), addr.clone()));
        let mut conn = Self {
            inner: Arc::new(Inner {
                addr,
                tx,
                shared,
                opts,
                gate: tokio::sync::RwLock::new(()),
                reauthentications: Default::default(),
            }),
            versions: BrokerVersions::default(),
            tasks: vec![reader, writer],
        };
        conn.versions = conn.negotiate().await?;
        if let Some(creds) = conn.inner.opts.security.sasl.clone() {
            let session = sasl::authenticate(&conn.inner, &conn.versions, &creds, false).await?;
            if let Some(lifetime) = session {
                conn.tasks.push(tokio::spawn(sasl::reauthenticate(
                    Arc::downgrade(&conn.inner),
                    conn.versions.clone(),
                    creds,
                    lifetime,
                )));
            }
        }
        Ok(conn)
    }

    /// ApiVersions: ask at our highest version; a broker that does not know
    /// it answers UNSUPPORTED_VERSION in a v0 body that lists its own range
    /// for ApiVersions, and we ask again at that version.
    async fn negotiate(&self) -> Result<BrokerVersions> {
        let addr = &self.inner.addr;
        let req = ApiVersionsRequest {
            client_software_name: "skotch".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
        };
        let mut version = API_VERSIONS_MAX;
        for _ in 0..2 {
            let body = self
                .inner
                .send_raw(&req, version, true, self.inner.opts.request_timeout, true)
                .await?;
            let parsed = ApiVersionsResponse::decode(&mut Reader::new(body.clone()), version);
            match parsed {
                Ok(resp) if resp.error_code == 0 => {
                    return Ok(BrokerVersions::from_response(&resp))
                }
                _ => {
                    let v0 = ApiVersionsResponse::decode(&mut Reader::new(body), 0).map_err(
                        |source| Error::Decode {
                            addr: addr.clone(),
                            source,
                        },
                    )?;
                    if ErrorCode(v0.error_code) != ErrorCode::UNSUPPORTED_VERSION {
                        return Err(Error::from_code(v0.error_code, None, || {
                            format!("ApiVersions with {addr}")
                        })
                        .unwrap_or_else(|| Error::Config("ApiVersions failed".into())));
                    }
                    let theirs = BrokerVersions::from_response(&v0);
                    version = theirs.pick(addr, ApiKey::ApiVersions, (0, API_VERSIONS_MAX))?;
                }
            }
        }
        Err(Error::Config(format!(
            "broker {addr} kept refusing ApiVersions"
        )))
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// True once the connection has failed or been closed.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed_error().is_some() || self.inner.tx.is_closed()
    }

    /// How many times the SASL session was renewed (KIP-368).
    pub fn reauthentications(&self) -> u64 {
        self.inner
            .reauthentications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The version ranges the broker advertised.
    pub fn broker_versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// The highest version of `R` both sides speak.
    pub fn version<R: Request>(&self) -> Result<i16> {
        self.versions
            .pick(&self.inner.addr, R::API_KEY, R::VERSIONS)
    }

    /// Send `req` at the highest common version and await its response.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let v = self.version::<R>()?;
        self.send_version(req, v, self.inner.opts.request_timeout)
            .await
    }

    /// Send `req` at `version`, waiting at most `timeout` for the response
    /// (fetch requests pass their max wait plus the request timeout).
    pub async fn send_version<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        self.inner.send_version(req, version, timeout, true).await
    }

    /// [`send_version`](Self::send_version), calling `queued` as soon as
    /// the request is in the connection's write queue, before its answer.
    /// Requests reach the socket in queue order, so a caller that must
    /// keep requests in order (the idempotent producer's batches of one
    /// partition) queues the next one only after `queued` ran.
    pub async fn send_version_queued<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
        queued: impl FnOnce(),
    ) -> Result<R::Response> {
        let body = self
            .inner
            .send_raw_queued(req, version, true, timeout, true, queued)
            .await?;
        self.inner.decode::<R>(body, version)
    }

    /// Send a request of type `R` whose body was encoded elsewhere as
    /// `body` chunks, which go to the socket as they are (no copy into a
    /// frame): the producer's record batches. `expects_response` is false
    /// for Produce with acks=0 (then the answer is an empty default once
    /// written). `queued` runs once the request is in the write queue, as
    /// for [`send_version_queued`](Self::send_version_queued).
    pub async fn send_encoded_queued<R: Request>(
        &self,
        body: Vec<Bytes>,
        version: i16,
        expects_response: bool,
        timeout: Duration,
        queued: impl FnOnce(),
    ) -> Result<Option<R::Response>> {
        if let Some(e) = self.inner.shared.closed_error() {
            return Err(e);
        }
        let len = body.iter().map(Bytes::len).sum();
        let head = encode_header::<R>(version, &self.inner.opts.client_id, len)?;
        let answer = self
            .inner
            .queue_frame::<R>(head, body, version, expects_response, timeout, true, queued)
            .await?;
        if !expects_response {
            return Ok(None);
        }
        self.inner.decode::<R>(answer, version).map(Some)
    }

    /// Send a request the broker will not answer (produce with acks=0);
    /// returns once it has been written to the socket.
    pub async fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        self.inner
            .send_raw(req, version, false, self.inner.opts.request_timeout, true)
            .await
            .map(|_| ())
    }

    /// Close the connection; requests in flight fail.
    pub fn close(&self) {
        self.inner.shared.fail(Error::io(
            &self.inner.addr,
            "connection closed by client",
            None,
        ));
    }
}

impl Inner {
    /// Decode a response body of `R` at `version`, naming this broker in
    /// the error.
    fn decode<R: Request>(&self, body: Bytes, version: i16) -> Result<R::Response> {
        let resp = R::Response::decode(&mut Reader::new(body), version).map_err(|source| {
            Error::Decode {
                addr: self.addr.clone(),
                source,
            }
        })?;
        if let Some(ms) = resp.throttle_time_ms() {
            self.shared.throttle.on_response(R::API_KEY, version, ms);
        }
        Ok(resp)
    }

    async fn send_version<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
        gated: bool,
    ) -> Result<R::Response> {
        let body = self.send_raw(req, version, true, timeout, gated).await?;
        self.decode::<R>(body, version)
    }

    /// Queue one request and wait for its response body. `gated` requests
    /// wait while a re-authentication is under way; the re-authentication's
    /// own requests pass `false`.
    async fn send_raw<R: Request>(
        &self,
        req: &R,
        version: i16,
        expects_response: bool,
        timeout: Duration,
        gated: bool,
    ) -> Result<Bytes> {
        self.send_raw_queued(req, version, expects_response, timeout, gated, || ())
            .await
    }

    /// [`send_raw`](Self::send_raw), calling `queued` once the request is
    /// in the write queue (not called when it fails before that).
    async fn send_raw_queued<R: Request>(
        &self,
        req: &R,
        version: i16,
        expects_response: bool,
        timeout: Duration,
        gated: bool,
        queued: impl FnOnce(),
    ) -> Result<Bytes> {
        if let Some(e) = self.shared.closed_error() {
            return Err(e);
        }
        let frame = encode_request(req, version, &self.opts.client_id)?;
        self.queue_frame::<R>(
            frame,
            Vec::new(),
            version,
            expects_response,
            timeout,
            gated,
            queued,
        )
        .await
    }

    /// Queue an encoded frame (`frame`, then `tail`) and wait for the
    /// response body.
    #[allow(clippy::too_many_arguments)]
    async fn queue_frame<R: Request>(
        &self,
        frame: BytesMut,
        tail: Vec<Bytes>,
        version: i16,
        expects_response: bool,
        timeout: Duration,
        gated: bool,
        queued: impl FnOnce(),
    ) -> Result<Bytes> {
        let (reply, rx) = oneshot::channel();
        let out = Outgoing {
            frame,
            tail,
            header_version: response_header_version(R::API_KEY, version),
            reply,
            expects_response,
        };
        // The request timeout covers waiting behind a re-authentication too.
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || Error::Timeout {
            what: format!("{} request to {}", R::NAME, self.addr),
            after_ms: timeout.as_millis() as u64,
        };
        {
            let _queued = if gated {
                // Not queued yet, so the connection is still usable: a stuck
                // re-authentication fails it by its own timeouts.
                match tokio::time::timeout_at(deadline, self.gate.read()).await {
                    Ok(g) => Some(g),
                    Err(_) => return Err(timed_out()),
                }
            } else {
                None
            };
            // The queue is full while the writer is stuck behind a broker
            // that stopped reading; the request timeout covers that wait.
            // Not queued yet, so the connection is not failed: the requests
            // ahead of this one time out by their own deadlines.
            match tokio::time::timeout_at(deadline, self.tx.send(out)).await {
                Ok(sent) => sent.map_err(|_| self.closed())?,
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("{} request to {} waiting to be queued", R::NAME, self.addr),
                        after_ms: timeout.as_millis() as u64,
                    })
                }
            }
        }
        queued();
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => {
                // As the Java client does: a request that timed out leaves the
                // connection in an unknown state, so it is closed.
                let err = timed_out();
                self.shared.fail(err.clone());
                Err(err)
            }
        }
    }

    fn closed(&self) -> Error {
        self.shared
            .closed_error()
            .unwrap_or_else(|| Error::io(&self.addr, "connection closed", None))
    }
}

/// Write a frame's head and its shared tail chunks, with vectored writes
/// where the stream supports them (plain TCP does; TLS takes them one by
/// one).
async fn write_frame<W: AsyncWrite + Unpin>(
    wr: &mut W,
    head: &[u8],
    tail: &[Bytes],
) -> std::io::Result<()> {
    if tail.is_empty() {
        return wr.write_all(head).await;
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(tail.len() + 1);
    parts.push(head);
    parts.extend(tail.iter().map(|b| &b[..]));
    let mut first = 0;
    let mut offset = 0;
    while first < parts.len() {
        let slices: Vec<std::io::IoSlice<'_>> = std::iter::once(&parts[first][offset..])
            .chain(parts[first + 1..].iter().copied())
            .take(64)
            .map(std::io::IoSlice::new)
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && first < parts.len() {
            let left = parts[first].len() - offset;
            if n >= left {
                n -= left;
                first += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        // Skip empty parts so the loop ends.
        while first < parts.len() && parts[first].len() == offset {
            first += 1;
            offset = 0;
        }
    }
    Ok(())
}

/// Start a request frame: size prefix (0, see [`patch_size`]) and header
/// (correlation id 0, patched in by the writer).
fn write_header<R: Request>(buf: &mut BytesMut, version: i16, client_id: &str) -> Result<()> {
    buf.put_i32(0); // size, patched by patch_size
    buf.put_i16(R::API_KEY as i16);
    buf.put_i16(version);
    buf.put_i32(0); // correlation id, patched by the writer
                    // client_id is always a non-compact nullable string, even in header v2,
                    // so that any broker can read the header of an ApiVersions request.
    buf.put_nullable_string(Some(client_id), false, "client_id")?;
    if request_header_version(R::API_KEY, version) >= 2 {
        buf.put_uvarint(0); // no tagged fields
    }
    Ok(())
}

/// Set the size prefix of the frame started in `buf`, which `more` bytes
/// sent after it complete.
fn patch_size(buf: &mut BytesMut, more: usize) -> Result<()> {
    let len = buf.len() - 4 + more;
    let size = i32::try_from(len).map_err(|_| skotch_protocol::EncodeError::TooLong {
        field: "request",
        len: len + 4,
    })?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The size prefix and header of a request whose `body_len` bytes of body
/// were encoded elsewhere.
fn encode_header<R: Request>(version: i16, client_id: &str, body_len: usize) -> Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(64);
    write_header::<R>(&mut buf, version, client_id)?;
    patch_size(&mut buf, body_len)?;
    Ok(buf)
}

/// Encode a whole request frame: size, header (correlation id patched in by
/// the writer) and body.
fn encode_request<R: Request>(req: &R, version: i16, client_id: &str) -> Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(128);
    write_header::<R>(&mut buf, version, client_id)?;
    req.encode(&mut buf, version)?;
    patch_size(&mut buf, 0)?;
    Ok(buf)
}

async fn write_loop<W>(
    mut wr: tokio::io::WriteHalf<W>,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    addr: String,
) where
    W: AsyncRead + AsyncWrite,
{
    while let Some(mut out) = rx.recv().await {
        // A throttled connection sends nothing until the broker's throttle
        // time has passed (KIP-219); requests wait in the queue meanwhile.
        shared.throttle.wait().await;
        let id = {
            if let Some(e) = shared.closed_error() {
                let _ = out.reply.send(Err(e));
                continue;
            }
            let mut inflight = shared.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let id = inflight.next_id();
            out.frame[8..12].copy_from_slice(&id.to_be_bytes());
            id
        };
        let reply = if out.expects_response {
            shared
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(
                    id,
                    Pending {
                        header_version: out.header_version,
                        reply: out.reply,
                    },
                );
            None
        } else {
            Some(out.reply)
        };
        if let Err(e) = write_frame(&mut wr, &out.frame, &out.tail).await {
            let err = Error::io(&addr, format!("write failed: {e}"), Some(e));
            if let Some(r) = reply {
                let _ = r.send(Err(err.clone()));
            }
            shared.fail(err);
            return;
        }
        if let Some(r) = reply {
            let _ = r.send(Ok(Bytes::new()));
        }
    }
}

async fn read_loop<R>(
    mut rd: tokio::io::ReadHalf<R>,
    shared: Arc<Shared>,
    addr: String,
    max_frame: usize,
    sasl: bool,
) where
    R: AsyncRead + AsyncWrite,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut decoder = FrameDecoder::new(max_frame);
    let mut delivered = 0u64;
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    if let Err(e) = deliver(frame, &shared, &addr) {
                        shared.fail(e);
                        return;
                    }
                    delivered += 1;
                }
                Err(_) if delivered == 0 && looks_like_tls(&buf) => {
                    shared.fail(Error::Tls {
                        addr: addr.clone(),
                        kind: TlsFailure::TlsRequired,
                        detail: "its first bytes are a TLS record; set security.protocol to SSL \
                                 or SASL_SSL for this listener"
                            .into(),
                    });
                    return;
                }
                Err(e) => {
                    shared.fail(Error::io(&addr, format!("bad response frame: {e}"), None));
                    return;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                // A SASL listener answers ApiVersions, then hangs up on the
                // next request of a client that did not authenticate.
                let reason = if delivered == 1 && !sasl {
                    "broker closed the connection after ApiVersions (a SASL listener does this \
                     to clients without credentials: check security.protocol)"
                } else {
                    "broker closed the connection"
                };
                shared.fail(Error::io(&addr, reason, None));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail(Error::io(&addr, format!("read failed: {e}"), Some(e)));
                return;
            }
        }
    }
}

/// True when `buf` starts like a TLS record (content type 20..=23, protocol
/// major version 3): what a TLS listener sends to a client speaking plain
/// Kafka (an alert). Read as a Kafka size prefix it would be about 350 MB.
fn looks_like_tls(buf: &[u8]) -> bool {
    matches!(buf, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

/// Match one response frame to its request and hand over the body.
fn deliver(frame: Bytes, shared: &Shared, addr: &str) -> Result<()> {
    let decode_err = |source| Error::Decode {
        addr: addr.to_string(),
        source,
    };
    let mut r = Reader::new(frame);
    let id = r.i32("correlation_id").map_err(decode_err)?;
    let pending = shared
        .inflight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .complete(id)
        .map_err(|m| {
            Error::io(
                addr,
                format!(
                    "response correlation id {} does not match the oldest request ({:?})",
                    m.got, m.expected
                ),
                None,
            )
        })?;
    if pending.header_version >= 1 {
        if let Err(e) = r.tagged_fields("response_header.tagged_fields") {
            let _ = pending.reply.send(Err(decode_err(e.clone())));
            return Err(decode_err(e));
        }
    }
    let _ = pending.reply.send(Ok(r.take_rest()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpSocket;

    /// Long enough never to expire while a test runs.
    const LONG: Duration = Duration::from_secs(60);

    fn options() -> ConnectOptions {
        ConnectOptions {
            client_id: "test".into(),
            connect_timeout: LONG,
            request_timeout: LONG,
            max_response_size: 1 << 20,
            security: Security::default(),
        }
    }

    /// A broker on 127.0.0.1 that answers the ApiVersions handshake, then
    /// never reads again: what the client writes next stays in the socket
    /// buffers, kept small so they fill at once.
    async fn stalled_broker() -> (std::net::SocketAddr, JoinHandle<()>) {
        let socket = TcpSocket::new_v4().unwrap();
        // Accepted sockets inherit the listener's receive buffer.
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let size = s.read_i32().await.unwrap();
            let mut req = vec![0u8; size as usize];
            s.read_exact(&mut req).await.unwrap();
            // Header: api key, version, correlation id.
            let version = i16::from_be_bytes([req[2], req[3]]);
            let mut frame = BytesMut::new();
            frame.put_i32(0);
            frame.put_slice(&req[4..8]);
            ApiVersionsResponse::default()
                .encode(&mut frame, version)
                .unwrap();
            patch_size(&mut frame, 0).unwrap();
            s.write_all(&frame).await.unwrap();
            // Keep the socket open and unread until the test ends.
            std::future::pending::<()>().await;
            drop(s);
        });
        (addr, task)
    }

    #[tokio::test]
    async fn full_write_queue_times_out_without_closing_the_connection() {
        let (addr, _broker) = stalled_broker().await;
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let conn = Arc::new(
            Connection::handshake(stream, addr.to_string(), options())
                .await
                .unwrap(),
        );
        let capacity = conn.inner.tx.max_capacity();

        // Far more than the socket buffers hold: the writer task blocks
        // writing it, and nothing leaves the queue after it.
        let big = conn.clone();
        tokio::spawn(async move {
            let body = vec![Bytes::from(vec![0u8; 8 << 20])];
            let _ = big
                .send_encoded_queued::<ApiVersionsRequest>(body, 3, true, LONG, || ())
                .await;
        });
        // Some to spare, in case the writer takes a few before blocking.
        for _ in 0..capacity + 16 {
            let c = conn.clone();
            tokio::spawn(async move {
                let _ = c
                    .send_version(&ApiVersionsRequest::default(), 3, LONG)
                    .await;
            });
        }
        tokio::time::timeout(Duration::from_secs(1), async {
            while conn.inner.tx.capacity() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the write queue never filled");

        let timeout = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(1),
            conn.send_version(&ApiVersionsRequest::default(), 3, timeout),
        )
        .await
        .expect("still waiting to be queued 1 s later: the request timeout does not cover it");
        let waited = started.elapsed();
        match result {
            Err(Error::Timeout { what, after_ms }) => {
                assert_eq!(after_ms, 200);
                assert!(what.contains("waiting to be queued"), "{what}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(
            !conn.is_closed(),
            "a request that was never queued must not close the connection"
        );
    }
}
