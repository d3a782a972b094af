//! What a write does to the record it read: the one form every read–decide–write takes.
//! A decision (`account::set_default`, `integration::update`, …) looks at the record as
//! it is under the write lock and returns a [`Change`]; the store writes it, with its
//! audit event, in the same transaction.

use chrono::{DateTime, Utc};

use super::audit::{AuditAction, AuditEvent};
use super::caller::Caller;
use super::error::{Error, RecordKind};

/// What to write in place of the record read. `D` is what a delete carries: a
/// [`Deletion`], or [`NoDeletion`] for an [`Edit`], a decision that cannot delete, so
/// that its writer gets the stored record back without an "it vanished" branch.
// A change lives for the one write that decides it: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Change<T, D = Deletion> {
    /// Nothing: the record stays as it is, and no event is written.
    Keep,
    /// Store this new state (revision bumped), with the event that records it.
    Save(Box<T>, AuditEvent),
    /// Soft-delete: hide the record and free what it held unique.
    Delete(D),
}

/// A change that keeps or saves, never deletes (an update, a new default, Meta's word).
pub type Edit<T> = Change<T, NoDeletion>;

/// The deletion of an [`Edit`]: no value has this type.
#[derive(Debug)]
pub enum NoDeletion {}

/// What a store reads of a change's delete.
pub trait Deletes {
    fn deletion(&self) -> &Deletion;
}

impl Deletes for Deletion {
    fn deletion(&self) -> &Deletion {
        self
    }
}

impl Deletes for NoDeletion {
    fn deletion(&self) -> &Deletion {
        match *self {}
    }
}

/// The record after a change was written: as stored, or deleted.
#[derive(Debug)]
pub enum After<T, D = Deletion> {
    Stored(T),
    Deleted(D),
}

impl<T, D> After<T, D> {
    /// The record as stored; `None` once deleted.
    pub fn stored(&self) -> Option<&T> {
        match self {
            After::Stored(record) => Some(record),
            After::Deleted(_) => None,
        }
    }
}

impl<T> After<T, NoDeletion> {
    /// The record an edit stored: an edit deletes nothing.
    pub fn record(self) -> T {
        match self {
            After::Stored(record) => record,
            After::Deleted(never) => match never {},
        }
    }
}

/// A soft delete: who, when, and its event.
#[derive(Debug)]
pub struct Deletion {
    pub deleted_by: String,
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
}

/// The record a write names, at the revision its caller expects (none: any).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub id: uuid::Uuid,
    pub expected_revision: Option<i64>,
}

/// A stored record with a revision: what [`Change`] writes.
pub trait Revised: Clone + PartialEq {
    const KIND: RecordKind;
    fn revision(&self) -> i64;
    /// The record as written at `at`: next revision, `updated_at` set.
    fn revised(self, at: DateTime<Utc>) -> Self;
    /// The record's id as events name it (empty before it has one).
    fn record_id(&self) -> String;
    /// The division an event of this record is visible to.
    fn division(&self) -> Option<String>;
}

impl<T: Revised, D> Change<T, D> {
    /// Saves `next` in place of `current` when they differ, recorded as `action` on the
    /// fields `changed` names; otherwise keeps `current`.
    pub fn save_if_changed(
        caller: &Caller,
        current: &T,
        next: T,
        action: AuditAction,
        changed: impl FnOnce(&T, &T) -> Vec<String>,
        at: DateTime<Utc>,
    ) -> Change<T, D> {
        if &next == current {
            return Change::Keep;
        }
        let fields = changed(current, &next);
        let event = event(caller, &next, action, fields);
        Change::Save(Box::new(next.revised(at)), event)
    }
}

impl<T: Revised> Change<T> {
    /// Soft-deletes `current` on behalf of `caller`.
    pub fn delete(caller: &Caller, current: &T, at: DateTime<Utc>) -> Change<T> {
        Change::Delete(Deletion {
            deleted_by: caller.subject.clone(),
            at,
            event: event(
                caller,
                current,
                AuditAction::Delete,
                vec!["deleted_at".to_owned()],
            ),
        })
    }
}

