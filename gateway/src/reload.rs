//! What the gateway replaces without a restart.
//!
//! - [`Swap`]: the whole state on a config reload, one pointer swapped at once.
//! - [`Watched`]: files (JWKS keys, TLS certificates), each read again when its modification
//!   time or size changes, checked every few seconds and on SIGHUP. A file that fails to load
//!   keeps the previous value in use and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// A value replaced as a whole. Readers take an `Arc` of the current value and keep it as long
/// as they need (a call holds the state it started with to its end), so a swap never waits for
/// them and never changes what they hold; the old value is dropped with its last reader.
pub(crate) struct Swap<T>(RwLock<Arc<T>>);

impl<T> std::fmt::Debug for Swap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swap").finish_non_exhaustive()
    }
}

impl<T> Swap<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Swap(RwLock::new(value))
    }

    /// The current value. The lock is held only to clone the `Arc`.
    pub(crate) fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(value) => value.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in place of the current one and returns the current one.
    pub(crate) fn replace(&self, value: Arc<T>) -> Arc<T> {
        let mut current = match self.0.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *current, value)
    }
}

/// What identifies a version of a file: its modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// A value loaded from files, reloaded when they change.
pub(crate) struct Watched<T> {
    paths: Vec<PathBuf>,
    load: Box<dyn Fn() -> Result<T, String> + Send + Sync>,
    state: RwLock<(Vec<Stamp>, Arc<T>)>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T> Watched<T> {
    /// Loads the value now (an error here is a startup error).
    pub(crate) fn new(
        paths: Vec<PathBuf>,
        load: impl Fn() -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let stamps = paths.iter().map(|path| stamp(path)).collect();
        let value = load()?;
        Ok(Watched {
            paths,
            load: Box::new(load),
            state: RwLock::new((stamps, Arc::new(value))),
        })
    }

    /// The current value.
    pub(crate) fn get(&self) -> Arc<T> {
        match self.state.read() {
            Ok(state) => state.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Reloads when a file changed; `Ok(true)` when the value was replaced.
    pub(crate) fn refresh(&self) -> Result<bool, String> {
        let stamps: Vec<Stamp> = self.paths.iter().map(|path| stamp(path)).collect();
        let unchanged = match self.state.read() {
            Ok(state) => state.0 == stamps,
            Err(poisoned) => poisoned.into_inner().0 == stamps,
        };
        if unchanged {
            return Ok(false);
        }
        let value = (self.load)();
        let mut state = match self.state.write() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Remember the stamps even on failure: a broken file is reported once, not every tick.
        state.0 = stamps;
        state.1 = Arc::new(value?);
        Ok(true)
    }

    /// The files, for log lines.
    pub(crate) fn describe(&self) -> String {
        self.paths
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_leaves_what_readers_hold_alone() {
        let swap = Swap::new(Arc::new(1));
        let held = swap.get();
        let old = swap.replace(Arc::new(2));
        assert_eq!((*held, *old, *swap.get()), (1, 1, 2));
        drop(old);
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "the old value lives only in its last reader"
        );
    }

    #[test]
    fn reloads_on_change_and_keeps_the_old_value_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("value.txt");
        std::fs::write(&path, "1").expect("write");
        let file = path.clone();
        let watched = Watched::new(vec![path.clone()], move || {
            let text = std::fs::read_to_string(&file).map_err(|err| err.to_string())?;
            text.trim().parse::<u32>().map_err(|err| err.to_string())
        })
        .expect("loads");
        assert_eq!(*watched.get(), 1);
        assert_eq!(watched.refresh(), Ok(false));
        std::fs::write(&path, "22").expect("write");
        assert_eq!(watched.refresh(), Ok(true));
        assert_eq!(*watched.get(), 22);
        std::fs::write(&path, "not a number").expect("write");
        assert!(watched.refresh().is_err());
        assert_eq!(*watched.get(), 22, "the last good value stays in use");
    }
}
