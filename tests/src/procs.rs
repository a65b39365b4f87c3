//! Child processes for end-to-end tests: located beside the test executable (built once if missing), always killed
//! and reaped ([`ChildGuard`]), and every wait bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    /// What it is, for messages.
    pub name: String,
}

impl ChildGuard {
    /// Guard `child`.
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        Self {
            child: Some(child),
            name: name.into(),
        }
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The child, e.g. to take its pipes.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Exited already? (`Some(status)` once it has.)
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait at most `timeout` for the child to exit; kill it if it does not. `None` when it had to be killed.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill (SIGKILL) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The output of a process run to completion.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

impl Finished {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Run `cmd` to completion (stdin closed, stdout and stderr captured), killing it after `timeout`.
pub fn run_to_completion(
    name: &str,
    cmd: &mut Command,
    timeout: Duration,
) -> std::io::Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let mut guard = ChildGuard::new(name, child);
    let status = guard.wait_timeout(timeout);
    let collect = |rx: Option<mpsc::Receiver<String>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(10)).ok())
            .unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: collect(out),
        stderr: collect(err),
    })
}

/// `target/<profile>/` of the running test executable (`target/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

/// The workspace binaries the end-to-end tests run.
pub const WORKSPACE_BINS: &[&str] = &["locus-verifier", "locus-agent", "locus-sim"];

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Build the verifier, agent and simulator binaries into the test's own target directory and profile, once per
/// process (`$CARGO build -p locus-verifier -p locus-agent -p locus-simulator --bins`).
fn build_workspace_bins(profile_dir: &Path) -> Result<(), String> {
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(crate::paths::repo_root()).args([
                "build",
                "-p",
                "locus-verifier",
                "-p",
                "locus-agent",
                "-p",
                "locus-simulator",
                "--bins",
            ]);
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => {}
                Some("release") => {
                    cmd.arg("--release");
                }
                Some(other) => {
                    cmd.args(["--profile", other]);
                }
            }
            if let Some(target) = profile_dir.parent() {
                cmd.arg("--target-dir").arg(target);
            }
            eprintln!("locus-tests: building the workspace binaries: {cmd:?}");
            let done = run_to_completion("cargo build", &mut cmd, Duration::from_secs(1200))
                .map_err(|e| format!("running cargo: {e}"))?;
            if done.success() {
                Ok(())
            } else {
                Err(format!(
                    "cargo build failed ({:?}):\n{}",
                    done.status, done.stderr
                ))
            }
        })
        .clone()
}

/// The newest modification time of the sources the workspace binaries are built from (the crates' `src/` trees,
/// their manifests, the workspace manifest and lock file).
fn newest_source_mtime() -> Option<SystemTime> {
    fn walk(p: &Path, newest: &mut Option<SystemTime>, depth: usize) {
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if meta.is_dir() {
            if depth > 8 {
                return;
            }
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), newest, depth + 1);
                }
            }
        } else if let Ok(m) = meta.modified() {
            if newest.is_none_or(|n| m > n) {
                *newest = Some(m);
            }
        }
    }
    let root = crate::paths::repo_root();
    let mut newest = None;
    walk(&root.join("Cargo.toml"), &mut newest, 0);
    walk(&root.join("Cargo.lock"), &mut newest, 0);
    for krate in ["hw", "wimse", "simulator", "verifier", "agent"] {
        walk(&root.join(krate).join("Cargo.toml"), &mut newest, 0);
        walk(&root.join(krate).join("src"), &mut newest, 0);
    }
    newest
}

fn is_fresh(bin: &Path) -> bool {
    let Some(built) = std::fs::metadata(bin).ok().and_then(|m| m.modified().ok()) else {
        return false;
    };
    newest_source_mtime().is_none_or(|src| src <= built)
}

/// The path of workspace binary `name` (one of [`WORKSPACE_BINS`]) beside the test executable. When it is missing
/// or older than the workspace sources, the binaries are built once (into the same target directory and profile).
pub fn workspace_bin(name: &str) -> Result<PathBuf, String> {
    let dir = profile_dir().ok_or("cannot locate the test executable's directory")?;
    let path = dir.join(name);
    if is_fresh(&path) {
        return Ok(path);
    }
    build_workspace_bins(&dir)?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing even after building", path.display()))
    }
}

/// A `locus-verifier serve` process on `127.0.0.1:0`.
#[derive(Debug)]
pub struct VerifierProcess {
    /// The process (killed on drop).
    pub guard: ChildGuard,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Where its stderr goes.
    pub stderr_path: PathBuf,
}

impl VerifierProcess {
    /// Start `bin serve --config config --listen 127.0.0.1:0` and wait (at most `timeout`) for its
    /// `listening on ADDR` line.
    pub fn start(
        bin: &Path,
        config: &Path,
        stderr_path: &Path,
        timeout: Duration,
    ) -> Result<Self, String> {
        let stderr = std::fs::File::create(stderr_path).map_err(|e| format!("stderr file: {e}"))?;
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut guard = ChildGuard::new("locus-verifier", child);
        let stdout = guard
            .child_mut()
            .and_then(|c| c.stdout.take())
            .ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep reading so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let read_stderr = || std::fs::read_to_string(stderr_path).unwrap_or_default();
        let line = match rx.recv_timeout(timeout) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                return Err(format!(
                    "verifier exited before listening; stderr:\n{}",
                    read_stderr()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "verifier not listening after {timeout:?}; stderr:\n{}",
                    read_stderr()
                ))
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}; stderr:\n{}", read_stderr()))?;
        Ok(Self {
            guard,
            base: format!("http://{addr}"),
            stderr_path: stderr_path.to_path_buf(),
        })
    }

    /// Start the workspace's `locus-verifier` on a copy of `examples/verifier.toml` written into `dir`, with its
    /// state in `dir/state` (see [`crate::paths::example_config_for`]).
    pub fn start_example(dir: &Path, timeout: Duration) -> Result<Self, String> {
        let bin = workspace_bin("locus-verifier")?;
        let config = crate::paths::example_config_for(&dir.join("state"), None)
            .map_err(|e| e.to_string())?;
        let config_path = dir.join("verifier.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        Self::start(&bin, &config_path, &dir.join("verifier.stderr"), timeout)
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Poll `check` every 50 ms until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
