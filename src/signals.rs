//! Ctrl-C (SIGINT) and SIGTERM for the CLI. The first signal asks the
//! running verb to stop cleanly: `subscribe` stops reading, commits what it
//! printed and leaves its group; `publish` stops queueing and delivers what
//! it queued. A second signal exits at once with status 130 (128 + SIGINT),
//! the shell's convention for an interrupted command.

use tokio::sync::watch;

/// Whether a stop was asked for; cloned into the verbs that wait on it.
#[derive(Clone)]
pub(crate) struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Listen for SIGINT and SIGTERM for the rest of the process. Outside a
    /// tokio runtime, or where the signals cannot be installed, the result
    /// never fires (the default handlers stay, and end the process).
    pub(crate) fn install() -> Self {
        let (tx, rx) = watch::channel(false);
        // Installed here rather than in the task: once this returns, a
        // signal is caught (`mock-cluster` announces its address right
        // after, and its caller may stop it at once).
        let signals = Signals::new();
        tokio::spawn(async move {
            let Some(mut next) = signals else {
                return;
            };
            next.recv().await;
            eprintln!("skotch: stopping (a second Ctrl-C or SIGTERM aborts)");
            let _ = tx.send(true);
            next.recv().await;
            eprintln!("skotch: aborted");
            std::process::exit(130);
        });
        Self { rx }
    }

    /// True once the first signal came.
    pub(crate) fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when the first signal comes (at once if it came already).
    pub(crate) async fn requested(&mut self) {
        // An error means the listener is gone: no signal will ever come.
        if self.rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// SIGINT and SIGTERM as one stream of events.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Some(Self {
                int: signal(SignalKind::interrupt()).ok()?,
                term: signal(SignalKind::terminate()).ok()?,
            })
        }
        #[cfg(not(unix))]
        {
            Some(Self {})
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
