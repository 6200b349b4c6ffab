//! The one policy for poisoned locks: recover the data and go on.
//!
//! A lock is poisoned when a thread panicked while holding it. In faultline the locked data
//! are journals, ledgers, counters and fault tables, each changed by one short write that
//! leaves it consistent (a push, an insert, a counter bump), so the data behind a poisoned
//! lock is still good. Panicking again (`.lock().unwrap()`) would turn one bad connection
//! into a dead fake or a lost run; recovering keeps every other user going, and the panic
//! itself is still reported where it happened.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks, recovering the data of a poisoned lock (see the module docs).
pub trait LockExt<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads and writes an `RwLock`, recovering the data of a poisoned lock (see the module docs).
pub trait RwLockExt<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The value inside a mutex that is no longer shared, poisoned or not.
pub fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_gives_back_its_data() {
        let shared = std::sync::Arc::new(Mutex::new(vec![1]));
        let clone = shared.clone();
        let _ = std::thread::spawn(move || {
            let mut guard = clone.lock().unwrap();
            guard.push(2);
            panic!("poison the lock");
        })
        .join();
        assert!(shared.is_poisoned());
        assert_eq!(*shared.locked(), [1, 2]);
        let lock = RwLock::new(3);
        assert_eq!(*lock.read_locked(), 3);
        *lock.write_locked() = 4;
        assert_eq!(*lock.read_locked(), 4);
    }
}
