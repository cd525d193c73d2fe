//! Running a step's command: started in its own process group, its stdout and
//! stderr appended to the run's log (secret values masked), the group killed
//! when the command ends or when the future running it is dropped (a timeout),
//! so that nothing it started outlives it.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;

use sluice_core::ErrorClass;
use sluice_project::StepDef;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How many lines of stderr a failure carries.
pub(crate) const TAIL_LINES: usize = 20;

/// The exit status by which a command says "try me again" (`EX_TEMPFAIL` of
/// sysexits.h): its failure is transient.
pub(crate) const EX_TEMPFAIL: i32 = 75;

/// Why a step's command failed. Every message names the step and says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// An `env` value reads a variable sluice's environment does not have.
    #[error(
        "step `{step}`: `env.{key}` reads the environment variable `{variable}`, which is not set\n  help: set `{variable}` in the environment sluice runs in"
    )]
    UnsetVariable {
        /// The step.
        step: String,
        /// The `env` entry.
        key: String,
        /// The variable it reads.
        variable: String,
    },
    /// The program could not be started.
    #[error(
        "step `{step}`: cannot start `{program}`: {source}\n  help: {}",
        start_help(source)
    )]
    Start {
        /// The step.
        step: String,
        /// The program, as written.
        program: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The command ended with a failure.
    #[error("step `{step}`: the command {}{}\n  help: {}; its whole output is in {}", ended(status), tail(stderr), exit_help(status), log.display())]
    Exit {
        /// The step.
        step: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr: Vec<String>,
        /// The run's log.
        log: PathBuf,
    },
    /// The command succeeded but wrote no output file.
    #[error("step `{step}`: the command exited with status 0 but wrote no file at {} (the path in SLUICE_OUTPUT){}\n  help: write the step's output to the path in the environment variable SLUICE_OUTPUT; its whole output is in {}", path.display(), tail(stderr), log.display())]
    MissingOutput {
        /// The step.
        step: String,
        /// The path it should have written.
        path: PathBuf,
        /// The last lines of its stderr.
        stderr: Vec<String>,
        /// The run's log.
        log: PathBuf,
    },
    /// The output file was written but cannot be read as its format (or its
    /// rows failed the step's contract).
    #[error("step `{step}`: the command exited with status 0, but its output was not committed: {message}{}\n  help: the output must be {format} and meet the step's contract; the command's whole output is in {}", tail(stderr), log.display())]
    Malformed {
        /// The step.
        step: String,
        /// The reader's message (the file, line and column first).
        message: String,
        /// `Parquet` or `CSV with a header line`.
        format: &'static str,
        /// The last lines of its stderr.
        stderr: Vec<String>,
        /// The run's log.
        log: PathBuf,
    },
    /// Preparing or cleaning up around the command failed.
    #[error("step `{step}`: cannot {what} {}: {source}", path.display())]
    Io {
        /// The step.
        step: String,
        /// What sluice was doing.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl StepError {
    /// Exit status 75 (`EX_TEMPFAIL`) is the command asking to be run again;
    /// every other failure of the command is permanent; I/O by its kind.
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            StepError::Exit { status, .. } if status.code() == Some(EX_TEMPFAIL) => {
                ErrorClass::Transient
            }
            StepError::Io { source, .. } => ErrorClass::of_io(source),
            StepError::Start { source, .. } => ErrorClass::of_io(source),
            StepError::UnsetVariable { .. }
            | StepError::Exit { .. }
            | StepError::MissingOutput { .. }
            | StepError::Malformed { .. } => ErrorClass::Permanent,
        }
    }
}

fn start_help(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "check the first item of `command`: a bare name is looked up on PATH, a path with `/` is relative to the project folder"
        }
        std::io::ErrorKind::PermissionDenied => {
            "make the program executable (`chmod +x`), or run it through its interpreter (`[\"sh\", \"steps/run.sh\"]`)"
        }
        _ => "check the step's `command`",
    }
}

