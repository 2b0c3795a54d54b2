//! The harness itself: a PostgreSQL it starts answers on its port, and is
//! gone when dropped.

use std::net::TcpStream;

#[test]
fn postgres_starts_answers_and_stops() {
    let pg = mcp_tests::TestPostgres::start();
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));
    TcpStream::connect(("127.0.0.1", pg.port())).expect("PostgreSQL accepts connections");
    let out = std::process::Command::new("psql")
        .args([pg.url().as_str(), "-tAc", "select 40 + 2"])
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{}", String::from_utf8_lossy(&out.stderr));
    let port = pg.port();
    drop(pg);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the server is stopped on drop");
}
