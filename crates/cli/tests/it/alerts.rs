//! Alerts from the real binary: `sluice run` does not exit before its alert is
//! delivered to a webhook receiver and an SMTP sink on loopback (a few lines of
//! std each), sends one message per incident, and no secret — the webhook's
//! URL, the SMTP password — appears in its output, its logs at debug level, the
//! run log or `sluice alerts`. `sluice alerts test` reaches every channel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::{Server, repo, sluice_cmd, stderr, stdout};

/// Every request body (webhook) or DATA plus AUTH line (SMTP) received.
pub(crate) type Received = Arc<Mutex<Vec<String>>>;

/// The body of one HTTP request (by its `content-length`), or none when the
/// connection ends first.
fn request_body(r: &mut BufReader<std::net::TcpStream>) -> Option<String> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// A webhook receiver answering 200 to every POST.
pub(crate) fn hook() -> (Received, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let mut r = BufReader::new(socket);
            if let Some(body) = request_body(&mut r) {
                g.lock().expect("lock").push(body);
            }
            let _ = r.get_mut().write_all(OK);
        }
    });
    (got, port)
}

/// An SMTP sink: keeps each message's AUTH line and DATA.
fn smtp() -> (Received, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let mut r = BufReader::new(socket);
            let say = |r: &mut BufReader<std::net::TcpStream>, s: &str| {
                let _ = r.get_mut().write_all(s.as_bytes());
            };
            say(&mut r, "220 sink\r\n");
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                match line.get(..4).unwrap_or_default() {
                    "EHLO" => say(&mut r, "250-sink\r\n250 AUTH PLAIN\r\n"),
                    "AUTH" => {
                        auth = line.trim_end().to_string();
                        say(&mut r, "235 ok\r\n");
                    }
                    "DATA" => {
                        say(&mut r, "354 go on\r\n");
                        let mut data = auth.clone() + "\n";
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        g.lock().expect("lock").push(data);
                        say(&mut r, "250 queued\r\n");
                    }
                    "QUIT" => {
                        say(&mut r, "221 bye\r\n");
                        break;
                    }
                    _ => say(&mut r, "250 ok\r\n"),
                }
            }
        }
    });
    (got, port)
}

const TOKEN: &str = "T0/B0/xoxb-secret-token-4242";
const PASSWORD: &str = "pw-s3cret-9876";

/// The project's start: the planted flights and `delays`, which casts them.
const DELAYS: &str = "[project]\nname = \"flights\"\n\n[sources.flights]\npath = \"flights.csv\"\n\n\
    [tables.delays]\nsql = \"SELECT id, CAST(dep_delay AS INT) AS dep_delay FROM flights\"\n";

/// Real flights with one departure delay written as text (`late`): casting
/// `dep_delay` fails.
fn planted_flights(dir: &std::path::Path) {
    let flights = std::fs::read_to_string(repo().join("testdata/contracts/flights.csv"))
        .expect("testdata/contracts/flights.csv");
    std::fs::write(
        dir.join("flights.csv"),
        flights.replacen(",N14228,517,2,", ",N14228,517,late,", 1),
    )
    .expect("write");
}

/// Real flights with one departure delay planted as text (the cast in
/// `delays` fails, retried once), and an alert to a webhook and an SMTP sink
/// whose URL and password come from the environment.
fn alert_project(smtp_port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    planted_flights(dir.path());
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "{DELAYS}retries = 1\nretry_delay = \"1ms\"\nretry_on = \"any\"\n\n\
             [alerts.oncall]\non = [\"failure\", \"recovered\"]\n\
             webhook = {{ url = \"${{SLUICE_TEST_HOOK_URL}}\", format = \"slack\" }}\n\
             email = {{ smtp = \"127.0.0.1:{smtp_port}\", starttls = false, username = \"${{SLUICE_TEST_SMTP_USER}}\", \
             password = \"${{SLUICE_TEST_SMTP_PASSWORD}}\", from = \"sluice@example.com\", to = [\"oncall@example.com\"] }}\n"
        ),
    )
    .expect("write");
    dir
}

