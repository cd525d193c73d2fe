//! STARTTLS against a real TLS server on loopback: an SMTP server (tokio and
//! tokio-rustls) offering STARTTLS with a certificate signed by a CA the test
//! makes with the `openssl` command. With `tls_ca` naming that CA the message
//! arrives over TLS and AUTH is sent only after the upgrade; without it the
//! handshake refuses the unknown issuer and no password is sent at all.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sluice_core::Secret;
use sluice_project::EmailDef;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::send::{SendError, crypto_provider};
use super::smtp::send;

/// Runs `openssl ARGS` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate it signed for 127.0.0.1
/// (`server.pem`, `server.key`), P-256 keys, valid for a day.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "1"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=sluice test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// What the server saw, in order: each command, `tls:` before those read over
/// TLS, and `message:` with each DATA received.
type Seen = Arc<Mutex<Vec<String>>>;

/// The SMTP server: offers STARTTLS in plain text (and refuses AUTH there),
/// then speaks over TLS with the certificate in `dir`.
async fn server(dir: &Path) -> (Seen, u16) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the server's certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (s, acceptor) = (s.clone(), acceptor.clone());
            tokio::spawn(async move {
                let mut plain = BufReader::new(socket);
                plain
                    .get_mut()
                    .write_all(b"220 tls-sink\r\n")
                    .await
                    .expect("greet");
                if !converse(&mut plain, &s, false).await {
                    return;
                }
                // STARTTLS was accepted: nothing may be buffered past it.
                assert!(
                    plain.buffer().is_empty(),
                    "commands pipelined into the handshake"
                );
                let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                    s.lock().expect("lock").push("handshake failed".into());
                    return;
                };
                converse(&mut BufReader::new(tls), &s, true).await;
            });
        }
    });
    (seen, port)
}

/// Answers commands until STARTTLS (`true`: upgrade now) or the end.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    seen: &Seen,
    tls: bool,
) -> bool {
    let mark = if tls { "tls:" } else { "" };
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return false;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        seen.lock().expect("lock").push(format!("{mark}{verb}"));
        let reply: &[u8] = match (verb.as_str(), tls) {
            ("EHLO", false) => b"250-tls-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            ("EHLO", true) => b"250-tls-sink\r\n250 AUTH PLAIN\r\n",
            ("STARTTLS", false) => {
                let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
                return true;
            }
            ("AUTH", false) => b"530 must issue STARTTLS first\r\n",
            ("AUTH", true) => b"235 ok\r\n",
            ("DATA", _) => {
                let _ = r.get_mut().write_all(b"354 go on\r\n").await;
                let data = super::tests::read_data(r).await;
                seen.lock()
                    .expect("lock")
                    .push(format!("{mark}message:{data}"));
                b"250 queued\r\n"
            }
            ("QUIT", _) => {
                let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                return false;
            }
            _ => b"250 ok\r\n",
        };
        let _ = r.get_mut().write_all(reply).await;
    }
}

fn channel(port: u16, ca: Option<&Path>) -> EmailDef {
    EmailDef {
        host: "127.0.0.1".into(),
        port,
        starttls: true,
        tls_ca: ca.map(Path::to_path_buf),
        credentials: Some((Secret::new("alerts"), Secret::new("pw-over-tls"))),
        from: "sluice@example.com".into(),
        to: vec!["oncall@example.com".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_to_a_server_of_a_trusted_ca_sends_auth_and_the_message_over_tls_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let (seen, port) = server(dir.path()).await;

    // The CA is the test's own: the system's roots alone refuse it, and no
    // password is sent.
    let refused = send(&channel(port, None), "[flights] test", "body").await;
    match refused {
        Err(SendError::Smtp { stage, reply, .. }) => {
            assert_eq!(stage, "TLS handshake", "{reply}");
        }
        other => panic!("expected the handshake to fail, got {other:?}"),
    }
    assert!(
        !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s.contains("AUTH")),
        "{:?}",
        seen.lock().expect("lock")
    );
    seen.lock().expect("lock").clear();

    let ca = dir.path().join("ca.pem");
    send(
        &channel(port, Some(&ca)),
        "[flights] `delays` failed in run 3",
        "error: boom",
    )
    .await
    .expect("delivered over TLS");
    let seen = seen.lock().expect("lock").clone();
    let starttls = seen.iter().position(|s| s == "STARTTLS").expect("STARTTLS");
    let auth = seen.iter().position(|s| s.ends_with("AUTH")).expect("AUTH");
    assert!(starttls < auth, "{seen:?}");
    assert_eq!(seen[auth], "tls:AUTH", "AUTH only over TLS: {seen:?}");
    assert_eq!(
        seen.iter().filter(|s| s.ends_with("AUTH")).count(),
        1,
        "{seen:?}"
    );
    let message = seen
        .iter()
        .find_map(|s| s.strip_prefix("tls:message:"))
        .unwrap_or_else(|| panic!("no message over TLS: {seen:?}"));
    assert!(
        message.contains("Subject: [flights] `delays` failed in run 3\r\n"),
        "{message}"
    );
    assert!(message.contains("error: boom"), "{message}");
    assert!(
        !seen.iter().any(|s| s.starts_with("message:")),
        "nothing in plain text: {seen:?}"
    );

    // A `tls_ca` that is not a PEM of certificates is an error naming it.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    match send(&channel(port, Some(&junk)), "s", "b").await {
        Err(SendError::Smtp { stage, reply, .. }) => {
            assert_eq!(stage, "TLS");
            assert!(reply.contains("junk.pem"), "{reply}");
        }
        other => panic!("expected the CA file to be refused, got {other:?}"),
    }
}