impl<T, D> Change<T, D> {
    /// Whether this is a soft delete (the one change a record whose secrets cannot be
    /// opened may still take).
    pub fn is_delete(&self) -> bool {
        matches!(self, Change::Delete(_))
    }
}

/// The event recording `action` on `record`.
pub fn event<T: Revised>(
    caller: &Caller,
    record: &T,
    action: AuditAction,
    fields: Vec<String>,
) -> AuditEvent {
    AuditEvent::new(
        caller,
        T::KIND,
        record.record_id(),
        record.division(),
        action,
        fields,
    )
}

/// Fails with ABORTED when the caller's expected revision is not the stored one.
pub fn check_revision(expected: Option<i64>, actual: i64) -> Result<(), Error> {
    match expected {
        Some(expected) if expected != actual => Err(Error::Aborted(format!(
            "expected revision {expected} but the record is at revision {actual}; read it again"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{admin, at};

    #[derive(Clone, Debug, PartialEq)]
    struct Note {
        revision: i64,
        text: &'static str,
        updated: DateTime<Utc>,
    }

    impl Revised for Note {
        const KIND: RecordKind = RecordKind::Account;
        fn revision(&self) -> i64 {
            self.revision
        }
        fn revised(self, at: DateTime<Utc>) -> Self {
            Note {
                revision: self.revision + 1,
                updated: at,
                ..self
            }
        }
        fn record_id(&self) -> String {
            "n1".to_owned()
        }
        fn division(&self) -> Option<String> {
            Some("d1".to_owned())
        }
    }

    fn note(text: &'static str) -> Note {
        Note {
            revision: 3,
            text,
            updated: at(0),
        }
    }

    fn fields(_: &Note, _: &Note) -> Vec<String> {
        vec!["text".to_owned()]
    }

    #[test]
    fn an_unchanged_record_is_kept_without_an_event() {
        let change: Change<Note> = Change::save_if_changed(
            &admin(),
            &note("a"),
            note("a"),
            AuditAction::Update,
            fields,
            at(5),
        );
        assert!(matches!(change, Change::Keep));
    }

    #[test]
    fn a_changed_record_is_saved_at_the_next_revision_with_its_event() {
        let change: Change<Note> = Change::save_if_changed(
            &admin(),
            &note("a"),
            note("b"),
            AuditAction::Update,
            fields,
            at(5),
        );
        let Change::Save(saved, event) = change else {
            panic!("expected a save, got {change:?}");
        };
        assert_eq!((saved.revision, saved.text, saved.updated), (4, "b", at(5)));
        assert_eq!(event.changed_fields, ["text"]);
        assert_eq!(event.record_id, "n1");
        assert_eq!(event.division_id.as_deref(), Some("d1"));
        assert_eq!(event.action, AuditAction::Update);
    }

    #[test]
    fn a_delete_names_its_caller_and_time() {
        let change = Change::delete(&admin(), &note("a"), at(9));
        assert!(change.is_delete());
        let Change::Delete(deletion) = change else {
            panic!("expected a delete");
        };
        assert_eq!(deletion.deleted_by, admin().subject);
        assert_eq!(deletion.at, at(9));
        assert_eq!(deletion.event.changed_fields, ["deleted_at"]);
        assert_eq!(deletion.event.action, AuditAction::Delete);
    }

    #[test]
    fn a_stale_revision_is_aborted_and_none_or_the_same_passes() {
        assert!(check_revision(None, 4).is_ok());
        assert!(check_revision(Some(4), 4).is_ok());
        assert!(
            matches!(check_revision(Some(3), 4), Err(Error::Aborted(m)) if m.contains("revision 4"))
        );
    }
}
