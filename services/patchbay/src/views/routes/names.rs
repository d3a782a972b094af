//! Workspace and division ids of the routing index, interned: each kept once however
//! many accounts name it, and dropped when the last one goes.

use std::collections::HashMap;
use std::sync::Arc;

/// Workspace and division ids, each kept once however many accounts name it, and
/// dropped when the last one goes.
#[derive(Default)]
pub(super) struct Names {
    pub(super) numbers: HashMap<Arc<str>, u32>,
    /// By number: the name and how many slots hold it.
    names: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
}

impl Names {
    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&number) = self.numbers.get(name) {
            if let Some(Some((_, count))) = self.names.get_mut(number as usize) {
                *count += 1;
            }
            return number;
        }
        let name: Arc<str> = Arc::from(name);
        let number = match self.free.pop() {
            Some(number) => {
                self.names[number as usize] = Some((name.clone(), 1));
                number
            }
            None => {
                self.names.push(Some((name.clone(), 1)));
                len_u32(self.names.len() - 1)
            }
        };
        self.numbers.insert(name, number);
        number
    }

    pub(super) fn release(&mut self, number: u32) {
        let Some(held) = self.names.get_mut(number as usize) else {
            return;
        };
        if let Some((name, count)) = held {
            *count -= 1;
            if *count == 0 {
                self.numbers.remove(&**name);
                *held = None;
                self.free.push(number);
            }
        }
    }

    pub(super) fn get(&self, number: u32) -> Arc<str> {
        match self.names.get(number as usize) {
            Some(Some((name, _))) => name.clone(),
            _ => Arc::from(""),
        }
    }
}

/// Lengths within the index: a text or a count past 4 GiB cannot be stored anyway.
pub(super) fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
