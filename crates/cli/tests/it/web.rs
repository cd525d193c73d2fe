//! A small HTTP server on 127.0.0.1:0 for the network sources' tests: a
//! thread per connection, one request per connection, answers from a closure;
//! every request is kept so tests can assert what sluice sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET`, `POST`.
    pub method: String,
    /// The path with its query.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
}

impl Req {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| v.replace("%3A", ":").replace("%2B", "+"))
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Resp {
    /// 200 with a JSON body.
    pub fn json(body: impl Into<String>) -> Resp {
        Resp::new(200, body).header("content-type", "application/json")
    }

    /// 200 with an HTML body.
    pub fn html(body: impl Into<String>) -> Resp {
        Resp::new(200, body).header("content-type", "text/html")
    }

    /// `status` with `body`.
    pub fn new(status: u16, body: impl Into<String>) -> Resp {
        Resp {
            status,
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The server: its port and every request it received.
pub struct Web {
    /// Where it listens.
    pub port: u16,
    /// The requests, in order of arrival.
    pub requests: Arc<Mutex<Vec<Req>>>,
}

impl Web {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Req> {
        self.requests.lock().expect("lock").clone()
    }

    /// How many requests were for `path` (without query).
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|r| r.path() == path).count()
    }
}

/// Starts a server answering with `answer`.
pub fn serve(answer: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Web {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests: Arc<Mutex<Vec<Req>>> = Arc::default();
    let seen = requests.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let seen = seen.clone();
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(socket);
                let mut first = String::new();
                if r.read_line(&mut first).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = first.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                let mut headers = BTreeMap::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = r.read_exact(&mut body);
                let req = Req {
                    method,
                    target,
                    headers,
                };
                seen.lock().expect("lock").push(req.clone());
                let resp = answer(&req);
                std::thread::sleep(resp.delay);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    resp.status,
                    resp.body.len()
                );
                for (k, v) in &resp.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&resp.body);
                let _ = r.get_mut().write_all(out.as_bytes());
            });
        }
    });
    Web { port, requests }
}
