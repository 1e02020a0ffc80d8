//! An OTLP/HTTP receiver in the bench process, for the runs with the trace exporter on:
//! the services' `OTEL_EXPORTER_OTLP_ENDPOINT` names it. It answers every POST to
//! `/v1/traces` and `/v1/metrics` with `200 OK` and `{}`, as a collector does, keeps
//! nothing, and counts what came, so the report can show that the exporter really
//! exported. Plain HTTP/1.1 with a `Content-Length` (what `guild-telemetry`'s exporter
//! sends), on tokio: no HTTP dependency for a page of code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head or body taken; more is refused (413).
const LIMIT: usize = 64 * 1024 * 1024;

/// What a trace body holds once per span: `"spanId"` is also in every link, but
/// `"startTimeUnixNano"` is only in a span (a metrics body is not searched).
const PER_SPAN: &[u8] = b"\"startTimeUnixNano\"";

/// What the sink received so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// POSTs to `/v1/traces`.
    pub(crate) trace_posts: u64,
    /// POSTs to `/v1/metrics`.
    pub(crate) metric_posts: u64,
    /// Body bytes of both.
    pub(crate) bytes: u64,
    /// Spans in the trace bodies.
    pub(crate) spans: u64,
}

/// The counters the connections' tasks add to.
#[derive(Debug, Default)]
struct Counters {
    trace_posts: AtomicU64,
    metric_posts: AtomicU64,
    bytes: AtomicU64,
    spans: AtomicU64,
}

/// A receiver on a free loopback port, stopped when dropped.
pub(crate) struct Sink {
    /// `http://127.0.0.1:<port>`: the base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    url: String,
    counters: Arc<Counters>,
    /// The task accepting connections (each connection has a task of its own, which ends
    /// with its connection).
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counters = Arc::new(Counters::default());
        let counting = counters.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    // Out of descriptors, say: let some close rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let counters = counting.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(conn, &counters).await {
                        eprintln!("guild-bench: the OTLP sink dropped a connection: {e}");
                    }
                });
            }
        });
        Ok(Self {
            url,
            counters,
            task,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn received(&self) -> Received {
        let c = &self.counters;
        Received {
            trace_posts: c.trace_posts.load(Ordering::Relaxed),
            metric_posts: c.metric_posts.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            spans: c.spans.load(Ordering::Relaxed),
        }
    }
}

/// Answers the requests of one connection until the client closes it or asks to.
async fn serve(mut conn: TcpStream, counters: &Counters) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        // The head: up to the blank line.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > LIMIT || conn.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let mut request_line = head.split_whitespace();
        let (method, path) = (request_line.next(), request_line.next());
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let close = header("connection") == Some("close");
        let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) else {
            // Chunked bodies are not taken; the exporter always sends a length.
            return reply(&mut conn, "411 Length Required").await;
        };
        if length > LIMIT {
            return reply(&mut conn, "413 Content Too Large").await;
        }
        while buf.len() < head_end + length {
            if conn.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = &buf[head_end..head_end + length];
        let status = match (method, path) {
            (Some("post"), Some("/v1/traces")) => {
                counters.trace_posts.fetch_add(1, Ordering::Relaxed);
                let spans = body.windows(PER_SPAN.len()).filter(|w| *w == PER_SPAN);
                counters
                    .spans
                    .fetch_add(spans.count() as u64, Ordering::Relaxed);
                "200 OK"
            }
            (Some("post"), Some("/v1/metrics")) => {
                counters.metric_posts.fetch_add(1, Ordering::Relaxed);
                "200 OK"
            }
            _ => "404 Not Found",
        };
        if status == "200 OK" {
            counters.bytes.fetch_add(length as u64, Ordering::Relaxed);
        }
        buf.drain(..head_end + length);
        reply(&mut conn, status).await?;
        if close {
            return Ok(());
        }
    }
}

/// A response with an empty JSON object as its body, which OTLP/HTTP JSON clients read
/// as a full success.
async fn reply(conn: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    conn.write_all(response.as_bytes()).await?;
    conn.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `request` on a connection of its own and returns the whole response.
    async fn exchange(sink: &Sink, request: &[u8]) -> String {
        let addr = sink.url().trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(request).await.unwrap();
        let mut response = Vec::new();
        conn.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    fn post(path: &str, body: &str, connection: &str) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn counts_posts_bytes_and_spans_and_answers_each() {
        let sink = Sink::start().await.unwrap();
        let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"spanId":"a","startTimeUnixNano":"1","links":[{"spanId":"c"}]},
            {"spanId":"b","startTimeUnixNano":"2"}]}]}]}"#;
        let response = exchange(&sink, &post("/v1/traces", spans, "close")).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\n{}"), "{response}");
        // Two requests on one kept-alive connection, the last one closing it.
        let mut two = post("/v1/metrics", "{}", "keep-alive");
        two.extend(post("/v1/metrics", "{}", "close"));
        let response = exchange(&sink, &two).await;
        assert_eq!(response.matches("200 OK").count(), 2, "{response}");
        let response = exchange(&sink, &post("/elsewhere", "{}", "close")).await;
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
        assert_eq!(
            sink.received(),
            Received {
                trace_posts: 1,
                metric_posts: 2,
                bytes: (spans.len() + 4) as u64,
                spans: 2,
            }
        );
    }
}
