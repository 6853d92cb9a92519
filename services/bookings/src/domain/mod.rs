//! Pure rules: a provider's working time and the free slots it leaves ([`slots`]), the booking's
//! states and their transitions ([`state`]), and the iCalendar feed ([`calendar`]).

pub mod calendar;
pub mod slots;
pub mod state;
