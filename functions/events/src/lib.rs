//! The events function: the table's change stream in, one EventBridge event
//! per change a person cares about out.
//!
//! State lives in the table, so the stream is the one source of outward
//! events: the functions that change a job or an account never publish
//! anything themselves (no dual writes), so an event cannot be lost when
//! one of them dies after its write, and it is published once the write is
//! in the stream, whoever made it.
//!
//! - [`schema`]: the events (source, detail-types, the versioned detail);
//! - [`decide`]: which events a change makes, from the item's old and new
//!   images (plain code);
//! - [`filter`]: the event source mapping's filter criteria;
//! - [`publisher`]: putting an event on the bus once (markers, and which way
//!   it fails);
//! - [`handler`]: a batch of records, in order, with batch item failures.

pub mod config;
pub mod decide;
pub mod filter;
pub mod handler;
pub mod publisher;
pub mod schema;

pub use config::EventsConfig;
pub use filter::FILTER_PATTERNS;
pub use handler::EventsService;
pub use publisher::Publisher;
pub use schema::{ALL_KINDS, Detail, Kind, SCHEMA_VERSION, SOURCE};
