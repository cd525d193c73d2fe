//! Whether a failure is worth retrying. Every crate's `Error::class` answers
//! with an [`ErrorClass`]; the runner's retries read nothing else, never the text.
//!
//! The helpers here need no engine: DataFusion's and Arrow's errors expose what
//! they wrap (`External`, `IoError`, `Context`, `Shared`, ...) through
//! [`std::error::Error::source`], so walking `source()` reaches an I/O error
//! buried under any number of engine layers.

use std::error::Error;
use std::io;

/// Whether running the same work again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Worth retrying: the world may be different in a moment. An I/O timeout;
    /// a connection refused, reset or aborted; an interrupted call; HTTP 429 or
    /// 5xx; a lock another process holds (busy).
    Transient,
    /// Retrying changes nothing until someone edits something: bad config, bad
    /// data, SQL that does not plan, a missing file, a model that cannot fit.
    Permanent,
}

impl ErrorClass {
    /// Whether a retry may help.
    pub fn is_transient(self) -> bool {
        self == ErrorClass::Transient
    }

    /// The class of an I/O error, by its kind alone.
    pub fn of_io(error: &io::Error) -> ErrorClass {
        ErrorClass::of_io_kind(error.kind())
    }

    /// The class of an I/O error kind: the network and busy-resource kinds are
    /// transient, everything else (not found, permission denied, invalid data,
    /// a truncated file...) is permanent.
    pub fn of_io_kind(kind: io::ErrorKind) -> ErrorClass {
        use io::ErrorKind as K;
        match kind {
            K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::Interrupted
            // A non-blocking lock attempt (`try_lock`) that finds the lock taken.
            | K::WouldBlock
            | K::ResourceBusy => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// The class of an HTTP status code: 408, 429 and 5xx are transient.
    pub fn of_http_status(status: u16) -> ErrorClass {
        match status {
            408 | 429 | 500..=599 => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// The class of an error chain: the first I/O error met while walking
    /// `source()` decides; with none, the error is permanent.
    pub fn of_error(error: &(dyn Error + 'static)) -> ErrorClass {
        ErrorClass::of_error_with(error, |_| None)
    }

    /// Like [`ErrorClass::of_error`], asking `recognize` first about every error
    /// of the chain, so a crate can classify errors core does not know (an HTTP
    /// client's status, a database's "busy").
    pub fn of_error_with(
        error: &(dyn Error + 'static),
        recognize: impl Fn(&(dyn Error + 'static)) -> Option<ErrorClass>,
    ) -> ErrorClass {
        let mut current = Some(error);
        // A chain is finite, but a hand-written `source()` could loop.
        for _ in 0..64 {
            let Some(e) = current else { break };
            if let Some(class) = recognize(e) {
                return class;
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                // `Other` says nothing: what the I/O error wraps may.
                if io.kind() != io::ErrorKind::Other {
                    return ErrorClass::of_io(io);
                }
                // `io::Error::source` skips the wrapped error itself.
                if let Some(inner) = io.get_ref() {
                    current = Some(inner as &(dyn Error + 'static));
                    continue;
                }
            }
            current = e.source();
        }
        ErrorClass::Permanent
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::ArrowError;

    #[test]
    fn network_and_busy_io_errors_are_transient() {
        for kind in [
            io::ErrorKind::TimedOut,
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::Interrupted,
            io::ErrorKind::WouldBlock,
        ] {
            assert_eq!(
                ErrorClass::of_io(&io::Error::from(kind)),
                ErrorClass::Transient,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn missing_files_and_bad_data_are_permanent() {
        for kind in [
            io::ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidData,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert_eq!(
                ErrorClass::of_io(&io::Error::from(kind)),
                ErrorClass::Permanent,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn http_statuses() {
        assert_eq!(ErrorClass::of_http_status(429), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_http_status(503), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_http_status(404), ErrorClass::Permanent);
        assert_eq!(ErrorClass::of_http_status(400), ErrorClass::Permanent);
    }

    #[test]
    fn the_walk_finds_io_errors_inside_arrow_external_errors() {
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        let wrapped =
            ArrowError::ExternalError(Box::new(ArrowError::IoError("reading".into(), timeout)));
        assert_eq!(ErrorClass::of_error(&wrapped), ErrorClass::Transient);

        let bad = ArrowError::ParseError("not a number".into());
        assert_eq!(ErrorClass::of_error(&bad), ErrorClass::Permanent);
    }

    #[test]
    fn the_walk_looks_inside_io_errors_of_kind_other() {
        let inner = io::Error::from(io::ErrorKind::ConnectionReset);
        let outer = io::Error::other(ArrowError::ExternalError(Box::new(inner)));
        assert_eq!(ErrorClass::of_error(&outer), ErrorClass::Transient);
    }

    #[test]
    fn a_recognizer_decides_before_the_walk() {
        let e = ArrowError::ExternalError(Box::new(ArrowError::MemoryError("busy".into())));
        let class = ErrorClass::of_error_with(&e, |e| {
            matches!(
                e.downcast_ref::<ArrowError>(),
                Some(ArrowError::MemoryError(_))
            )
            .then_some(ErrorClass::Transient)
        });
        assert_eq!(class, ErrorClass::Transient);
    }
}
