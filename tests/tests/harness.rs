//! The harness itself: a PostgreSQL or Redis it starts answers on its port,
//! and is gone when dropped.

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

#[test]
fn redis_starts_keeps_writes_across_a_clean_restart_and_stops() {
    let mut redis = mcp_tests::TestRedis::start();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    assert_eq!(redis.command(&["SET", "k", "v"]), "+OK");
    redis.stop();
    assert!(TcpStream::connect(("127.0.0.1", redis.port())).is_err(), "stopped means not listening");
    redis.restart();
    assert_eq!(redis.command(&["GET", "k"]), "v", "the append-only file kept the write");
    assert_eq!(redis.command(&["RPUSH", "l", "a", "b"]), ":2");
    assert_eq!(redis.command(&["LRANGE", "l", "0", "-1"]), "a\nb");
    let (port, dir) = (redis.port(), redis.dir().to_path_buf());
    assert!(dir.join("appendonlydir").is_dir(), "the append-only file lives in the temporary directory");
    drop(redis);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the server is killed on drop");
    assert!(!dir.exists(), "the temporary directory is removed on drop");
}