fn ended(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}{}", signal_name(signal)),
        (None, None) => format!("ended with {status}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

fn exit_help(status: &ExitStatus) -> &'static str {
    if status.code() == Some(EX_TEMPFAIL) {
        "status 75 (EX_TEMPFAIL) says the failure is temporary: the step may be run again as it is"
    } else {
        "fix the command or its inputs and run again"
    }
}

/// The stderr lines as they are shown in a message.
fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it wrote nothing to stderr".to_string();
    }
    let mut out = format!("; the last {} lines of its stderr:", lines.len());
    if lines.len() == 1 {
        out = "; the last line of its stderr:".to_string();
    }
    for l in lines {
        out.push_str("\n    ");
        out.push_str(l);
    }
    out
}

/// A command to run for a step.
pub(crate) struct Invocation<'a> {
    /// The step's name.
    pub step: &'a str,
    /// Its definition: program, arguments, folder, `env`.
    pub def: &'a StepDef,
    /// The `SLUICE_*` variables sluice hands it.
    pub vars: Vec<(String, String)>,
    /// The run's log, appended to.
    pub log: &'a Path,
    /// The header line written to the log before the command's output.
    pub header: String,
}

/// What a command that exited with status 0 left behind.
#[derive(Debug)]
pub(crate) struct Ran {
    /// The last lines of its stderr, secrets masked.
    pub stderr: Vec<String>,
}

/// Runs the command to its end. Its process group is killed once its main
/// process exits, and when this future is dropped before that.
pub(crate) async fn run(inv: Invocation<'_>) -> Result<Ran, StepError> {
    let step = inv.step.to_string();
    let io = |what: &'static str, path: &Path| {
        let step = step.clone();
        let path = path.to_path_buf();
        move |source| StepError::Io {
            step,
            what,
            path,
            source,
        }
    };
    let mut secrets = Vec::new();
    let mut env = Vec::new();
    for (key, value) in &inv.def.env {
        let exposed = value.expose().map_err(|e| StepError::UnsetVariable {
            step: step.clone(),
            key: key.clone(),
            variable: e.0,
        })?;
        if !value.variables().is_empty() && exposed.len() >= MIN_MASKED {
            secrets.push(exposed.clone());
        }
        env.push((key.clone(), exposed));
    }
    if let Some(dir) = inv.log.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(inv.log)
        .map_err(io("open the log", inv.log))?;
    writeln!(file, "{}", inv.header).map_err(io("write the log", inv.log))?;
    let log = Log {
        file: Mutex::new(file),
        secrets,
    };

    let named = inv.def.program();
    let path_var = env
        .iter()
        .chain(&inv.vars)
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v));
    let program = on_path(&named, path_var);
    let mut cmd = tokio::process::Command::new(&program);
    // The name as written stays the program's own name (`argv[0]`).
    cmd.arg0(&named)
        .args(inv.def.command.iter().skip(1))
        .current_dir(&inv.def.dir)
        .envs(env)
        .envs(inv.vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| StepError::Start {
        step: step.clone(),
        program: inv.def.command.first().cloned().unwrap_or_default(),
        source,
    })?;
    // Armed before anything can fail or be cancelled.
    let mut group = ProcessGroup::of(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let wait = async {
        let status = child.wait().await;
        // The main process is gone; what it left running in the background
        // goes too, which also closes the pipes the readers wait on.
        group.kill();
        status
    };
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let (status, out_result, err_result) = tokio::join!(
        wait,
        copy_lines(stdout, "stdout", &log, None),
        copy_lines(stderr, "stderr", &log, Some(&mut tail)),
    );
    let status = status.map_err(io("wait for the command of", &inv.def.dir))?;
    out_result.map_err(io("write the log", inv.log))?;
    err_result.map_err(io("write the log", inv.log))?;
    let stderr: Vec<String> = tail.into_iter().collect();
    if !status.success() {
        log.line(&format!("--- sluice: the command {}", ended(&status)))
            .map_err(io("write the log", inv.log))?;
        return Err(StepError::Exit {
            step,
            status,
            stderr,
            log: inv.log.to_path_buf(),
        });
    }
    Ok(Ran { stderr })
}

