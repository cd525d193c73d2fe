//! A minimal SMTP client for alert e-mails: EHLO, STARTTLS, AUTH PLAIN, MAIL
//! FROM, RCPT TO, DATA (dot-stuffed), QUIT — over tokio and tokio-rustls.
//!
//! Why not `lettre`: its rustls and tokio-rustls dependencies turn on their
//! `logging` feature, which the workspace's tree (through object_store and
//! DataFusion) does not enable; adding it would change the feature set of
//! crates already built and rebuild DataFusion. Sending one plain-text message
//! needs none of the rest of lettre.
//!
//! A password is sent only over TLS, or to a server on this machine.

use std::net::IpAddr;
use std::sync::Arc;

use sluice_project::EmailDef;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::send::SendError;

/// Sends one message to every recipient of `def`.
pub(crate) async fn send(def: &EmailDef, subject: &str, body: &str) -> Result<(), SendError> {
    let host = def.host.as_str();
    let io = |e: std::io::Error| SendError::Io {
        host: host.to_string(),
        reason: e.to_string(),
    };
    let tcp = TcpStream::connect((host, def.port)).await.map_err(io)?;
    let mut plain = Session::new(host, tcp);
    plain.expect(220, "greeting").await?;
    let features = plain.command("EHLO sluice", 250, "EHLO").await?;
    if !def.starttls {
        return conversation(plain, def, subject, body, false).await;
    }
    if !features
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"))
    {
        return Err(SendError::Smtp {
            host: host.to_string(),
            stage: "STARTTLS",
            reply: "the server does not offer STARTTLS (set `starttls = false` only for a server on this machine)".into(),
        });
    }
    plain.command("STARTTLS", 220, "STARTTLS").await?;
    let tcp = plain.stream.into_inner();
    let tls = tls_connector(host, def.tls_ca.as_deref())?
        .connect(server_name(host)?, tcp)
        .await
        .map_err(|e| SendError::Smtp {
            host: host.to_string(),
            stage: "TLS handshake",
            reply: e.to_string(),
        })?;
    let mut secure = Session::new(host, tls);
    secure.command("EHLO sluice", 250, "EHLO").await?;
    conversation(secure, def, subject, body, true).await
}

/// Authentication and the message, once the connection is as secure as it gets.
async fn conversation<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: Session<'_, S>,
    def: &EmailDef,
    subject: &str,
    body: &str,
    tls: bool,
) -> Result<(), SendError> {
    let host = def.host.as_str();
    if let Some((user, password)) = &def.credentials {
        if !tls && !is_loopback(host) {
            return Err(SendError::Smtp {
                host: host.to_string(),
                stage: "AUTH",
                reply: "refusing to send the password without TLS: set `starttls = true`".into(),
            });
        }
        let user = user.expose().map_err(SendError::unset)?;
        let password = password.expose().map_err(SendError::unset)?;
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        // The command holds the password: it is never put in an error.
        s.write(&format!("AUTH PLAIN {token}")).await?;
        s.expect(235, "AUTH").await?;
    }
    s.command(&format!("MAIL FROM:<{}>", def.from), 250, "MAIL FROM")
        .await?;
    for to in &def.to {
        s.command(&format!("RCPT TO:<{to}>"), 250, "RCPT TO")
            .await?;
    }
    s.command("DATA", 354, "DATA").await?;
    let data = message(def, subject, body);
    s.write_raw(&data).await?;
    s.expect(250, "end of DATA").await?;
    // The message is accepted; a server that hangs up now lost nothing.
    let _ = s.write("QUIT").await;
    Ok(())
}

