//! Real processes for fault drills: a private Redis, a private PostgreSQL cluster, the `manchengo` binary. Each one
//! listens on a random loopback port and is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tempdir::Dir;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_tcp(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub struct PrivateRedis {
    pub port: u16,
    pub password: String,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = free_port();
        let mut r = PrivateRedis { port, password: format!("pw{}", uuid::Uuid::now_v7().simple()), child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password, self.port)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", &self.password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        self.child = Some(child);
        assert!(wait_tcp(self.port, Duration::from_secs(10)), "private redis did not start");
    }

    /// `docker kill` of the runbook: SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    versions.last().map(|v| v.join("bin").join(tool)).unwrap_or_else(|| PathBuf::from(tool))
}

/// A PostgreSQL cluster of our own (initdb in a temp dir, run as the `postgres` system user, random port), with user
/// `manchengo` and database `manchengo_erp` as in production.
pub struct PrivatePostgres {
    pub port: u16,
    dir: Dir,
}

/// PostgreSQL refuses to run as root: as root, its tools run as the `postgres` system user.
fn as_postgres(cmd: &Path, args: &[&str]) -> std::process::Output {
    let root = is_uid0();
    let mut c = if root { Command::new("runuser") } else { Command::new(cmd) };
    if root {
        c.args(["-u", "postgres", "--"]).arg(cmd);
    }
    c.args(args).stdin(Stdio::null()).output().expect("run postgres tool")
}

