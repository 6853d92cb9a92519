//! A booking's life: requested, then confirmed by the provider, then completed once it has
//! started; cancelled by either side before that. Who may do what, from which state.

/// Where a booking stands (`Booking.State` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Asked for; its time is held.
    Requested = 1,
    /// Accepted by the provider.
    Confirmed = 2,
    /// Called off; its time is free.
    Cancelled = 3,
    /// Took place.
    Completed = 4,
}

impl State {
    /// The state of number `n`.
    pub fn from_number(n: i16) -> Option<Self> {
        match n {
            1 => Some(Self::Requested),
            2 => Some(Self::Confirmed),
            3 => Some(Self::Cancelled),
            4 => Some(Self::Completed),
            _ => None,
        }
    }

    /// The contract's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Requested => "STATE_REQUESTED",
            Self::Confirmed => "STATE_CONFIRMED",
            Self::Cancelled => "STATE_CANCELLED",
            Self::Completed => "STATE_COMPLETED",
        }
    }
}

/// Who is asking, relative to the booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The listing's provider.
    Provider,
    /// The customer who booked.
    Customer,
}

/// What may be done to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Accept it.
    Confirm,
    /// Call it off.
    Cancel,
    /// Move it to another slot.
    Reschedule,
    /// Mark it done.
    Complete,
}

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The party may never do this (PERMISSION_DENIED).
    #[error("only the provider may {0} a booking")]
    NotAllowed(&'static str),
    /// Not from this state, or not yet (FAILED_PRECONDITION).
    #[error("a booking in {state} cannot be {done}")]
    WrongState {
        /// The booking's state.
        state: &'static str,
        /// The action, past tense.
        done: &'static str,
    },
    /// Completing before the booking has started.
    #[error("a booking can be completed once it has started")]
    NotStarted,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
            Self::Reschedule => "reschedule",
            Self::Complete => "complete",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Confirm => "confirmed",
            Self::Cancel => "cancelled",
            Self::Reschedule => "rescheduled",
            Self::Complete => "completed",
        }
    }

    /// The state after `self` by `party` on a booking in `state` (`started`: its start has
    /// passed).
    pub fn apply(self, state: State, party: Party, started: bool) -> Result<State, Refusal> {
        let provider_only = matches!(self, Self::Confirm | Self::Complete);
        if provider_only && party != Party::Provider {
            return Err(Refusal::NotAllowed(self.verb()));
        }
        let wrong = || Refusal::WrongState {
            state: state.name(),
            done: self.done(),
        };
        match (self, state) {
            (Self::Confirm, State::Requested) => Ok(State::Confirmed),
            (Self::Cancel | Self::Reschedule, State::Requested | State::Confirmed) => {
                Ok(if self == Self::Cancel {
                    State::Cancelled
                } else {
                    state
                })
            }
            (Self::Complete, State::Confirmed) if started => Ok(State::Completed),
            (Self::Complete, State::Confirmed) => Err(Refusal::NotStarted),
            _ => Err(wrong()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_follows_the_table() {
        use Action::*;
        use Party::*;
        use State::*;
        let cases = [
            (Confirm, Requested, Provider, false, Ok(Confirmed)),
            (
                Confirm,
                Requested,
                Customer,
                false,
                Err(Refusal::NotAllowed("confirm")),
            ),
            (
                Confirm,
                Confirmed,
                Provider,
                false,
                Err(Refusal::WrongState {
                    state: "STATE_CONFIRMED",
                    done: "confirmed",
                }),
            ),
            (Cancel, Requested, Customer, false, Ok(Cancelled)),
            (Cancel, Confirmed, Provider, true, Ok(Cancelled)),
            (
                Cancel,
                Cancelled,
                Customer,
                false,
                Err(Refusal::WrongState {
                    state: "STATE_CANCELLED",
                    done: "cancelled",
                }),
            ),
            (
                Cancel,
                Completed,
                Provider,
                true,
                Err(Refusal::WrongState {
                    state: "STATE_COMPLETED",
                    done: "cancelled",
                }),
            ),
            (Reschedule, Requested, Customer, false, Ok(Requested)),
            (Reschedule, Confirmed, Provider, false, Ok(Confirmed)),
            (
                Reschedule,
                Cancelled,
                Provider,
                false,
                Err(Refusal::WrongState {
                    state: "STATE_CANCELLED",
                    done: "rescheduled",
                }),
            ),
            (Complete, Confirmed, Provider, true, Ok(Completed)),
            (
                Complete,
                Confirmed,
                Provider,
                false,
                Err(Refusal::NotStarted),
            ),
            (
                Complete,
                Requested,
                Provider,
                true,
                Err(Refusal::WrongState {
                    state: "STATE_REQUESTED",
                    done: "completed",
                }),
            ),
            (
                Complete,
                Confirmed,
                Customer,
                true,
                Err(Refusal::NotAllowed("complete")),
            ),
        ];
        for (action, state, party, started, expected) in cases {
            assert_eq!(
                action.apply(state, party, started),
                expected,
                "{action:?} {state:?} {party:?}"
            );
        }
    }
}