/// A bare program name (`python3`) looked up in the folders of `PATH` (the
/// step's own `PATH` when its `env` sets one, as the operating system would):
/// started by its name, the program would be looked for by trying `execve`
/// in each folder before the one that has it, on every start. A name with a
/// `/`, or one found nowhere, is returned as it is (starting it then fails
/// with the system's own reason).
fn on_path(program: &Path, path_var: Option<std::ffi::OsString>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bare = program.components().count() == 1 && !program.is_absolute();
    if !bare || program.as_os_str().is_empty() {
        return program.to_path_buf();
    }
    let Some(path_var) = path_var.or_else(|| std::env::var_os("PATH")) else {
        return program.to_path_buf();
    };
    std::env::split_paths(&path_var)
        // An empty entry would mean sluice's own folder, not the step's.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| program.to_path_buf())
}

/// Secret values shorter than this are not masked in the log: masking `1`
/// would garble every number.
const MIN_MASKED: usize = 4;

/// The run's log, shared by the stdout and stderr readers.
struct Log {
    file: Mutex<std::fs::File>,
    secrets: Vec<String>,
}

impl Log {
    /// `text` with every secret value replaced by `***`.
    fn mask(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
    }

    fn line(&self, line: &str) -> std::io::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("the log's lock is poisoned"))?;
        writeln!(file, "{line}")
    }
}

/// Copies a pipe into the log line by line (masked), keeping the last lines in
/// `tail`; each line is also a log event of the step's attempt, so that the run
/// log has it (`stream` names the pipe).
async fn copy_lines(
    pipe: Option<impl AsyncRead + Unpin>,
    stream: &'static str,
    log: &Log,
    mut tail: Option<&mut VecDeque<String>>,
) -> std::io::Result<()> {
    let Some(pipe) = pipe else {
        return Ok(());
    };
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // A pipe that breaks (the group was killed mid-line) ends the copy.
        let n: usize = reader.read_until(b'\n', &mut buf).await.unwrap_or_default();
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&buf);
        let line = log.mask(text.trim_end_matches(['\n', '\r']));
        log.line(&line)?;
        tracing::info!(target: "sluice::step", stream, "{line}");
        if let Some(tail) = tail.as_deref_mut() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// A command's process group, killed (SIGKILL) when dropped unless it was
/// already killed.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn of(pid: Option<u32>) -> Self {
        // Never 0 or 1: kill(-1) would signal every process sluice may.
        Self(pid.filter(|p| *p > 1))
    }

    /// Kills every process of the group (`killpg(PGID, SIGKILL)`); a group
    /// already gone is no error.
    fn kill(&mut self) {
        let Some(pgid) = self.0.take() else {
            return;
        };
        let Some(pid) = i32::try_from(pgid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        match rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => tracing::warn!("cannot kill process group {pgid}: {e}"),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_bare_name_is_found_on_the_path_the_step_gets() {
        let dir = tempfile::tempdir().expect("dir");
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(dir.path().join("data"), "").expect("write");
        let path = std::env::join_paths(["/nonexistent", "", dir.path().to_str().expect("utf-8")])
            .expect("join");

        assert_eq!(on_path(Path::new("tool"), Some(path.clone())), tool);
        // Not executable, not found, or not a bare name: left as written.
        assert_eq!(
            on_path(Path::new("data"), Some(path.clone())),
            Path::new("data")
        );
        assert_eq!(
            on_path(Path::new("nowhere"), Some(path)),
            Path::new("nowhere")
        );
        assert_eq!(on_path(Path::new("bin/tool"), None), Path::new("bin/tool"));
        assert_eq!(on_path(&tool, None), tool);
        // sluice's own PATH when the step sets none.
        assert!(on_path(Path::new("sh"), None).is_absolute());
    }
}