/// The message as sent after DATA: headers, the body with CRLF line ends and
/// dot-stuffed, and the terminating `.`.
pub(crate) fn message(def: &EmailDef, subject: &str, body: &str) -> String {
    let now = chrono::Utc::now();
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let subject = if subject.is_ascii() {
        subject
    } else {
        format!("=?UTF-8?B?{}?=", base64(subject.as_bytes()))
    };
    let domain = def.from.rsplit_once('@').map_or("sluice", |(_, d)| d);
    let mut out = format!(
        "From: <{}>\r\nTo: {}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{}.sluice@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        def.from,
        def.to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", "),
        now.to_rfc2822(),
        now.timestamp_nanos_opt().unwrap_or_default(),
    );
    for line in body.lines() {
        // Dot-stuffing (RFC 5321 4.5.2): a line starting with `.` gets one more.
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// One SMTP connection: replies read line by line, commands written with CRLF.
struct Session<'h, S> {
    host: &'h str,
    stream: BufReader<S>,
}

impl<'h, S: AsyncRead + AsyncWrite + Unpin> Session<'h, S> {
    fn new(host: &'h str, stream: S) -> Self {
        Session {
            host,
            stream: BufReader::new(stream),
        }
    }

    fn io(&self, e: std::io::Error) -> SendError {
        SendError::Io {
            host: self.host.to_string(),
            reason: e.to_string(),
        }
    }

    async fn write(&mut self, line: &str) -> Result<(), SendError> {
        self.write_raw(&format!("{line}\r\n")).await
    }

    async fn write_raw(&mut self, text: &str) -> Result<(), SendError> {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes()).await.map_err(|e| self.io(e))?;
        self.stream.get_mut().flush().await.map_err(|e| self.io(e))
    }

    /// Sends a command (never one holding a secret) and reads its reply.
    async fn command(
        &mut self,
        line: &str,
        code: u16,
        stage: &'static str,
    ) -> Result<String, SendError> {
        self.write(line).await?;
        self.expect(code, stage).await
    }

    /// Reads one reply (its continuation lines too) and checks its code;
    /// returns its text, a line per reply line.
    async fn expect(&mut self, code: u16, stage: &'static str) -> Result<String, SendError> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = self
                .stream
                .read_line(&mut line)
                .await
                .map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(SendError::Smtp {
                    host: self.host.to_string(),
                    stage,
                    reply: "the server closed the connection".into(),
                });
            }
            let line = line.trim_end();
            let got: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
            let last = line.as_bytes().get(3) != Some(&b'-');
            text.push_str(line.get(4..).unwrap_or_default());
            text.push('\n');
            if last {
                return match got {
                    Some(c) if c == code || (code == 250 && c == 251) => Ok(text),
                    _ => Err(SendError::Smtp {
                        host: self.host.to_string(),
                        stage,
                        reply: line.to_string(),
                    }),
                };
            }
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, SendError> {
    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| SendError::Smtp {
        host: host.to_string(),
        stage: "TLS",
        reply: format!("not a server name: {e}"),
    })
}

/// A TLS client trusting the system's roots, on the process's crypto provider.
fn tls_connector(
    host: &str,
    ca: Option<&std::path::Path>,
) -> Result<tokio_rustls::TlsConnector, SendError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let bad = |reason: String| SendError::Smtp {
            host: host.to_string(),
            stage: "TLS",
            reply: format!("`tls_ca` {}: {reason}", path.display()),
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(super::send::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Smtp {
            host: host.to_string(),
            stage: "TLS",
            reply: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Standard base64 with padding (AUTH PLAIN, encoded subjects).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn the_body_is_dot_stuffed_and_ends_with_a_lone_dot() {
        let def = EmailDef {
            host: "127.0.0.1".into(),
            port: 25,
            starttls: false,
            tls_ca: None,
            credentials: None,
            from: "sluice@example.com".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
        };
        let m = message(&def, "über\r\nBcc: x@y", "first\n.hidden\n..two\nlast");
        let (head, body) = m.split_once("\r\n\r\n").expect("headers, then the body");
        assert!(
            head.contains("To: <a@example.com>, <b@example.com>\r\n"),
            "{head}"
        );
        // No header can be injected through the subject.
        assert!(!head.contains("\r\nBcc:"), "{head}");
        assert!(head.contains("Subject: =?UTF-8?B?"), "{head}");
        assert_eq!(body, "first\r\n..hidden\r\n...two\r\nlast\r\n.\r\n");
    }
}
