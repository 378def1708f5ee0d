//! A PostgreSQL database of its own for each test, on the server the test machines run
//! (127.0.0.1:5432, trust auth; `FRAMECAST_TEST_POSTGRES` names another admin URL), dropped
//! when the test ends, failed or not.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The server's maintenance database, from which test databases are created and dropped.
pub fn admin_url() -> String {
    std::env::var("FRAMECAST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDatabase {
    pub name: String,
    /// `postgres://...` for this database.
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Unique across test binaries running at once (pid) and within one (counter).
        let name = format!(
            "framecast_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin(format!("CREATE DATABASE {name}"));
        let admin = admin_url();
        let base = admin.rsplit_once('/').expect("admin URL with a database").0;
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Runs `sql` in this database.
    pub fn execute(&self, sql: &str) -> Vec<tokio_postgres::SimpleQueryMessage> {
        run_sql(self.url.clone(), sql.to_owned())
    }

    /// The first column of the first row `sql` returns, as text.
    pub fn value(&self, sql: &str) -> Option<String> {
        self.execute(sql).into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
            _ => None,
        })?
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE: the catalog under test may still hold pooled connections.
        admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn admin(sql: String) {
    run_sql(admin_url(), sql);
}

/// On a thread and runtime of its own, so that it works from sync tests, async tests and
/// drops alike.
fn run_sql(url: String, sql: String) -> Vec<tokio_postgres::SimpleQueryMessage> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
            tokio::spawn(connection);
            client
                .simple_query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        })
    })
    .join()
    .expect("SQL thread")
}

/// `host:port` of the test server, from the admin URL.
fn server_address() -> String {
    let url = admin_url();
    let authority = url.split('@').nth(1).unwrap_or(&url);
    authority.split('/').next().unwrap().to_owned()
}

impl TestDatabase {
    /// This database's URL through `relay`.
    pub fn url_via(&self, relay: &Relay) -> String {
        self.url
            .replace(&server_address(), &format!("127.0.0.1:{}", relay.port))
    }
}

/// A TCP relay to PostgreSQL that the test can cut and bring back on the same port: the
/// server going away and returning, without touching the machine's PostgreSQL.
pub struct Relay {
    pub port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    pub async fn start(port: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = connections.clone();
        let accept = tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let relay = tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(server_address())
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                accepted.lock().unwrap().push(relay.abort_handle());
            }
        });
        Relay {
            port,
            tasks: vec![accept],
            connections,
        }
    }

    /// Closes the listener and every relayed connection, and waits until they are closed.
    pub async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}
