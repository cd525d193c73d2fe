//! Helpers: run the real binary, copy the example into a scratch folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command for the `sluice` binary built by cargo for these tests.
pub fn sluice_cmd(project: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--project")
        .arg(project)
        .env_remove("SLUICE_PROFILE")
        .env_remove("SLUICE_PROJECT")
        .env_remove("SLUICE_NOW");
    cmd
}

/// Runs `sluice --project DIR ARGS...` to completion.
pub fn sluice(project: &Path, args: &[&str]) -> Output {
    sluice_cmd(project)
        .args(args)
        .output()
        .expect("the sluice binary runs")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts success, returning stdout.
pub fn ok(project: &Path, args: &[&str]) -> String {
    let o = sluice(project, args);
    assert!(
        o.status.success(),
        "sluice {args:?} failed ({}):\n{}\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `sluice run --json`, parsed, with the status of each asset by name.
pub fn run_json(project: &Path, args: &[&str]) -> (bool, serde_json::Value) {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let o = sluice(project, &all);
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("run --json printed no JSON ({e}):\n{text}\n{}", stderr(&o)));
    (o.status.success(), v)
}

/// The status word of every asset in a `run --json` summary.
pub fn statuses(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["assets"]
        .as_array()
        .expect("assets is an array")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// One asset's entry of a `run --json` summary.
pub fn asset<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no asset {name} in {summary}"))
}

/// A copy of `examples/flights` (without any warehouse) in a fresh temp folder.
pub fn flights_copy() -> tempfile::TempDir {
    example_copy("flights")
}

/// A copy of `examples/NAME` (without any warehouse or output) in a fresh temp folder.
pub fn example_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo().join("examples").join(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == ".sluice" || name == "exports" || name == "out" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A project folder with these files (path, contents).
pub fn project(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// One number from `sluice query --format csv` with a one-value result.
pub fn scalar(project: &Path, sql: &str) -> i64 {
    value_of(project, sql)
}

/// One floating-point number from `sluice query --format csv` with a
/// one-value result.
pub fn number(project: &Path, sql: &str) -> f64 {
    value_of(project, sql)
}

fn value_of<T: std::str::FromStr>(project: &Path, sql: &str) -> T {
    let out = ok(project, &["query", "--format", "csv", sql]);
    let value = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no value in {out:?}"));
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {out:?}"))
}

/// A `sluice serve` process on a free loopback port, killed when dropped.
pub struct Server {
    /// The process.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// What it wrote to standard error after the line saying where it listens.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `sluice serve` on the project and waits until it listens.
    pub fn start(project: &Path) -> Server {
        Server::start_with(project, &[])
    }

    /// Starts `sluice serve ARGS...` on the project and waits until it listens.
    pub fn start_with(project: &Path, args: &[&str]) -> Server {
        Server::start_env(project, args, &[])
    }

    /// Starts `sluice serve ARGS...` with environment variables `env`.
    pub fn start_env(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let mut child = sluice_cmd(project)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("serve printed where it listens")
                .expect("line");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().expect("address");
                break addr.parse().expect("socket address");
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = kept.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server { child, addr, log }
    }

    /// One request; returns the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        http(self.addr, method, path, key, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("receive");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, body.to_string())
}

/// Every row of a Parquet file, each value as text (`null` for null).
pub fn parquet_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let file = std::fs::File::open(path).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut names = vec![];
    let mut rows = vec![];
    for batch in reader {
        let batch = batch.expect("batch");
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let cols: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8).expect("cast"))
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        let c = c.as_any().downcast_ref::<StringArray>().expect("text");
                        if c.is_null(i) {
                            "null".to_string()
                        } else {
                            c.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    (names, rows)
}

/// A Python with pyarrow, or `None` (outside CI) to skip.
pub fn python() -> Option<String> {
    let python = std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_pyarrow = Command::new(&python)
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pyarrow {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide pyarrow: set SLUICE_TEST_PYTHON to a Python that has it (.ci/run does)"
        );
        eprintln!(
            "skipped: no pyarrow for {python}; set SLUICE_TEST_PYTHON to a Python with pyarrow"
        );
        return None;
    }
    Some(python)
}

/// Whether the embedding model collections chunk and embed with is installed,
/// with ONNX Runtime to run it (outside CI, a test that needs them is skipped
/// when they are not).
pub fn model_installed() -> bool {
    let models = std::env::var_os("SLUICE_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sluice/models")
        });
    let runtime = std::env::var_os("SLUICE_ONNXRUNTIME").is_some_and(|l| Path::new(&l).is_file());
    let model = ["tokenizer.json", "model.onnx"]
        .iter()
        .all(|f| models.join("all-minilm-l6-v2").join(f).is_file());
    if model && runtime {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI must provide the embedding model (scripts/fetch-model.sh) and SLUICE_ONNXRUNTIME (.ci/run does both)"
    );
    eprintln!(
        "skipped: no embedding model in {} (run scripts/fetch-model.sh) or no SLUICE_ONNXRUNTIME",
        models.display()
    );
    false
}