#[test]
fn run_delivers_one_alert_per_incident_before_it_exits_and_no_secret_leaks() {
    let (hooked, hook_port) = hook();
    let (mailed, smtp_port) = smtp();
    let dir = alert_project(smtp_port);
    let url = format!("http://127.0.0.1:{hook_port}/services/{TOKEN}");
    let sluice = |args: &[&str]| {
        sluice_cmd(dir.path())
            .args(args)
            .env("SLUICE_TEST_HOOK_URL", &url)
            .env("SLUICE_TEST_SMTP_USER", "alerts")
            .env("SLUICE_TEST_SMTP_PASSWORD", PASSWORD)
            .env("SLUICE_LOG", "debug")
            .output()
            .expect("the sluice binary runs")
    };
    let mut shown = String::new();

    // Two failing runs: one incident, one message per channel, delivered
    // before the first `sluice run` exited.
    let first = sluice(&["run"]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_eq!(hooked.lock().expect("lock").len(), 1, "{}", stderr(&first));
    assert_eq!(mailed.lock().expect("lock").len(), 1, "{}", stderr(&first));
    shown += &(stdout(&first) + &stderr(&first));
    let second = sluice(&["run", "--json"]);
    assert_eq!(second.status.code(), Some(1));
    shown += &(stdout(&second) + &stderr(&second));
    assert_eq!(hooked.lock().expect("lock").len(), 1);
    assert_eq!(mailed.lock().expect("lock").len(), 1);

    let body: serde_json::Value =
        serde_json::from_str(&hooked.lock().expect("lock")[0]).expect("a JSON body");
    let text = body["text"].as_str().expect("Slack's {\"text\": ...}");
    assert!(
        text.starts_with("[flights] `delays` failed in run 1\nerror: "),
        "{text}"
    );
    assert!(text.contains("Cannot cast"), "{text}");
    let mail = mailed.lock().expect("lock")[0].clone();
    assert!(
        mail.contains("Subject: [flights] `delays` failed in run 1\r\n"),
        "{mail}"
    );
    // AUTH PLAIN carried the password from the environment to the server.
    let token = mail.lines().next().unwrap_or_default();
    assert_eq!(
        token, "AUTH PLAIN AGFsZXJ0cwBwdy1zM2NyZXQtOTg3Ng==",
        "{mail}"
    );

    let listed = sluice(&["alerts", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let v: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let states: Vec<(&str, &str, &str)> = v["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap_or_default(),
                d["event"].as_str().unwrap_or_default(),
                d["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(states.len(), 2, "{v}");
    assert!(states.contains(&("webhook", "failure", "delivered")), "{v}");
    assert!(states.contains(&("email", "failure", "delivered")), "{v}");
    assert_eq!(v["incidents"][0]["asset"], "delays", "{v}");
    shown += &(stdout(&listed) + &stderr(&listed));

    let tested = sluice(&["alerts", "test", "oncall"]);
    assert!(tested.status.success(), "{}", stderr(&tested));
    assert_eq!(stdout(&tested), "webhook: delivered\nemail: delivered\n");
    assert_eq!(hooked.lock().expect("lock").len(), 2);
    assert_eq!(mailed.lock().expect("lock").len(), 2);
    shown += &(stdout(&tested) + &stderr(&tested));
    for args in [&["runs", "--json"][..], &["alerts"][..]] {
        let o = sluice(args);
        shown += &(stdout(&o) + &stderr(&o));
    }

    for secret in [TOKEN, PASSWORD, "AGFsZXJ0cwBwdy1zM2NyZXQtOTg3Ng"] {
        assert!(!shown.contains(secret), "`{secret}` was shown:\n{shown}");
        for file in ["sluice.db", "sluice.db-wal"] {
            let stored = std::fs::read(dir.path().join(".sluice").join(file)).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&stored).contains(secret),
                "`{secret}` is stored in {file}"
            );
        }
    }
    // The debug logs were really there to leak into.
    assert!(shown.contains("DEBUG"), "{shown}");
}

#[test]
fn a_run_started_through_the_api_alerts_and_no_secret_reaches_the_api_or_the_log() {
    let (hooked, hook_port) = hook();
    let (mailed, smtp_port) = smtp();
    let dir = alert_project(smtp_port);
    let url = format!("http://127.0.0.1:{hook_port}/services/{TOKEN}");
    let server = Server::start_env(
        dir.path(),
        &["--no-scheduler"],
        &[
            ("SLUICE_TEST_HOOK_URL", &url),
            ("SLUICE_TEST_SMTP_USER", "alerts"),
            ("SLUICE_TEST_SMTP_PASSWORD", PASSWORD),
            ("SLUICE_LOG", "debug"),
        ],
    );
    let (status, body) = server.request("POST", "/v1/runs", None, Some("{}"));
    assert!(status < 300, "{status} {body}");
    let mut shown = body;
    // Bounded: the run takes well under a second, the deliveries as long.
    for _ in 0..600 {
        if !hooked.lock().expect("lock").is_empty() && !mailed.lock().expect("lock").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(hooked.lock().expect("lock").len(), 1);
    assert_eq!(mailed.lock().expect("lock").len(), 1);
    let text = hooked.lock().expect("lock")[0].clone();
    assert!(text.contains("`delays` failed in run 1"), "{text}");
    for path in [
        "/v1/runs",
        "/v1/runs/1",
        "/v1/assets",
        "/metrics",
        "/openapi.json",
    ] {
        let (status, body) = server.request("GET", path, None, None);
        assert_eq!(status, 200, "{path}: {body}");
        shown += &body;
    }
    assert!(shown.contains("delays"), "{shown}");
    shown += &server.log.lock().expect("lock");
    for secret in [TOKEN, PASSWORD, "AGFsZXJ0cwBwdy1zM2NyZXQtOTg3Ng"] {
        assert!(!shown.contains(secret), "`{secret}` was shown:\n{shown}");
    }
}

#[test]
fn an_alert_selects_its_assets_by_tag() {
    let (hooked, hook_port) = hook();
    let dir = tempfile::tempdir().expect("tempdir");
    planted_flights(dir.path());
    // Both tables fail; only `delays` is tagged `critical`.
    let toml = format!(
        "{DELAYS}tags = [\"critical\", \"nightly\"]\n\n\
         [tables.other]\nsql = \"SELECT CAST(dep_delay AS INT) AS d FROM flights\"\ntags = [\"nightly\"]\n\n\
         [alerts.oncall]\non = [\"failure\"]\nassets = [\"tag:critical\"]\n\
         webhook = {{ url = \"http://127.0.0.1:{hook_port}/hook\", format = \"json\" }}\n"
    );
    std::fs::write(dir.path().join("sluice.toml"), &toml).expect("write");
    let o = sluice_cmd(dir.path()).arg("run").output().expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let got = hooked.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: serde_json::Value = serde_json::from_str(&got[0]).expect("JSON");
    assert_eq!(body["asset"], "delays", "{body}");

    let described = sluice_cmd(dir.path())
        .args(["describe", "delays"])
        .output()
        .expect("runs");
    assert!(
        stdout(&described).contains("tags: critical, nightly"),
        "{}",
        stdout(&described)
    );

    // An unknown tag is an error of the file, at its line, with the known tags.
    std::fs::write(
        dir.path().join("sluice.toml"),
        toml.replace("tag:critical", "tag:critcal"),
    )
    .expect("write");
    let o = sluice_cmd(dir.path()).arg("check").output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("sluice.toml:17:") && err.contains("unknown tag `critcal` in alert `oncall`"),
        "{err}"
    );
    assert!(err.contains("the tags are: critical, nightly"), "{err}");
}

/// A webhook receiver that holds every request without answering while
/// `hang` is set, and answers 200 (keeping the body) once it is not.
fn hanging_hook(hang: Arc<std::sync::atomic::AtomicBool>) -> (Received, Received, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (held, answered): (Received, Received) = (Arc::default(), Arc::default());
    let (h, a) = (held.clone(), answered.clone());
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for socket in listener.incoming().flatten() {
            let mut r = BufReader::new(socket);
            let Some(body) = request_body(&mut r) else {
                continue;
            };
            if hang.load(std::sync::atomic::Ordering::SeqCst) {
                h.lock().expect("lock").push(body);
                // Never answered, never closed.
                kept.push(r);
                continue;
            }
            a.lock().expect("lock").push(body);
            let _ = r.get_mut().write_all(OK);
        }
    });
    (held, answered, port)
}

#[test]
fn a_delivery_cut_off_by_kill_9_is_sent_once_by_the_next_run() {
    let hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (held, answered, port) = hanging_hook(hang.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    planted_flights(dir.path());
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "{DELAYS}\n[alerts.oncall]\non = [\"failure\"]\n\
             webhook = {{ url = \"http://127.0.0.1:{port}/hook\", format = \"json\" }}\n"
        ),
    )
    .expect("write");

    // The run fails, and waits for its delivery, which hangs: killed there.
    let mut first = sluice_cmd(dir.path())
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    for _ in 0..1200 {
        if !held.lock().expect("lock").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        held.lock().expect("lock").len(),
        1,
        "the delivery reached the receiver"
    );
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let listed = sluice_cmd(dir.path())
        .args(["alerts", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    assert_eq!(v["deliveries"][0]["state"], "pending", "{v}");

    // The receiver answers now. The next run resumes the delivery (its own
    // failure is the same incident: no new message).
    hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = sluice_cmd(dir.path()).arg("run").output().expect("runs");
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let got = answered.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: serde_json::Value = serde_json::from_str(&got[0]).expect("JSON");
    assert_eq!(
        (body["event"].clone(), body["asset"].clone()),
        ("failure".into(), "delays".into())
    );
    assert_eq!(body["run_id"], 1, "the message of the killed run: {body}");

    let listed = sluice_cmd(dir.path())
        .args(["alerts", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let deliveries = v["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{v}");
    assert_eq!(deliveries[0]["state"], "delivered", "{v}");
    // A third run has nothing left to resume.
    let third = sluice_cmd(dir.path()).arg("run").output().expect("runs");
    assert_eq!(third.status.code(), Some(1));
    assert_eq!(answered.lock().expect("lock").len(), 1);
    assert_eq!(held.lock().expect("lock").len(), 1);
}
