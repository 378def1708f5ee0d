//! Real media origins for the remote-media tests: nginx (Debian's) serving a folder over
//! HTTP with ranges, and moto's S3 server (PyPI, installed into target/moto-venv by
//! scripts/moto-venv.sh). Each test starts its own on a free loopback port and stops it on
//! drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until something accepts connections on `port`, panicking after `limit`.
fn wait_for_port(port: u16, limit: Duration, child: &mut Child, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited at start: {status}");
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not listen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx serving `root` on a loopback port, with an access log of every request.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(root: &Path) -> Nginx {
        Self::start_with(root, free_port(), "")
    }

    /// On `port`, with `directives` added to its one location.
    pub fn start_with(root: &Path, port: u16, directives: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format ranges '$request_method $uri "$http_range" $status $body_bytes_sent $connection';
    access_log {d}/access.log ranges;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ video/mp4 mp4; }}
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ {directives} }}
    }}
}}
"#,
            root = root.display()
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let mut child = Command::new(nginx_binary())
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx is installed (scripts/install-deps.sh)");
        wait_for_port(port, Duration::from_secs(10), &mut child, "nginx");
        Nginx { child, port, dir }
    }

    /// The URL of `name` under the root.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    pub fn prefix(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The access log's lines so far: `METHOD URI "RANGE" STATUS BYTES CONNECTION`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    PathBuf::from("nginx")
}

/// A TCP server that accepts connections and never answers: an origin that stalls.
pub struct Silent {
    pub port: u16,
    _listener: TcpListener,
}

impl Silent {
    /// On `port` (one just freed, say by stopping an origin).
    pub fn start_on(port: u16) -> Silent {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        // The kernel completes connections into the backlog: nothing is ever read or sent.
        Silent {
            port,
            _listener: listener,
        }
    }
}

/// moto's S3 server on a loopback port, with credentials that tests pass to framecast as
/// the usual AWS variables.
pub struct Moto {
    child: Child,
    pub port: u16,
    venv: PathBuf,
}

pub const AWS_KEY: &str = "framecast-test-key";
pub const AWS_SECRET: &str = "framecast-test-secret-key";

impl Moto {
    pub fn start() -> Moto {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv");
        let installed = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto-venv.sh"))
            .arg(&venv)
            .status()
            .expect("scripts/moto-venv.sh runs");
        assert!(installed.success(), "moto could not be installed");
        let port = free_port();
        let mut child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        wait_for_port(port, Duration::from_secs(30), &mut child, "moto_server");
        Moto { child, port, venv }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment framecast needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FRAMECAST_S3_ENDPOINT", self.endpoint()),
            ("FRAMECAST_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", AWS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
        ]
    }

    /// Runs boto3 (moto's dependency) against this server.
    fn boto(&self, script: &str) {
        let output = Command::new(self.venv.join("bin/python"))
            .arg("-c")
            .arg(format!(
                "import boto3, sys\n\
                 s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
                 aws_access_key_id='{AWS_KEY}', aws_secret_access_key='{AWS_SECRET}')\n{script}",
                self.endpoint()
            ))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.boto(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }

    pub fn put(&self, bucket: &str, key: &str, file: &Path) {
        self.boto(&format!(
            "s3.upload_file('{}', '{bucket}', '{key}')",
            file.display()
        ));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