fn is_uid0() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = Dir::new("pg");
        let data = dir.path().join("data");
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let out = as_postgres(
            &pg_bin("initdb"),
            &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let pg = PrivatePostgres { port: free_port(), dir };
        pg.start_server();
        let psql = pg_bin("psql");
        // As in the official image, POSTGRES_USER (manchengo) is the cluster's superuser: the restore script creates,
        // renames and drops databases as that user.
        for sql in ["CREATE USER manchengo SUPERUSER", "CREATE DATABASE manchengo_erp OWNER manchengo"] {
            let out = as_postgres(&psql, &["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-c", sql]);
            assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://manchengo@127.0.0.1:{}/manchengo_erp", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn start_server(&self) {
        let opts =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("pg.log").display().to_string();
        let out =
            as_postgres(&pg_bin("pg_ctl"), &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "-t", "30", "start"]);
        assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `docker compose stop postgres`, the hard way.
    pub fn stop_immediate(&self) {
        let out = as_postgres(&pg_bin("pg_ctl"), &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"), &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

/// The real `manchengo serve`, with its own environment only (nothing inherited but PATH), stdout captured to a file.
pub struct Manchengo {
    pub port: u16,
    pub log: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub workdir: Dir,
}

impl Manchengo {
    pub fn spawn(env: &[(&str, &str)]) -> Manchengo {
        let workdir = Dir::new("srv");
        let port = free_port();
        let mut m = Manchengo {
            port,
            log: workdir.path().join("stdout.log"),
            child: None,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            workdir,
        };
        m.start();
        m
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_manchengo"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .env("DATA_DIR", self.workdir.path().join("data"))
            .env("INSTANCE_NAME", "backend")
            .env("LOG_FORMAT", "json")
            .current_dir(self.workdir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn manchengo"));
        assert!(wait_tcp(self.port, Duration::from_secs(20)), "manchengo did not listen");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGTERM and wait for the graceful exit.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no drain, no flush beyond what the database already made durable.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Manchengo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Debian's nginx running the shipped configuration (rendered by `infra/nginx/render.sh` for loopback) in front of
/// two app instances, as the compose `nginx` service is in front of `backend` and `web`.
pub struct Nginx {
    pub http: u16,
    pub https: u16,
    pub log: PathBuf,
    /// The rendered configuration: plays /etc/nginx; `certbot/` in it is the ACME webroot (/var/www/certbot).
    pub conf: PathBuf,
    child: Option<Child>,
    _dir: Dir,
}

impl Nginx {
    /// `None` when nginx is not installed and we are not in CI.
    pub fn start(backend: u16, web: u16) -> Option<Nginx> {
        Nginx::start_with(backend, web, None)
    }

    /// With `live`: the certificate directory certbot manages, instead of a self-signed stand-in.
    pub fn start_with(backend: u16, web: u16, live: Option<&Path>) -> Option<Nginx> {
        if Command::new("nginx").arg("-v").stderr(Stdio::null()).status().is_err() {
            assert!(!super::in_ci(), "nginx is required in CI");
            eprintln!("nginx absent : exercice nginx ignoré localement");
            return None;
        }
        let dir = Dir::new("nginx");
        let conf = dir.path().join("conf");
        let (http, https) = (free_port(), free_port());
        let render = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/nginx/render.sh");
        let mut render = Command::new(render);
        if let Some(live) = live {
            render.env("LETSENCRYPT_LIVE", live);
        }
        let ok = render
            .arg(&conf)
            .args([http.to_string(), https.to_string()])
            .args([format!("127.0.0.1:{backend}"), format!("127.0.0.1:{web}")])
            .status()
            .expect("render.sh");
        assert!(ok.success(), "render.sh failed");
        let log = dir.path().join("stdout.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("nginx")
            .args(["-e", "stderr", "-p"])
            .arg(format!("{}/", conf.display()))
            .arg("-c")
            .arg(conf.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn nginx");
        let n = Nginx { http, https, log, conf, child: Some(child), _dir: dir };
        assert!(wait_tcp(https, Duration::from_secs(10)), "nginx did not listen:\n{}", n.logs());
        Some(n)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.https, path)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The compose deployment as processes (PLATFORM.md §15.1): `docker` on PATH is `infra/drills/docker`, which maps
/// `docker compose exec postgres …`, `stop backend`, `run --rm backup manchengo …` and the like onto the private
/// cluster, the private Redis and the real binary. Scripts of `infra/` and runbook lines run verbatim in it.
pub struct Deployment {
    pub pg: PrivatePostgres,
    pub redis: Option<PrivateRedis>,
    pub backend: u16,
    pub web: u16,
    dir: Dir,
}

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

impl Deployment {
    /// A private PostgreSQL (and Redis when asked), a `.env` like production's with `extra_env` appended. No app
    /// service runs yet.
    pub fn new(with_redis: bool, extra_env: &str) -> Deployment {
        let pg = PrivatePostgres::start();
        let redis = with_redis.then(PrivateRedis::start);
        let dir = Dir::new("compose");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(Path::new(REPO).join("infra/drills/docker"), bin.join("docker")).unwrap();
        // The deployment directory (/opt/manchengo): the repository's kit and the deployment's own `.env`.
        for item in ["infra", "docker-compose.yml", "docs"] {
            std::os::unix::fs::symlink(Path::new(REPO).join(item), dir.path().join(item)).unwrap();
        }
        let mut env = format!(
            "DATABASE_URL={}\nBACKUP_DIR={}\nAPP_ENV=production\nPUBLIC_URL=https://erp.example.dz\nTRUSTED_PROXIES=127.0.0.10/32\n",
            pg.url(),
            dir.path().join("backups/manchengo").display()
        );
        if let Some(r) = &redis {
            env.push_str(&format!("REDIS_URL={}\n", r.url()));
        }
        env.push_str(extra_env);
        std::fs::write(dir.path().join(".env"), env).unwrap();
        Deployment { pg, redis, backend: free_port(), web: free_port(), dir }
    }

    pub fn env_file(&self) -> PathBuf {
        self.dir.path().join(".env")
    }

    /// The host's `/backups`.
    pub fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    pub fn url(&self, port: u16, path: &str) -> String {
        format!("http://127.0.0.1:{port}{path}")
    }

    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{service}.log"))).unwrap_or_default()
    }

    /// Runs a shell command in the deployment directory, as the runbook's operator does.
    pub fn sh(&self, script: &str) -> std::process::Output {
        self.sh_with(script, "", &[])
    }

    pub fn sh_with(&self, script: &str, stdin: &str, env: &[(&str, &str)]) -> std::process::Output {
        use std::io::Write;
        let path = format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("DRILL_DIR", self.dir.path())
            .env("DRILL_MANCHENGO", env!("CARGO_BIN_EXE_manchengo"))
            .env("DRILL_ENV_FILE", self.env_file())
            .env("DRILL_PG_PORT", self.pg.port.to_string())
            .env("DRILL_PORT_BACKEND", self.backend.to_string())
            .env("DRILL_PORT_WEB", self.web.to_string())
            .env("BACKUPS", self.backups().join("manchengo"))
            .env("MANCHENGO_READY_URL", self.url(self.backend, "/api/health/ready"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(r) = &self.redis {
            cmd.env("DRILL_REDIS_PORT", r.port.to_string()).env("DRILL_REDIS_PASSWORD", &r.password);
        }
        let mut child = cmd.spawn().expect("bash");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for svc in ["backend", "web", "backup"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join(format!("{svc}.pid"))) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
    }
}

pub fn output_text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
