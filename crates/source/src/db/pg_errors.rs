//! PostgreSQL connection details for messages, and the class of its errors:
//! a message names the host, port, database and user, never the password.

use tokio_postgres::Config;

/// `host:port, database `db` (user `u`)`.
pub(crate) fn target_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    format!("{host}:{port}, database `{db}` (user `{user}`)")
}

/// The message of `e` and of its causes (tokio-postgres puts the reason in
/// the source: "error connecting to server" + "Connection refused").
pub(crate) fn full_message(e: &tokio_postgres::Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// The network error under `e`, by kind (the class of the failure).
pub(crate) fn io_cause(e: &tokio_postgres::Error) -> Option<std::io::Error> {
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(std::io::Error::from(io.kind()));
        }
        cur = s.source();
    }
    if e.is_closed() {
        return Some(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    }
    None
}

/// Server states worth a retry: connection failures (08), too many
/// connections or out of resources (53), a shutting down server (57P0x),
/// serialization failures and deadlocks (40001, 40P01).
pub(crate) fn transient_state(e: &tokio_postgres::Error) -> Option<std::io::Error> {
    let code = e.code()?.code();
    (code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || code == "40001"
        || code == "40P01")
        .then(|| std::io::Error::from(std::io::ErrorKind::ConnectionReset))
}

/// The password of a URL, to scrub it from messages a parser may echo.
pub(crate) fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    let decoded = percent_decode(password);
    Some(decoded)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// `message` with every occurrence of the password replaced by `***`.
pub(crate) fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => message.replace(p, "***"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_server_and_never_the_password() {
        let config: Config = "postgres://app:s3cr%40t@db.example:6543/sales"
            .parse()
            .expect("url");
        assert_eq!(
            target_of(&config),
            "db.example:6543, database `sales` (user `app`)"
        );
        assert_eq!(
            password_of("postgres://app:s3cr%40t@db.example:6543/sales").as_deref(),
            Some("s3cr@t")
        );
        assert_eq!(
            scrub("password s3cr@t rejected", Some("s3cr@t")),
            "password *** rejected"
        );
    }
}
