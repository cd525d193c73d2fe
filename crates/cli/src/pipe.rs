//! Output cut short by a closed pipe (`sluice query ... | head`): the reader
//! went away, so sluice stops there quietly, as a Unix tool killed by SIGPIPE
//! does. Without unsafe code the signal's disposition cannot be reset, so the
//! broken pipe is recognized where it surfaces: the panic of a failed
//! `println!`, and an error whose chain holds it.

/// The exit status: 128 + SIGPIPE, as a shell reports a tool killed by it.
pub const EXIT: u8 = 141;

/// `sluice query ... | head` closes the pipe before everything is printed:
/// like any Unix tool, stop there quietly (exit 141, as killed by SIGPIPE)
/// rather than report the `println!` that failed as a crash.
pub fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(EXIT));
        }
        default(info);
    }));
}

/// Whether `e` is the reader of standard output going away. Arrow's CSV and
/// JSON writers keep only the text of the I/O error they met.
pub fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe (os error 32)")
    })
}