/// A small deterministic generator, seeded from the clock (or
/// `SLUICE_CRASH_SEED`) and printed, so a failing crash trial can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    /// Seeded from `SLUICE_CRASH_SEED`, else the clock; `what` names the test
    /// in the printed seed.
    pub fn seeded(what: &str) -> Self {
        let seed = std::env::var("SLUICE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(7, |d| d.as_nanos() as u64)
            });
        eprintln!("{what} seed: {seed} (set SLUICE_CRASH_SEED to replay)");
        Lcg(seed)
    }

    /// The next value, 31 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// SIGKILLs child processes at random moments within a window that is a share
/// of a run's time. The window is first set from one timed run. When each
/// trial's run does the same work, the window learns ([`RandomKills::learning`]):
/// whenever a child ends before its kill, the window is set again from that
/// run's time, so a machine that speeds up or slows down (other tests starting
/// or ending) still sees its kills land while runs run. A child that fails
/// before its kill is counted in `failed` and leaves the window as it is.
pub struct RandomKills {
    rng: Lcg,
    window_ms: u64,
    share: (u64, u64),
    learns: bool,
    /// Kills that landed while the child still ran.
    pub landed: usize,
    /// Children that ended with a failure before their kill.
    pub failed: usize,
}

impl RandomKills {
    /// Kills fall in `[0, run × num / den)`, at least 200 ms, a window that
    /// learns from the runs that end before their kill.
    pub fn learning(rng: Lcg, run: std::time::Duration, num: u64, den: u64) -> Self {
        RandomKills {
            learns: true,
            ..Self::fixed(rng, run, num, den)
        }
    }

    /// Kills fall in `[0, run × num / den)`, at least 200 ms, for trials whose
    /// runs may do less than the timed one (a run with nothing to do is short).
    pub fn fixed(rng: Lcg, run: std::time::Duration, num: u64, den: u64) -> Self {
        let mut kills = RandomKills {
            rng,
            window_ms: 0,
            share: (num, den),
            learns: false,
            landed: 0,
            failed: 0,
        };
        kills.set_window(run);
        kills
    }

    fn set_window(&mut self, run: std::time::Duration) {
        let (num, den) = self.share;
        self.window_ms = (run.as_millis() as u64 * num / den).max(200);
    }

    /// The current window, in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Waits a random moment of the window from now (the child was just
    /// spawned), then kills and reaps the child. Returns whether it still ran.
    pub fn kill(&mut self, child: &mut std::process::Child) -> bool {
        let started = std::time::Instant::now();
        let delay = std::time::Duration::from_millis(self.rng.next() % self.window_ms);
        loop {
            if let Some(status) = child.try_wait().expect("poll") {
                // It ended first: a whole run's time says how long runs take
                // now (a failed one's says nothing).
                if !status.success() {
                    self.failed += 1;
                } else if self.learns {
                    self.set_window(started.elapsed());
                }
                return false;
            }
            let waited = started.elapsed();
            if waited >= delay {
                break;
            }
            std::thread::sleep((delay - waited).min(std::time::Duration::from_millis(5)));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        self.landed += 1;
        true
    }
}

/// `batches` written to `path` as one Snappy-compressed Parquet file (another
/// codec than sluice's own zstd).
pub fn write_snappy_parquet(path: &Path, batches: &[datafusion::arrow::array::RecordBatch]) {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        batches[0].schema(),
        Some(props),
    )
    .expect("writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.close().expect("close");
}
